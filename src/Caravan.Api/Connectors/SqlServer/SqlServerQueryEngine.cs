using System.Data;
using Caravan.Api.Connectivity;
using Microsoft.Data.SqlClient;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.SqlServer;

/// <summary>
/// MSSQL: pooled sessions with <c>ApplicationIntent=ReadOnly</c> (an availability group routes
/// them to a read-only replica, where writes fail), each statement in a transaction that is
/// always rolled back, so a write the login is allowed to make does not persist. <c>uid</c> goes
/// to <c>SESSION_CONTEXT(N'caravan.uid')</c> (read-only for the statement), the mechanism SQL
/// Server's row-level security predicates read. The time limit is the command timeout, which
/// SqlClient enforces by an attention signal: the server stops the statement. Rows are read
/// sequentially, and long values (text, xml, binary) in parts, each only while the result has room.
/// </summary>
public sealed class SqlServerQueryEngine(NetworkPath network, QueryPools pools) : IQueryEngine
{
    /// <summary>The quoting and comment rules of the dialect.</summary>
    public static SqlDialect Dialect { get; } = new(Brackets: true, NestedComments: true);

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<MsSqlType>()];

    /// <summary>
    /// T-SQL needs no ';' between statements, so every statement word is refused wherever it stands,
    /// not only first: <c>EXEC</c>/<c>EXECUTE</c> (procedures, <c>xp_*</c>, dynamic SQL), <c>KILL</c>,
    /// <c>SHUTDOWN</c>, <c>RECONFIGURE</c>, <c>DBCC</c>, writes, <c>SELECT … INTO</c>, transaction and
    /// session control; also the rowset functions that reach other servers (<c>OPENROWSET</c>,
    /// <c>OPENQUERY</c>, <c>OPENDATASOURCE</c>), the functions that read server files, and the table
    /// hints that take exclusive or update locks.
    /// </summary>
    public static StatementCheck Check { get; } = new()
    {
        Dialect = Dialect,
        Database = "SQL Server",
        Leading = ["SELECT", "WITH"],
        Words = new()
        {
            {
                StatementCheck.Writes, "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "CREATE", "ALTER", "DROP", "GRANT", "REVOKE",
                "DENY", "BULK", "WRITETEXT", "UPDATETEXT"
            },
            { StatementCheck.WritesResult, "INTO" },
            { StatementCheck.RunsSqlText, "EXEC", "EXECUTE", "IF", "WHILE", "GOTO", "RETURN" },
            { StatementCheck.StopsSessions, "KILL", "SHUTDOWN" },
            { StatementCheck.Administers, "RECONFIGURE", "DBCC", "BACKUP", "RESTORE", "CHECKPOINT", "ENABLE", "DISABLE" },
            { StatementCheck.ChangesSettings, "SET", "USE", "SETUSER", "REVERT" },
            { StatementCheck.ControlsTransaction, "BEGIN", "COMMIT", "ROLLBACK", "SAVE" },
            { StatementCheck.KeepsSessionState, "DECLARE", "OPEN", "CLOSE", "DEALLOCATE" },
            { "waits, or takes messages off a Service Broker queue (a write)", "WAITFOR", "RECEIVE", "SEND" },
            { StatementCheck.TakesLocks, "TABLOCK", "TABLOCKX", "XLOCK", "UPDLOCK", "HOLDLOCK" },
        },
        Functions = new()
        {
            { StatementCheck.ConnectsElsewhere, "OPENROWSET", "OPENQUERY", "OPENDATASOURCE" },
            { StatementCheck.RunsSqlText, "xp_*", "sp_*" },
            { StatementCheck.ServerFiles, "fn_get_audit_file", "fn_xe_file_target_read_file", "fn_trace_gettable", "fn_dblog", "fn_dump_dblog" },
        },
    };

    public StatementCheck Statements => Check;

    public string? UidUnsupported => null;

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    /// <summary>The settings of the pool of one source version: read intent, pooling, the checked address.</summary>
    public static SqlConnectionStringBuilder Settings(SourceConnection connection, DatabaseEndpoint endpoint, TimeSpan connectLimit, int poolSize)
    {
        var builder = SqlServerDriver.Build(connection, endpoint, connectLimit);
        builder.Pooling = true;
        builder.MinPoolSize = 0;
        builder.MaxPoolSize = Math.Max(1, poolSize);
        builder.ApplicationIntent = ApplicationIntent.ReadOnly;
        return builder;
    }

    public string DescribeTable(string schema, string table) => $"""
        SELECT c.COLUMN_NAME AS name,
            c.DATA_TYPE + CASE
                WHEN c.CHARACTER_MAXIMUM_LENGTH = -1 THEN '(max)'
                WHEN c.CHARACTER_MAXIMUM_LENGTH IS NOT NULL THEN '(' + CAST(c.CHARACTER_MAXIMUM_LENGTH AS varchar(11)) + ')'
                WHEN c.DATA_TYPE IN ('decimal', 'numeric') THEN '(' + CAST(c.NUMERIC_PRECISION AS varchar(11)) + ',' + CAST(c.NUMERIC_SCALE AS varchar(11)) + ')'
                ELSE '' END AS type,
            CAST(CASE WHEN c.IS_NULLABLE = 'YES' THEN 1 ELSE 0 END AS bit) AS nullable
        FROM INFORMATION_SCHEMA.COLUMNS c
        WHERE c.TABLE_SCHEMA = {Text(schema)} AND c.TABLE_NAME = {Text(table)}
        ORDER BY c.ORDINAL_POSITION
        """;

    private static string Text(string text) => $"CAST(0x{SqlLiterals.HexUtf16(text)} AS nvarchar(128))";

    public async Task RunAsync(QueryRun run)
    {
        var endpoint = await network.ReachAsync(run.Connection, run.Token);
        var settings = Settings(run.Connection, endpoint, network.ConnectLimit, run.Options.MaxConcurrentPerSource);
        using var lease = pools.Acquire(run.SourceId, run.OrganizationId, $"{run.Version}|{endpoint.Key}", () => new Pool(settings, SqlServerTls.Pin(settings, run.Connection)));
        await using var session = await SqlServerDriver.OpenAsync(new SqlConnectionStringBuilder(lease.Pool.ConnectionString), run.Connection, run.Token);
        await using var transaction = (SqlTransaction)await session.BeginTransactionAsync(IsolationLevel.ReadCommitted, run.Token);
        try
        {
            if (run.Request.Uid is { } uid)
            {
                await using var context = new SqlCommand("EXEC sys.sp_set_session_context @key = N'caravan.uid', @value = @uid, @read_only = 0", session, transaction);
                context.Parameters.Add(new SqlParameter("@uid", SqlDbType.NVarChar, 4000) { Value = uid });
                await context.ExecuteNonQueryAsync(run.Token);
            }

            await using var command = new SqlCommand(run.Statement, session, transaction)
            {
                CommandTimeout = Math.Max(1, (int)Math.Ceiling(run.Request.TimeoutMs / 1000.0)),
            };
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, run.Token);
            var columns = new QueryColumn[reader.FieldCount];
            for (var i = 0; i < columns.Length; i++)
            {
                columns[i] = new QueryColumn(reader.GetName(i), reader.GetDataTypeName(i));
            }

            await run.BeginAsync(columns);
            while (await reader.ReadAsync(run.Token))
            {
                var row = new object?[columns.Length];
                var fits = true;
                for (var i = 0; i < row.Length && fits; i++)
                {
                    (fits, row[i]) = await ReadAsync(reader, i, columns[i].Type, run);
                }

                if (!fits || !await run.AddAsync(row))
                {
                    command.Cancel();
                    break;
                }
            }
        }
        catch (SqlException exception)
        {
            throw Map(exception, run);
        }
        finally
        {
            try
            {
                await transaction.RollbackAsync(CancellationToken.None);
            }
            catch (Exception exception) when (exception is SqlException or InvalidOperationException)
            {
                // Already rolled back by the server (an error, or the cancellation).
            }
        }
    }

    /// <summary>
    /// One value of a sequential reader (a row is not buffered whole): text, xml and binary are
    /// streamed in parts, each only while the result has room for it; other types are small.
    /// </summary>
    private static async ValueTask<(bool Fits, object? Value)> ReadAsync(SqlDataReader reader, int ordinal, string type, QueryRun run)
    {
        if (await reader.IsDBNullAsync(ordinal, run.Token))
        {
            return (true, null);
        }

        var name = type.ToLowerInvariant();
        if (name == "xml")
        {
            // SqlClient streams xml through GetChars only.
            long offset = 0;
            var (fits, xml) = await ValueReads.TextAsync(buffer =>
            {
                var read = (int)reader.GetChars(ordinal, offset, buffer, 0, buffer.Length);
                offset += read;
                return ValueTask.FromResult(read);
            }, run);
            return (fits, xml);
        }

        if (name is "char" or "varchar" or "nchar" or "nvarchar" or "text" or "ntext" or "json")
        {
            using var text = reader.GetTextReader(ordinal);
            var (fits, value) = await ValueReads.TextAsync(buffer => text.ReadAsync(buffer.AsMemory(), run.Token), run);
            return (fits, fits ? QueryValues.Normalize(value, type) : null);
        }

        if (name is "binary" or "varbinary" or "image")
        {
            await using var bytes = reader.GetStream(ordinal);
            return await ValueReads.Base64Async(bytes, run);
        }

        return (true, QueryValues.Normalize(await reader.GetFieldValueAsync<object>(ordinal, run.Token), type));
    }

    public static Exception Map(SqlException exception, QueryRun run)
    {
        var first = exception.Errors.Count > 0 ? exception.Errors[0] : null;
        var number = first?.Number ?? exception.Number;
        var said = $"SQL Server error {number}: {first?.Message ?? exception.Message}";
        return number switch
        {
            // The database or replica is read-only; a write inside a read-only intent session.
            3906 or 3908 or 3910 or 3911 or 976 => run.Refused($"Queries are read-only; the database refused this statement ({first?.Message})."),
            -2 => run.TimedOut(exception),
            102 or 156 or 170 or 105 => run.Failed(QueryCodes.SyntaxError, said, exception),
            208 or 207 or 2812 or 4121 or 911 => run.Failed(QueryCodes.UndefinedObject, said, exception),
            229 or 230 or 262 or 300 => run.Failed(QueryCodes.InsufficientPrivilege, said, exception),
            _ when first?.Class >= 20 => SqlServerDriver.Map(exception),
            _ => run.Failed(QueryCodes.QueryFailed, said, exception),
        };
    }

    /// <summary>
    /// SqlClient pools by connection string; retiring the pool clears it, and removes the file of
    /// the server certificate it pins, if any (its path is in the connection string, so the pool is
    /// the source's own).
    /// </summary>
    private sealed class Pool(SqlConnectionStringBuilder settings, PinnedCertificate? pinned) : IAsyncDisposable
    {
        public string ConnectionString { get; } = settings.ConnectionString;

        public ValueTask DisposeAsync()
        {
            using (var connection = new SqlConnection(ConnectionString))
            {
                SqlConnection.ClearPool(connection);
            }

            pinned?.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
