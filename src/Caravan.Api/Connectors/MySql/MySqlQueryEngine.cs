using Caravan.Api.Connectivity;
using MySqlConnector;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.MySql;

/// <summary>
/// MYSQL and SINGLESTORE: sessions made read-only (<c>SET SESSION TRANSACTION READ ONLY</c>, which
/// also covers the implicit commit of DDL) and each statement in a <c>START TRANSACTION READ ONLY</c>
/// rolled back afterwards. The time limit is enforced by cancelling the statement, which
/// MySqlConnector does in the server (<c>KILL QUERY</c>). Times are read in UTC. A row arrives whole
/// (one packet, bounded by the server's <c>max_allowed_packet</c>); binary values are bounded before
/// they are copied out of it.
/// </summary>
public sealed class MySqlQueryEngine(NetworkPath network, QueryPools pools) : IQueryEngine
{
    private static readonly string[] WriteVerbs =
        ["INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "REPLACE", "GRANT", "REVOKE", "LOCK", "INDEX", "EXECUTE"];

    /// <summary>MySQL, MariaDB, SingleStore: backticks, <c>#</c> comments, <c>--</c> with a space, executable <c>/*! … */</c> and <c>/*M! … */</c>.</summary>
    public static SqlDialect Dialect { get; } = new(HashComments: true, Backticks: true, ExecutableComments: true, DashCommentNeedsSpace: true);

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<MySqlType>(), SourceTypes.Get<SingleStoreType>()];

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    /// <summary>
    /// What a read-only transaction lets through and a query must not do: <c>KILL</c>, <c>HANDLER</c>,
    /// <c>DO</c>, <c>SET</c>, <c>ANALYZE TABLE</c> and other statements (by the first word),
    /// <c>INTO OUTFILE/DUMPFILE/@var</c>, a CTE in front of <c>UPDATE</c>/<c>DELETE</c>, locking reads,
    /// user-level locks (they outlive the transaction) and server file access. Executable comments
    /// (<c>/*! … */</c>, MariaDB's <c>/*M! … */</c>) are read as the code they are.
    /// </summary>
    public static StatementCheck Check { get; } = new()
    {
        Dialect = Dialect,
        Database = "MySQL",
        Leading = ["SELECT", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"],
        Words = new()
        {
            { StatementCheck.Writes, "INSERT", "REPLACE", "UPDATE", "DELETE" },
            { StatementCheck.WritesResult, "INTO" },
            { StatementCheck.TakesLocks, "LOCK" },
            { StatementCheck.RunsOrAnalyzes, "ANALYZE" },
        },
        // INSERT(str, pos, len, newstr) and REPLACE(str, from, to) are string functions.
        CallableWords = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "INSERT", "REPLACE" },
        Functions = new()
        {
            { StatementCheck.TakesLocks, "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS" },
            { StatementCheck.ServerFiles, "LOAD_FILE", "sys_exec", "sys_eval" },
        },
    };

    public StatementCheck Statements => Check;

    public string? UidUnsupported =>
        "MySQL has no row-level security to hand uid to; Caravan refuses it rather than ignore it. Filter by the user in the statement, or use a view per user.";

    public string DescribeTable(string schema, string table) => $"""
        SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE = 'YES' AS nullable
        FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = {Text(schema)} AND TABLE_NAME = {Text(table)}
        ORDER BY ORDINAL_POSITION
        """;

    private static string Text(string text) => $"CONVERT(UNHEX('{SqlLiterals.Hex(text)}') USING utf8mb4)";

    public async Task RunAsync(QueryRun run)
    {
        var endpoint = await network.ReachAsync(run.Connection, run.Token);
        using var lease = pools.Acquire(run.SourceId, run.OrganizationId, $"{run.Version}|{endpoint.Key}", () =>
            new Pool(MySqlDriver.DataSource(run.Connection, new MySqlConnectionStringBuilder(MySqlDriver.ConnectionString(run.Connection, endpoint, network.ConnectLimit))
            {
                Pooling = true,
                MinimumPoolSize = 0,
                MaximumPoolSize = (uint)Math.Max(1, run.Options.MaxConcurrentPerSource),
                ConnectionIdleTimeout = 60,
                ConnectionReset = true,
                AllowUserVariables = true,
                DefaultCommandTimeout = 0,
            }.ConnectionString)));
        await using var session = await MySqlDriver.OpenAsync(lease.Pool.DataSource, run.Token);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(run.Token);
        limit.CancelAfter(run.Request.Timeout);
        try
        {
            await ExecuteAsync(session, "SET time_zone = '+00:00'; START TRANSACTION READ ONLY", run.Token);
            await StatementAsync(session, run, limit.Token);
        }
        catch (MySqlException exception) when (limit.IsCancellationRequested && !run.Token.IsCancellationRequested)
        {
            throw run.TimedOut(exception);
        }
        catch (OperationCanceledException exception) when (limit.IsCancellationRequested && !run.Token.IsCancellationRequested)
        {
            throw run.TimedOut(exception);
        }
        catch (MySqlException exception)
        {
            throw Map(exception, run);
        }
        finally
        {
            if (session.State == System.Data.ConnectionState.Open)
            {
                try
                {
                    await ExecuteAsync(session, (lease.Pool.ReleasesLocks ??= ReleasesLocks(session, run.Connection.Type)) ? "ROLLBACK; DO RELEASE_ALL_LOCKS()" : "ROLLBACK", CancellationToken.None);
                }
                catch (MySqlException)
                {
                    // A broken session is not reused.
                }
            }
        }
    }

    /// <summary>
    /// Whether the session can drop every user-level lock it holds (<c>RELEASE_ALL_LOCKS</c>: MySQL
    /// 5.7.5, MariaDB 10.5.2; SingleStore has no user-level locks). The statement check refuses
    /// <c>GET_LOCK</c>, but a function of the database's own may take one, and the pooled session
    /// would hold it while it idles: MySqlConnector resets a session when it is taken from the pool,
    /// not when it is returned.
    /// </summary>
    private static bool ReleasesLocks(MySqlConnection session, SourceType type)
    {
        if (type is SingleStoreType)
        {
            return false;
        }

        var text = session.ServerVersion;
        var mariaDb = text.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);
        if (mariaDb && text.StartsWith("5.5.5-", StringComparison.Ordinal))
        {
            text = text["5.5.5-".Length..];
        }

        var end = 0;
        while (end < text.Length && (char.IsAsciiDigit(text[end]) || text[end] == '.'))
        {
            end++;
        }

        return Version.TryParse(text[..end], out var version) && version >= (mariaDb ? new Version(10, 5, 2) : new Version(5, 7, 5));
    }

    public static Exception Map(MySqlException exception, QueryRun run)
    {
        var said = $"MySQL error {exception.Number}: {exception.Message}";
        var verb = exception.Message.Split(' ', 2)[0].ToUpperInvariant();
        return exception.ErrorCode switch
        {
            MySqlErrorCode.CannotExecuteInReadOnlyTransaction or MySqlErrorCode.OptionPreventsStatement or (MySqlErrorCode)1836 =>
                run.Refused($"Queries are read-only; the database refused this statement ({exception.Message})."),
            MySqlErrorCode.TableAccessDenied or MySqlErrorCode.ColumnAccessDenied when WriteVerbs.Contains(verb) =>
                run.Refused($"Queries are read-only; the database refused this statement ({exception.Message})."),
            MySqlErrorCode.QueryInterrupted or (MySqlErrorCode)3024 or (MySqlErrorCode)1969 => run.TimedOut(exception),
            MySqlErrorCode.ParseError or MySqlErrorCode.SyntaxError => run.Failed(QueryCodes.SyntaxError, said, exception),
            MySqlErrorCode.NoSuchTable or MySqlErrorCode.BadFieldError or MySqlErrorCode.UnknownDatabase or (MySqlErrorCode)1305 or (MySqlErrorCode)1630 =>
                run.Failed(QueryCodes.UndefinedObject, said, exception),
            MySqlErrorCode.TableAccessDenied or MySqlErrorCode.ColumnAccessDenied or MySqlErrorCode.DatabaseAccessDenied
                or MySqlErrorCode.SpecifiedAccessDeniedError or (MySqlErrorCode)1370 => run.Failed(QueryCodes.InsufficientPrivilege, said, exception),
            MySqlErrorCode.UnableToConnectToHost or MySqlErrorCode.AccessDenied => MySqlDriver.Map(exception),
            _ when exception.Number >= 2000 && exception.Number < 3000 => MySqlDriver.Map(exception),
            _ => run.Failed(QueryCodes.QueryFailed, said, exception),
        };
    }

    private static async Task ExecuteAsync(MySqlConnection session, string sql, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, session);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task StatementAsync(MySqlConnection session, QueryRun run, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(run.Statement, session);
        var reader = await command.ExecuteReaderAsync(cancellationToken);
        var cancelled = false;
        try
        {
            var columns = new QueryColumn[reader.FieldCount];
            for (var i = 0; i < columns.Length; i++)
            {
                columns[i] = new QueryColumn(reader.GetName(i), reader.GetDataTypeName(i));
            }

            await run.BeginAsync(columns);
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = new object?[columns.Length];
                var fits = true;
                for (var i = 0; i < row.Length && fits; i++)
                {
                    (fits, row[i]) = await ReadAsync(reader, i, columns[i].Type, run);
                }

                if (!fits || !await run.AddAsync(row))
                {
                    cancelled = true;
                    command.Cancel();
                    break;
                }
            }
        }
        finally
        {
            try
            {
                await reader.DisposeAsync();
            }
            catch (MySqlException exception) when (cancelled && exception.ErrorCode == MySqlErrorCode.QueryInterrupted)
            {
                // The cancellation asked for above.
            }
        }
    }

    /// <summary>
    /// One value. The row already arrived whole (the protocol sends a row as one packet, at most the
    /// server's max_allowed_packet); a binary value's length is known before it is copied out of the
    /// packet and encoded, so one the result cannot hold is never copied.
    /// </summary>
    private static async ValueTask<(bool Fits, object? Value)> ReadAsync(MySqlDataReader reader, int ordinal, string type, QueryRun run)
    {
        if (reader.IsDBNull(ordinal))
        {
            return (true, null);
        }

        if (reader.GetFieldType(ordinal) == typeof(byte[]) && !await run.HoldAsync(ValueReads.Base64Length(Length(reader, ordinal))))
        {
            return (false, null);
        }

        return (true, Read(reader.GetValue(ordinal), type));
    }

    /// <summary>A binary value's length in the packet, without copying it (0 for a column MySqlConnector does not count as binary).</summary>
    private static long Length(MySqlDataReader reader, int ordinal)
    {
        try
        {
            return reader.GetBytes(ordinal, 0, null, 0, 0);
        }
        catch (InvalidCastException)
        {
            return 0;
        }
    }

    private static object? Read(object value, string type)
    {
        // The session's time zone is UTC, so TIMESTAMP values are UTC instants.
        return value is DateTime time && type.Equals("TIMESTAMP", StringComparison.OrdinalIgnoreCase)
            ? QueryValues.Normalize(DateTime.SpecifyKind(time, DateTimeKind.Utc), type)
            : value is MySqlDateTime { IsValidDateTime: false } ? null : QueryValues.Normalize(value, type);
    }

    /// <summary>The source's own MySqlConnector pool (a data source's); retiring the pool disposes it, which clears it.</summary>
    private sealed class Pool(MySqlDataSource dataSource) : IAsyncDisposable
    {
        public MySqlDataSource DataSource => dataSource;

        /// <summary>Whether its server has <c>RELEASE_ALL_LOCKS</c>: read from the first session's server version.</summary>
        public bool? ReleasesLocks { get; set; }

        public ValueTask DisposeAsync() => dataSource.DisposeAsync();
    }
}
