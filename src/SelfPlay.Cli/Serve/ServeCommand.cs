using SelfPlay.Models.Generation;

namespace SelfPlay.Cli.Serve;

/// <summary>
/// selfplay serve --checkpoint DIR [--adapter NAME=DIR]... [--host 127.0.0.1] [--port 8000] [--served-model-name NAME]
/// [--api-key-env VAR] [--device cpu|cuda[:N]] [--dtype float32|bfloat16] [--prefix-cache-mb N] [--max-batch-rows N]:
/// the checkpoint (and its adapters) behind an OpenAI-compatible API until the process is stopped.
/// </summary>
public static class ServeCommand
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var checkpoint = a.Get("--checkpoint") ?? throw new UsageException("serve needs --checkpoint DIR");
        if (!Directory.Exists(checkpoint)) throw new UsageException($"--checkpoint {checkpoint} is not a folder");
        var host = a.Get("--host") ?? "127.0.0.1";
        var port = a.Get("--port") is { } p ? int.TryParse(p, out var n) && n is >= 0 and <= 65535 ? n : throw new UsageException($"--port must be in 0..65535, got '{p}'") : 8000;
        string? apiKey = null;
        if (a.Get("--api-key-env") is { } variable)
            apiKey = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } key ? key : throw new UsageException($"--api-key-env {variable}: the environment variable is not set or empty");
        var adapters = a.All("--adapter").Select(s => s.Split('=', 2) is [{ Length: > 0 } name, { Length: > 0 } dir] ? (name, dir)
            : throw new UsageException($"--adapter must be NAME=DIR, got '{s}'")).ToList();
        var name = a.Get("--served-model-name") ?? Path.GetFileName(Path.GetFullPath(checkpoint).TrimEnd(Path.DirectorySeparatorChar));
        if (adapters.Any(x => x.name == name)) throw new UsageException($"--adapter {name}: the base model is served under that name");

        using var engine = new GenerationEngine(checkpoint, name, a.Get("--device") ?? "cpu", a.Get("--dtype") ?? "float32",
            a.Get("--prefix-cache-mb") is { } mb ? int.TryParse(mb, out var m) && m >= 0 ? m : throw new UsageException($"--prefix-cache-mb must be >= 0, got '{mb}'") : 256,
            a.PositiveInt("--max-batch-rows", 64));
        foreach (var (adapter, dir) in adapters) await engine.LoadAdapterAsync(adapter, dir);
        if (apiKey is null && !HttpCommand.IsLoopback(host))
            Console.Error.WriteLine($"warning: serving on {host} without --api-key-env: anyone who can reach the port can generate and load adapters");
        await using var app = OpenAiServer.Build(engine, host, port, apiKey);
        await app.StartAsync();
        // The bound address (with --port 0, the port the system chose): what a script waits for.
        Console.WriteLine($"serving {string.Join(", ", engine.Models.Select(x => x.Name))} on {string.Join(" ", app.Urls)} (OpenAI API under /v1)");
        await HttpCommand.StopRequested();
        await app.StopAsync();
        return 0;
    }
}
