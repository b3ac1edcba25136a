using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Caravan.Api.Data;

/// <summary>
/// A connection lent for the short reads of the hot paths (the API-key check, GET of a source,
/// the list). Commands made with <see cref="Command"/> belong to the lease: run them, dispose their
/// readers, never dispose the commands. On PostgreSQL it is a pooled connection whose statements
/// Npgsql prepares automatically. On SQLite it is one of a few long-lived connections that keep
/// their statements compiled: Microsoft.Data.Sqlite compiles the SQL of every new command again,
/// which was about a third of a GET's time.
/// </summary>
public sealed class ReadLease : IAsyncDisposable
{
    private readonly DbConnection? _pooled;
    private readonly SqliteSession? _session;
    private readonly SqliteReadSessions? _owner;

    internal ReadLease(DbConnection pooled) => _pooled = pooled;

    internal ReadLease(SqliteSession session, SqliteReadSessions owner)
    {
        _session = session;
        _owner = owner;
    }

    /// <summary>A command for <paramref name="sql"/>, with no parameters yet; the lease keeps it.</summary>
    public DbCommand Command(string sql) => _session is not null ? _session.Command(sql) : _pooled!.Command(sql);

    public async ValueTask DisposeAsync()
    {
        if (_session is not null)
        {
            _owner!.Return(_session);
        }
        else
        {
            await _pooled!.DisposeAsync();
        }
    }
}

/// <summary>
/// An open SQLite connection and the statements it has compiled, keyed by their SQL: a read
/// session's, or the group commit's connection (<see cref="GroupCommit"/>), whose commands
/// <see cref="DbCommandExtensions.Command"/> hands out from here.
/// </summary>
internal sealed class SqliteSession(SqliteConnection connection) : IDisposable
{
    // Caravan's statements are a fixed set, but SQL made per call (a list of values, a table name)
    // must not grow a long-lived connection without end: past this many, a statement is compiled
    // for its one use, as on any connection, and counted.
    private const int MaxStatements = 256;

    /// <summary>
    /// Past this many commands compiled outside the cache, the owner replaces the session: the driver
    /// keeps a reference to every command a connection made until the connection closes.
    /// </summary>
    public const int MaxUncached = 4096;

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<SqliteConnection, SqliteSession> Registered = [];

    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

    public SqliteConnection Connection => connection;

    /// <summary>Commands made without the cache (see <see cref="MaxStatements"/>).</summary>
    public int Uncached { get; private set; }

    /// <summary>The session whose statements <paramref name="connection"/>'s commands come from, if it has one.</summary>
    public static SqliteSession? Of(SqliteConnection connection) => Registered.TryGetValue(connection, out var session) ? session : null;

    /// <summary>From now on, every command made on this connection with <see cref="DbCommandExtensions.Command"/> is this session's.</summary>
    public SqliteSession Register()
    {
        Registered.AddOrUpdate(connection, this);
        return this;
    }

    public SqliteCommand Command(string sql)
    {
        if (_commands.TryGetValue(sql, out var command))
        {
            command.Parameters.Clear();
            return command;
        }

        command = connection.CreateCommand();
        command.CommandText = sql;
        if (_commands.Count < MaxStatements)
        {
            _commands[sql] = command;
        }
        else
        {
            Uncached++;
        }

        return command;
    }

    public void Dispose()
    {
        Registered.Remove(connection);
        foreach (var command in _commands.Values)
        {
            command.Dispose();
        }

        connection.Dispose();
    }
}

/// <summary>
/// A few long-lived SQLite read connections. At most <c>limit</c> exist; a reader waits for a free
/// one rather than opening more: SQLite reads run on this process's threads, so connections beyond
/// a couple per core add memory (each has its own page cache), not speed.
/// </summary>
internal sealed class SqliteReadSessions(Func<CancellationToken, Task<SqliteConnection>> open, int limit) : IDisposable
{
    private readonly ConcurrentBag<SqliteSession> _idle = [];
    private readonly SemaphoreSlim _slots = new(limit, limit);
    private int _disposed;

    public async Task<ReadLease> RentAsync(CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        try
        {
            var session = _idle.TryTake(out var idle) ? idle : new SqliteSession(await open(cancellationToken));
            return new ReadLease(session, this);
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    public void Return(SqliteSession session)
    {
        if (Volatile.Read(ref _disposed) == 1)
        {
            session.Dispose();
            return;
        }

        if (session.Uncached > SqliteSession.MaxUncached)
        {
            session.Dispose(); // the next lease opens a fresh one
        }
        else
        {
            _idle.Add(session);
        }

        _slots.Release();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        while (_idle.TryTake(out var session))
        {
            session.Dispose();
        }

        _slots.Dispose();
    }
}
