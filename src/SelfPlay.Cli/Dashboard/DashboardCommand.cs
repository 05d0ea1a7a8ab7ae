namespace SelfPlay.Cli.Dashboard;

/// <summary>
/// <c>selfplay dashboard --run-dir DIR [--host 127.0.0.1] [--port 8050] [--token-env VAR]</c>: the dashboard of a run
/// folder until the process is stopped; and the same beside a campaign (<c>selfplay run --dashboard PORT</c>).
/// </summary>
public static class DashboardCommand
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var runDir = a.Get("--run-dir") ?? throw new UsageException("dashboard needs --run-dir DIR");
        await using var app = await StartAsync(runDir, a.Get("--host") ?? "127.0.0.1", Port(a.Get("--port") ?? "8050"), a.Get("--token-env"));
        await HttpCommand.StopRequested();
        await app.StopAsync();
        return 0;
    }

    public static int Port(string value) =>
        int.TryParse(value, out var n) && n is >= 0 and <= 65535 ? n : throw new UsageException($"the dashboard port must be in 0..65535, got '{value}'");

    /// <summary>Starts the dashboard and prints its address (with port 0, the one the system chose). An address other
    /// than loopback needs a bearer token (--token-env VAR names the variable that holds it) and prints a warning.</summary>
    public static async Task<Microsoft.AspNetCore.Builder.WebApplication> StartAsync(string runDir, string host, int port, string? tokenEnv)
    {
        string? token = null;
        if (tokenEnv is not null)
            token = Environment.GetEnvironmentVariable(tokenEnv) is { Length: > 0 } t ? t : throw new UsageException($"--token-env {tokenEnv}: the environment variable is not set or empty");
        if (!HttpCommand.IsLoopback(host))
        {
            if (token is null) throw new UsageException($"the dashboard on {host} (not loopback) needs --token-env VAR: anyone who can reach it would read the run");
            Console.Error.WriteLine($"warning: the dashboard listens on {host}: anyone with the token who can reach the port reads the run");
        }
        var app = DashboardServer.Build(runDir, host, port, token);
        await app.StartAsync();
        Console.WriteLine($"dashboard on {string.Join(" ", app.Urls)}");
        return app;
    }
}
