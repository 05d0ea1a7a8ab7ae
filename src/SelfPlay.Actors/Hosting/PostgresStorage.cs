using Akka.Event;
using Npgsql;

namespace SelfPlay.Actors.Hosting;

/// <summary>
/// The PostgreSQL journal's and snapshot store's payload columns compressed with LZ4 instead of the server's default
/// pglz. An event of a tree bucket is tens of kilobytes to megabytes (above PostgreSQL's 2 kB TOAST threshold, so every
/// one is compressed on insert), and pglz spent more server time on them than the insert itself: `bench persistence`'s
/// warm store rate rose from 0.62–0.75x to 0.97–1.03x of a raw INSERT with the same column setting (docs/results.md).
/// A column setting (PostgreSQL 14+; values already stored keep their codec, both are read alike); a server without
/// LZ4 support keeps pglz, with one warning.
/// </summary>
public static class PostgresStorage
{
    /// <summary>(table, column) of the plugins' default table mapping that hold the serialized payloads.</summary>
    static readonly (string Table, string Column)[] PayloadColumns = [("journal", "message"), ("snapshot", "snapshot")];

    /// <summary>Sets LZ4 on the payload columns of the tables that exist and do not have it yet; returns why not where it
    /// cannot (an old or LZ4-less server), else null. Idempotent: a database already set is only read.</summary>
    public static async Task<string?> UseLz4Async(string connectionString, CancellationToken cancel = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancel);
        if (connection.PostgreSqlVersion.Major < 14) return $"PostgreSQL {connection.PostgreSqlVersion} has no per-column LZ4 compression (14+): payloads stay pglz-compressed";
        foreach (var (table, column) in PayloadColumns)
        {
            if (await CodecAsync(connectionString, table, column, cancel) is null or 'l') continue; // no such table yet, or set already
            try
            {
                await using var alter = new NpgsqlCommand($"ALTER TABLE \"{table}\" ALTER COLUMN \"{column}\" SET COMPRESSION lz4", connection);
                await alter.ExecuteNonQueryAsync(cancel);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.FeatureNotSupported)
            {
                return $"this PostgreSQL server was built without LZ4 ({e.MessageText}): payloads stay pglz-compressed";
            }
        }
        return null;
    }

    /// <summary>The column's compression setting as PostgreSQL keeps it ('l' LZ4, 'p' pglz, '\0' the server's default),
    /// or null where there is no such column.</summary>
    public static async Task<char?> CodecAsync(string connectionString, string table, string column, CancellationToken cancel = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancel);
        await using var read = new NpgsqlCommand(
            "SELECT a.attcompression FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped", connection);
        read.Parameters.Add(new NpgsqlParameter { Value = table });
        read.Parameters.Add(new NpgsqlParameter { Value = column });
        return await read.ExecuteScalarAsync(cancel) is char codec ? codec : null;
    }

    /// <summary>Whether both payload columns exist (the plugins create their tables when they first start).</summary>
    public static async Task<bool> TablesExistAsync(string connectionString, CancellationToken cancel = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancel);
        await using var read = new NpgsqlCommand("SELECT to_regclass('journal') IS NOT NULL AND to_regclass('snapshot') IS NOT NULL", connection);
        return await read.ExecuteScalarAsync(cancel) is true;
    }

    /// <summary>In the background of a starting node: once the plugins have created their tables (at most a minute),
    /// <see cref="UseLz4Async"/>. Failures are logged, never thrown: compression is an optimization.</summary>
    public static void UseLz4WhenCreated(string connectionString, ILoggingAdapter log, CancellationToken cancel) => _ = Task.Run(async () =>
    {
        try
        {
            for (var wait = 0; wait < 300 && !await TablesExistAsync(connectionString, cancel); wait++) await Task.Delay(200, cancel);
            if (await UseLz4Async(connectionString, cancel) is { } why) log.Warning("{0}", why);
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            log.Warning("payload columns not set to LZ4 compression: {0}", e.Message);
        }
    }, cancel);
}
