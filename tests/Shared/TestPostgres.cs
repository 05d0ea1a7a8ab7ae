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

/// <summary>A fact that needs PostgreSQL: reported as skipped, with the reason, when none is configured.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (TestPostgres.ServerConnectionString is null) Skip = TestPostgres.SkipReason;
    }
}
