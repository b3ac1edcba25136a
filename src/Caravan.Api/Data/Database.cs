using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Caravan.Api.Data;

/// <summary>
/// The one door to the store: opens connections for the configured provider with the settings
/// every connection needs. SQL lives next to the feature that runs it and is shared by both
/// providers; this class knows how to reach the database and the few places the dialects differ.
/// </summary>
public sealed class Database : IAsyncDisposable
{
    public const string DefaultSqliteConnectionString = "Data Source=data/caravan.db";

    private readonly string _sqliteConnectionString = string.Empty;
    private readonly NpgsqlDataSource? _postgres;

    public Database(IOptions<StorageOptions> options)
    {
        Provider = options.Value.Provider;
        if (Provider == StorageProvider.Postgres)
        {
            var builder = new NpgsqlConnectionStringBuilder(options.Value.ConnectionString)
            {
                ApplicationName = "caravan",
            };
            _postgres = NpgsqlDataSource.Create(builder);
        }
        else
        {
            _sqliteConnectionString = PrepareSqlite(options.Value.ConnectionString);
        }
    }

    public StorageProvider Provider { get; }

    /// <summary>Row lock for a read that precedes a write in the same transaction.</summary>
    public string ForUpdate => Provider == StorageProvider.Postgres ? " FOR UPDATE" : string.Empty;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(cancellationToken);
        }

        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(cancellationToken);

        // Per-connection settings: wait for the writer instead of failing, make every commit
        // durable, and overwrite deleted content so erased secrets do not linger in free pages.
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;";
        await pragma.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }

    /// <summary>
    /// Begins a transaction for a read-merge-write that must not lose a concurrent update. SQLite
    /// takes the database write lock at once (<c>BEGIN IMMEDIATE</c>); PostgreSQL reads with
    /// <see cref="ForUpdate"/>, which locks just the row and lets other sources be written.
    /// </summary>
    public async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default) =>
        await connection.BeginTransactionAsync(
            Provider == StorageProvider.Postgres ? IsolationLevel.ReadCommitted : IsolationLevel.Serializable,
            cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    private static string PrepareSqlite(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(
            string.IsNullOrWhiteSpace(connectionString) ? DefaultSqliteConnectionString : connectionString);
        if (builder.Mode != SqliteOpenMode.Memory && !string.IsNullOrEmpty(builder.DataSource) && builder.DataSource != ":memory:")
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(builder.DataSource));
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
        }

        builder.Pooling = true;
        return builder.ToString();
    }
}

internal static class DbCommandExtensions
{
    public static DbCommand Command(this DbConnection connection, string sql, DbTransaction? transaction = null)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    public static DbCommand With(this DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
        return command;
    }

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public static DateTimeOffset ToTime(long unixMilliseconds) => DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds);
}
