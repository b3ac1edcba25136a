using System.Data;
using System.Data.Common;
using Caravan.Api.Hosting;
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
    private static readonly object ConfiguredMarker = new();
    private static readonly TimeSpan SqliteWriterWait = TimeSpan.FromSeconds(30);
    private readonly SemaphoreSlim _sqliteWriter = new(1, 1);
    private readonly NpgsqlDataSource? _postgres;
    private readonly SqliteReadSessions? _sqliteReaders;
    private readonly GroupCommit? _sqliteWrites;

    // Native SQLite connections that have had their PRAGMAs; an entry goes with its connection.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, object> _configuredSqlite = [];

    public Database(IOptions<StorageOptions> options)
    {
        Provider = options.Value.Provider;
        if (Provider == StorageProvider.Postgres)
        {
            var builder = new NpgsqlConnectionStringBuilder(options.Value.ConnectionString)
            {
                ApplicationName = "caravan",
            };

            // The same few statements run on every request: let Npgsql prepare them on the server
            // after their second use, unless the operator chose otherwise in the connection string.
            if (builder.MaxAutoPrepare == 0)
            {
                builder.MaxAutoPrepare = 32;
            }

            // Npgsql resets a pooled session when it is returned (seven statements sent before the
            // next command: RESET ALL, CLOSE ALL, UNLISTEN, advisory unlocks...), which was a good
            // part of the server's work for a GET or a PATCH. Caravan's SQL leaves nothing in a
            // session to reset: no SET, LISTEN, cursors, temporary tables or session advisory locks
            // (the two advisory locks it takes are transaction-scoped), and a session is only ever
            // its own.
            builder.NoResetOnClose = true;

            _postgres = NpgsqlDataSource.Create(builder);
        }
        else
        {
            _sqliteConnectionString = PrepareSqlite(options.Value.ConnectionString);
            _sqliteReaders = new SqliteReadSessions(OpenSqliteAsync, Math.Clamp(Environment.ProcessorCount * 2, 4, 32));
            _sqliteWrites = new GroupCommit(async ct => new SqliteSession(await OpenSqliteAsync(ct)).Register(), BeginWriteAsync);
        }
    }

    public StorageProvider Provider { get; }

    /// <summary>Row lock for a read that precedes a write in the same transaction.</summary>
    public string ForUpdate => Provider == StorageProvider.Postgres ? " FOR UPDATE" : string.Empty;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default) =>
        _postgres is not null ? await _postgres.OpenConnectionAsync(cancellationToken) : await OpenSqliteAsync(cancellationToken);

    /// <summary>A connection for a few quick reads outside any transaction (see <see cref="ReadLease"/>).</summary>
    public async Task<ReadLease> LeaseReadAsync(CancellationToken cancellationToken = default) =>
        _sqliteReaders is not null
            ? await _sqliteReaders.RentAsync(cancellationToken)
            : new ReadLease(await _postgres!.OpenConnectionAsync(cancellationToken));

    /// <summary>
    /// Runs a write's <paramref name="work"/> in a write transaction and returns its answer once
    /// committed; work that is <see cref="WriteResult.Discarded{T}"/> leaves nothing behind. On
    /// SQLite the writes of concurrent requests share one transaction and one fsync (<see cref="GroupCommit"/>),
    /// and the work's token is not passed on; on PostgreSQL each runs in its own transaction, whose
    /// row locks let writes of different sources proceed side by side (the server already shares
    /// a WAL flush among the commits that arrive together), and work that ends with
    /// <see cref="ExecuteLastAsync"/> has its commit sent with its last statements.
    /// </summary>
    public async Task<T> WriteAsync<T>(
        Func<DbConnection, DbTransaction, CancellationToken, Task<WriteResult<T>>> work, CancellationToken cancellationToken = default)
    {
        if (_sqliteWrites is not null)
        {
            return await _sqliteWrites.RunAsync((connection, transaction) => work(connection, transaction, CancellationToken.None), cancellationToken);
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = new PostgresWriteTransaction(await BeginWriteAsync(connection, cancellationToken));
        var result = await work(connection, transaction, cancellationToken);
        if (transaction.CommitSent)
        {
            // The commit went with the work's last statements, which succeeded (else the work threw).
            return result.Keep ? result.Value : throw new InvalidOperationException("A write that committed cannot be discarded.");
        }

        if (result.Keep)
        {
            await transaction.CommitAsync(cancellationToken);
        }
        else
        {
            await transaction.RollbackAsync(cancellationToken);
        }

        return result.Value;
    }

    /// <summary>
    /// Runs the last statements of a write's work (<paramref name="command"/>, one or several) and
    /// returns the first column of the first row they return. On PostgreSQL the write's
    /// <c>COMMIT</c> is sent with them, in the same round trip (each is one more wait for the
    /// server, a fifth of a PATCH's: docs/performance.md); nothing may run in the transaction
    /// after it, and the work must keep what it wrote. On SQLite the group commit commits later.
    /// </summary>
    public static async Task<object?> ExecuteLastAsync(DbCommand command, DbTransaction transaction, CancellationToken cancellationToken)
    {
        if (transaction is PostgresWriteTransaction write)
        {
            command.CommandText += ";\nCOMMIT";
            write.CommitSent = true;
        }

        return await command.ExecuteScalarAsync(cancellationToken);
    }

    /// <summary>Whether <see cref="ExecuteLastAsync"/> sends the commit of <paramref name="transaction"/> with its statements (PostgreSQL).</summary>
    public static bool SendsCommitWithLast(DbTransaction transaction) => transaction is PostgresWriteTransaction;

    /// <summary>The SQLite store's group commit, for tests' hooks; null on PostgreSQL.</summary>
    internal GroupCommit? SqliteWrites => _sqliteWrites;

    private async Task<SqliteConnection> OpenSqliteAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(cancellationToken);

        // Per-connection settings: wait for the writer instead of failing, make every commit
        // durable, and overwrite deleted content so erased secrets do not linger in free pages.
        // They belong to the native connection and survive its trips through the pool, so they are
        // set once per native connection, not on every open (that was a quarter of a GET's cost).
        if (!_configuredSqlite.TryGetValue(connection.Handle!, out _))
        {
            using var pragma = connection.CreateCommand();
            pragma.CommandText = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;";
            await pragma.ExecuteNonQueryAsync(cancellationToken);
            _configuredSqlite.AddOrUpdate(connection.Handle!, ConfiguredMarker);
        }

        return connection;
    }

    /// <summary>
    /// Begins a transaction for a read-merge-write that must not lose a concurrent update. SQLite
    /// takes the database write lock at once (<c>BEGIN IMMEDIATE</c>); PostgreSQL reads with
    /// <see cref="ForUpdate"/>, which locks just the row and lets other sources be written.
    /// </summary>
    public async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default)
    {
        if (Provider == StorageProvider.Postgres)
        {
            return await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
        }

        // SQLite admits one writer at a time. The writers of this process queue here, in order,
        // instead of each polling the lock in SQLite's busy handler, whose sleeps (up to 100 ms)
        // leave the lock idle: under 32 concurrent PATCHes that cost ~10x in throughput and put
        // p99 near a second (bench/). Writers in other processes still meet busy_timeout.
        if (!await _sqliteWriter.WaitAsync(SqliteWriterWait, cancellationToken))
        {
            throw new TimeoutException("Timed out waiting for the SQLite write lock.");
        }

        try
        {
            return new GatedTransaction(await connection.BeginTransactionAsync(IsolationLevel.Serializable, cancellationToken), _sqliteWriter);
        }
        catch
        {
            _sqliteWriter.Release();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_sqliteWrites is not null)
        {
            await _sqliteWrites.DisposeAsync();
        }

        _sqliteReaders?.Dispose();
        _sqliteWriter.Dispose();
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    private static string PrepareSqlite(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(
            string.IsNullOrWhiteSpace(connectionString) ? DefaultSqliteConnectionString : connectionString);
        if (builder.Mode != SqliteOpenMode.Memory && !string.IsNullOrEmpty(builder.DataSource) && builder.DataSource != ":memory:"
            && !builder.DataSource.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
        {
            // The store holds the secrets' ciphertexts and every connection detail: its folder and
            // file are the owner's only. SQLite gives the -wal, -shm and journal files it creates
            // later the mode of the database file, so creating that one 0600 covers them too. (A
            // file: URI is not a path; what SQLite creates for it is covered by the umask.)
            var path = Path.GetFullPath(builder.DataSource);
            if (Path.GetDirectoryName(path) is { Length: > 0 } directory)
            {
                OwnerOnlyFiles.CreateFolder(directory);
            }

            if (builder.Mode == SqliteOpenMode.ReadWriteCreate)
            {
                OwnerOnlyFiles.CreateEmptyFile(path);
            }
        }

        builder.Pooling = true;
        return builder.ToString();
    }
}

internal static class DbCommandExtensions
{
    /// <summary>
    /// A command for <paramref name="sql"/> in <paramref name="transaction"/>. On the SQLite group
    /// commit's connection it is the one already compiled for that SQL (<see cref="SqliteSession"/>):
    /// run it and dispose its reader, but neither dispose it nor change its text.
    /// </summary>
    public static DbCommand Command(this DbConnection connection, string sql, DbTransaction? transaction = null)
    {
        var inner = transaction is WrappedTransaction wrapped ? wrapped.Inner : transaction;
        if (connection is SqliteConnection sqlite && SqliteSession.Of(sqlite) is { } session)
        {
            var compiled = session.Command(sql);
            compiled.Transaction = (SqliteTransaction?)inner;
            return compiled;
        }

        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = inner;
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

/// <summary>A store transaction with something of Caravan's around it; commands run on <see cref="Inner"/>.</summary>
internal abstract class WrappedTransaction(DbTransaction inner) : DbTransaction
{
    public DbTransaction Inner { get; } = inner;

    public override IsolationLevel IsolationLevel => Inner.IsolationLevel;

    protected override DbConnection? DbConnection => Inner.Connection;
}

/// <summary>
/// A PostgreSQL write of <see cref="Database.WriteAsync{T}"/>: whether its <c>COMMIT</c> already went
/// with its last statements (<see cref="Database.ExecuteLastAsync"/>). Npgsql sees the session leave
/// the transaction and neither commits nor rolls back the inner transaction again.
/// </summary>
internal sealed class PostgresWriteTransaction(DbTransaction inner) : WrappedTransaction(inner)
{
    public bool CommitSent { get; set; }

    public override void Commit() => Inner.Commit();

    public override Task CommitAsync(CancellationToken cancellationToken = default) => Inner.CommitAsync(cancellationToken);

    public override void Rollback() => Inner.Rollback();

    public override Task RollbackAsync(CancellationToken cancellationToken = default) => Inner.RollbackAsync(cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        // Npgsql rolls back a transaction still open without blocking here; the base then disposes it again, a no-op.
        await Inner.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>A SQLite write transaction that holds the process's writer gate until it ends.</summary>
internal sealed class GatedTransaction(DbTransaction inner, SemaphoreSlim gate) : WrappedTransaction(inner)
{
    private int _released;

    public override void Commit()
    {
        Inner.Commit();
        Release();
    }

    public override async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        await Inner.CommitAsync(cancellationToken);
        Release();
    }

    public override void Rollback()
    {
        Inner.Rollback();
        Release();
    }

    public override async Task RollbackAsync(CancellationToken cancellationToken = default)
    {
        await Inner.RollbackAsync(cancellationToken);
        Release();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                Inner.Dispose();
            }
            finally
            {
                Release();
            }
        }

        base.Dispose(disposing);
    }

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            gate.Release();
        }
    }
}
