using Npgsql;

namespace SelfPlay.Tests.Shared;

/// <summary>
/// The private PostgreSQL that tests/run.sh starts (tests/postgres.sh) and names in SELFPLAY_TEST_POSTGRES.
/// Each test gets a database of its own, so tests never see each other's journals.
/// </summary>
public static class TestPostgres
{
    public const string Variable = "SELFPLAY_TEST_POSTGRES";

    public static string? ServerConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } s ? s : null;

    public static string SkipReason => $"{Variable} is not set: no PostgreSQL (tests/run.sh starts a private one)";

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public static async Task<string> NewDatabaseAsync()
    {
        var server = ServerConnectionString ?? throw new InvalidOperationException(SkipReason);
        var name = "selfplay_" + Guid.NewGuid().ToString("N")[..12];
        await using (var connection = new NpgsqlConnection(server))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
    }
}

/// <summary>A fact that needs PostgreSQL: reported as skipped, with the reason, when none is configured; with
/// SELFPLAY_REQUIRE_POSTGRES=1 (as in CI) it runs anyway and fails, so a missing server cannot pass as skips.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (TestPostgres.ServerConnectionString is null && Environment.GetEnvironmentVariable("SELFPLAY_REQUIRE_POSTGRES") != "1")
            Skip = TestPostgres.SkipReason;
    }
}

/// <summary>Stops and starts the private server of tests/postgres.sh (POSTGRES_DIR, POSTGRES_BIN, POSTGRES_PORT), to test outages.</summary>
public static class TestPostgresServer
{
    public static bool CanRestart => Environment.GetEnvironmentVariable("POSTGRES_DIR") is { Length: > 0 } && Environment.GetEnvironmentVariable("POSTGRES_BIN") is { Length: > 0 };

    public static Task StopAsync() => PgCtlAsync("stop", "-m", "fast");

    public static async Task StartAsync()
    {
        var dir = Environment.GetEnvironmentVariable("POSTGRES_DIR")!;
        await PgCtlAsync("start", "-l", Path.Combine(dir, "server.log"),
            "-o", $"-h 127.0.0.1 -p {Environment.GetEnvironmentVariable("POSTGRES_PORT")} -k {dir} -c fsync=off -c max_connections=200");
        // The pooled connections of this test process died with the old server: the next test must not get one.
        NpgsqlConnection.ClearAllPools();
    }

    static async Task PgCtlAsync(params string[] args)
    {
        var dir = Environment.GetEnvironmentVariable("POSTGRES_DIR")!;
        var pgCtl = Path.Combine(Environment.GetEnvironmentVariable("POSTGRES_BIN")!, "pg_ctl");
        var root = Environment.UserName == "root";
        var start = new System.Diagnostics.ProcessStartInfo(root ? "runuser" : pgCtl) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (root) foreach (var a in new[] { "-u", "postgres", "--", pgCtl }) start.ArgumentList.Add(a);
        foreach (var a in new[] { "-D", Path.Combine(dir, "data"), "-w" }.Concat(args)) start.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"pg_ctl {args[0]} failed: {await stderr}");
    }
}
