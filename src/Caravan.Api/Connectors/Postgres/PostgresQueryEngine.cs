using System.Buffers.Binary;
using System.Data;
using System.Globalization;
using System.Text;
using Caravan.Api.Connectivity;
using Microsoft.Extensions.Options;
using Npgsql;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.Postgres;

/// <summary>
/// POSTGRES and SUPABASE: each statement, once the gateway's <see cref="Check"/> let it through,
/// in its own <c>BEGIN READ ONLY</c> transaction, rolled back (and the session reset), with
/// <c>statement_timeout</c> (unless it is the sessions' default) and the <c>uid</c> setting made
/// <c>LOCAL</c> to it through parameters (never interpolated). The statement goes
/// alone in one extended-protocol Parse, so the server itself refuses a text holding two
/// statements. Sessions come from a pool per source and configuration version, and start with
/// <c>default_transaction_read_only=on</c> and the default <c>statement_timeout</c>. Rows are read
/// sequentially, so no row is buffered whole: each value's size is known before it is read, and a
/// value the result cannot hold ends the result without being read.
/// </summary>
public sealed class PostgresQueryEngine(NetworkPath network, QueryPools pools, IOptions<RowSecurityOptions> rowSecurity) : IQueryEngine
{
    /// <summary>The statement time limit every pooled session starts with: the query default.</summary>
    private static readonly string SessionTimeoutOption =
        " -c statement_timeout=" + QueryOptions.DefaultTimeoutMs.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// What ends every statement's batch: the rollback, then what a rollback leaves in the session —
    /// session-level advisory locks and prepared statements (a database's own function may take or
    /// make them; the check refuses the statements that do). Cursors, LISTEN, temporary tables and
    /// settings go with the rollback. DISCARD ALL would do all of it but cannot run in a batch
    /// (it refuses a transaction block); these run in the same round trip as the statement.
    /// </summary>
    private static readonly string[] SessionReset = ["ROLLBACK", "SELECT pg_catalog.pg_advisory_unlock_all()", "DEALLOCATE ALL"];

    /// <summary>PostgreSQL: <c>$tag$</c> strings, nested comments, <c>E'…'</c> escapes, <c>U&amp;"…"</c> names.</summary>
    public static SqlDialect Dialect { get; } = new(DollarQuotes: true, NestedComments: true, EscapeStrings: true, UnicodeNames: true);

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<PostgresType>(), SourceTypes.Get<SupabaseType>()];

    /// <summary>
    /// What PostgreSQL's read-only transaction lets through and a query must not do: transaction
    /// and session control, maintenance and locks (by the first word), data-modifying CTEs and
    /// <c>SELECT … INTO</c>, <c>EXPLAIN ANALYZE</c>, and the functions that change settings (the
    /// uid), keep session state, signal other sessions, reach other databases or files, run an SQL
    /// text, assign a transaction id or change server state.
    /// </summary>
    public static StatementCheck Check { get; } = new()
    {
        Dialect = Dialect,
        Database = "PostgreSQL",
        Leading = ["SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"],
        Words = new()
        {
            { StatementCheck.Writes, "INSERT", "UPDATE", "DELETE", "MERGE" },
            { StatementCheck.WritesResult, "INTO" },
            { StatementCheck.RunsOrAnalyzes, "ANALYZE", "ANALYSE" },
        },
        FieldCalls = true,
        Functions = new()
        {
            { StatementCheck.ChangesSettings, "set_config" },
            { StatementCheck.TakesLocks, "pg_advisory*", "pg_try_advisory*" },
            {
                StatementCheck.StopsSessions, "pg_terminate_backend", "pg_cancel_backend", "pg_signal_backend", "pg_reload_conf",
                "pg_rotate_logfile*", "pg_promote", "pg_log_backend_memory_contexts"
            },
            { StatementCheck.ConnectsElsewhere, "dblink*", "pg_background*" },
            {
                StatementCheck.RunsSqlText, "query_to_xml*", "query_to_xmlschema", "cursor_to_xml*", "ts_stat", "ts_rewrite", "crosstab*",
                "connectby", "xpath_table"
            },
            {
                StatementCheck.ServerFiles, "pg_read_file*", "pg_read_binary_file", "pg_ls_*", "pg_stat_file", "pg_file_write",
                "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls", "lo_import", "lo_export"
            },
            // PostgreSQL lets large-object writes through a read-only transaction.
            { StatementCheck.Writes, "lo_creat", "lo_create", "lo_open", "lowrite", "lo_truncate*", "lo_unlink", "lo_put", "lo_from_bytea" },
            {
                StatementCheck.KeepsSessionState, "pg_replication_origin_session_setup", "pg_replication_origin_session_reset",
                "pg_replication_origin_xact_setup", "pg_replication_origin_xact_reset"
            },
            { StatementCheck.AssignsTransactionId, "txid_current*", "pg_current_xact_id*" },
            {
                StatementCheck.ServerState, "pg_stat_reset*", "pg_stat_statements_reset", "pg_switch_wal", "pg_switch_xlog",
                "pg_create_restore_point", "pg_backup_start", "pg_backup_stop", "pg_start_backup", "pg_stop_backup", "pg_wal_replay_*",
                "pg_xlog_replay_*", "pg_create_physical_replication_slot", "pg_create_logical_replication_slot", "pg_drop_replication_slot",
                "pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot", "pg_replication_slot_advance",
                "pg_logical_slot_*", "pg_logical_emit_message", "pg_replication_origin_create", "pg_replication_origin_drop",
                "pg_replication_origin_advance", "pg_import_system_collations", "pg_nextoid"
            },
        },
    };

    public StatementCheck Statements => Check;

    public string? UidUnsupported => null;

    public string DescribeTable(string schema, string table) => $"""
        SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable
        FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {Text(schema)} AND c.relname = {Text(table)}
          AND c.relkind IN ('r', 'v', 'm', 'f', 'p') AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """;

    private static string Text(string text) => $"pg_catalog.convert_from(pg_catalog.decode('{SqlLiterals.Hex(text)}', 'hex'), 'UTF8')";

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    public async Task RunAsync(QueryRun run)
    {
        var endpoint = await network.ReachAsync(run.Connection, run.Token);
        using var lease = pools.Acquire(run.SourceId, run.OrganizationId, $"{run.Version}|{endpoint.Key}", () =>
            PostgresDriver.DataSource(run.Connection, endpoint, network.ConnectLimit, settings =>
            {
                settings.Pooling = true;
                settings.MinPoolSize = 0;
                settings.MaxPoolSize = Math.Max(1, run.Options.MaxConcurrentPerSource);
                settings.ConnectionIdleLifetime = 60;
                settings.CommandTimeout = 0;
                // Every statement runs in a transaction that is rolled back, which undoes any SET it
                // made, and the batch ends with what a rollback does not undo (SessionReset): no
                // DISCARD ALL, which cannot run in the batch, is needed between two queries.
                settings.NoResetOnClose = true;
                // Sessions start with the default time limit, so a query that keeps it needs no
                // setting of its own (a SET inside the rolled-back transaction never outlives it).
                settings.Options += SessionTimeoutOption;
            }));
        await using var session = await PostgresDriver.OpenAsync(lease.Pool, run.Token);
        var closed = false;
        try
        {
            closed = await ExecuteAsync(session, run, rowSecurity.Value.UidSetting);
        }
        catch (PostgresException exception)
        {
            throw Map(exception, run);
        }
        catch (NpgsqlException exception) when (exception.InnerException is TimeoutException)
        {
            throw run.TimedOut(exception);
        }
        catch (NpgsqlException exception) when (!run.Token.IsCancellationRequested)
        {
            throw PostgresDriver.Map(exception);
        }
        finally
        {
            if (!closed)
            {
                await RollbackAsync(session);
            }
        }
    }

    /// <summary>The stable code for an error of the statement.</summary>
    public static Exception Map(PostgresException exception, QueryRun run)
    {
        var said = $"PostgreSQL error {exception.SqlState}: {exception.MessageText}";
        return exception.SqlState switch
        {
            // read_only_sql_transaction: the database refused a write.
            "25006" => run.Refused($"Queries are read-only; the database refused this statement ({exception.MessageText})."),
            // invalid_transaction_termination, active_sql_transaction and friends: transaction control.
            "2D000" or "25001" or "25P01" or "0B000" => run.Refused($"Queries cannot control transactions ({exception.MessageText})."),
            "57014" => run.TimedOut(exception),
            "42601" when exception.MessageText.Contains("multiple commands", StringComparison.Ordinal) =>
                new QueryException(new QueryFailure(QueryFailureKind.Invalid, QueryCodes.MultipleStatements,
                    "Send one statement per query; this text holds more than one.", "sql"), exception),
            "42601" => run.Failed(QueryCodes.SyntaxError, said, exception),
            "42501" => run.Failed(QueryCodes.InsufficientPrivilege, said, exception),
            "42P01" or "42703" or "42883" or "42704" or "3F000" or "42P02" or "3D000" => run.Failed(QueryCodes.UndefinedObject, said, exception),
            ['0', '8', ..] or "57P01" or "57P02" or "57P03" or "28P01" or "28000" => PostgresDriver.Map(exception),
            _ => run.Failed(QueryCodes.QueryFailed, said, exception),
        };
    }

    /// <summary>
    /// One round trip on the way that succeeds: <c>BEGIN READ ONLY</c>, the local settings, the
    /// statement (alone in its own Parse: a batch command is never split or rewritten) and the
    /// <see cref="SessionReset"/>, in one batch. A failure skips the rest of the batch; the caller
    /// then rolls back and resets in a batch of its own.
    /// </summary>
    private static async Task<bool> ExecuteAsync(NpgsqlConnection session, QueryRun run, string uidSetting)
    {
        await using var batch = new NpgsqlBatch(session);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN TRANSACTION READ ONLY"));
        var settings = 0;
        if (run.Request.TimeoutMs != QueryOptions.DefaultTimeoutMs)
        {
            var timeout = new NpgsqlBatchCommand("SELECT pg_catalog.set_config('statement_timeout', $1, true)");
            timeout.Parameters.Add(new NpgsqlParameter { Value = run.Request.TimeoutMs.ToString(CultureInfo.InvariantCulture) });
            batch.BatchCommands.Add(timeout);
            settings++;
        }

        if (run.Request.Uid is { } uid)
        {
            var setting = new NpgsqlBatchCommand("SELECT pg_catalog.set_config($1, $2, true)");
            setting.Parameters.Add(new NpgsqlParameter { Value = uidSetting });
            setting.Parameters.Add(new NpgsqlParameter { Value = uid });
            batch.BatchCommands.Add(setting);
            settings++;
        }

        batch.BatchCommands.Add(new NpgsqlBatchCommand(run.Statement));
        foreach (var reset in SessionReset)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand(reset));
        }

        var reader = await batch.ExecuteReaderAsync(CommandBehavior.SequentialAccess, run.Token);
        var cancelled = false;
        try
        {
            // The reader starts at the first result set: the settings' one-row answers come first.
            var hasResult = true;
            for (var i = 0; i < settings && hasResult; i++)
            {
                hasResult = await reader.NextResultAsync(run.Token);
            }

            var columns = new QueryColumn[hasResult ? reader.FieldCount : 0];
            for (var i = 0; i < columns.Length; i++)
            {
                columns[i] = new QueryColumn(reader.GetName(i), reader.GetDataTypeName(i));
            }

            await run.BeginAsync(columns);
            while (hasResult && await reader.ReadAsync(run.Token))
            {
                var row = new object?[columns.Length];
                var fits = true;
                for (var i = 0; i < row.Length && fits; i++)
                {
                    (fits, row[i]) = await ReadAsync(reader, i, columns[i], run);
                }

                if (!fits || !await run.AddAsync(row))
                {
                    // Enough rows or bytes: stop the statement in the database rather than read the rest of its result.
                    cancelled = true;
                    batch.Cancel();
                    break;
                }
            }

            if (!cancelled)
            {
                while (await reader.NextResultAsync(run.Token))
                {
                    // Drain to the end of the batch, so its ROLLBACK has run.
                }
            }
        }
        finally
        {
            try
            {
                await reader.DisposeAsync();
            }
            catch (PostgresException exception) when (cancelled && exception.SqlState == "57014")
            {
                // The cancellation asked for above.
            }
        }

        return !cancelled;
    }

    /// <summary>
    /// A numeric from its binary form (ndigits, weight, sign, dscale, then base-10000 digits): a
    /// decimal when one holds its scale, else a double; NaN and ±Infinity as doubles (written as
    /// strings). Decoded here because the driver's decimal read fails on those only after consuming
    /// the value, which a sequential reader cannot read again.
    /// </summary>
    private static object Numeric(ReadOnlySpan<byte> data)
    {
        var count = BinaryPrimitives.ReadInt16BigEndian(data);
        var weight = BinaryPrimitives.ReadInt16BigEndian(data[2..]);
        var sign = BinaryPrimitives.ReadUInt16BigEndian(data[4..]);
        var scale = BinaryPrimitives.ReadInt16BigEndian(data[6..]);
        switch (sign)
        {
            case 0xC000:
                return double.NaN;
            case 0xD000:
                return double.PositiveInfinity;
            case 0xF000:
                return double.NegativeInfinity;
        }

        var text = new StringBuilder(8 + (4 * count) + scale);
        if (sign == 0x4000)
        {
            text.Append('-');
        }

        // Digit group i weighs 10000^(weight - i); groups the value leaves out are zero.
        text.Append(weight < 0 ? 0 : Digit(data, count, 0));
        for (var i = 1; i <= weight; i++)
        {
            text.Append(Digit(data, count, i).ToString("D4", CultureInfo.InvariantCulture));
        }

        if (scale > 0)
        {
            text.Append('.');
            var point = text.Length;
            for (var i = weight + 1; text.Length - point < scale; i++)
            {
                text.Append(Digit(data, count, i).ToString("D4", CultureInfo.InvariantCulture));
            }

            text.Length = point + scale;
        }

        // A decimal holds at most 28 digits after the point (and rounds beyond 28 significant ones).
        var number = text.ToString();
        const NumberStyles style = NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint;
        return scale <= 28 && decimal.TryParse(number, style, CultureInfo.InvariantCulture, out var exact)
            ? exact
            : double.Parse(number, style, CultureInfo.InvariantCulture);
    }

    private static short Digit(ReadOnlySpan<byte> data, short count, int index) =>
        index >= 0 && index < count ? BinaryPrimitives.ReadInt16BigEndian(data[(8 + (2 * index))..]) : (short)0;

    /// <summary>
    /// One value, read only once the result has room for it. The column's length comes first on the
    /// wire, so it is known (<c>GetBytes</c> without a buffer) before any of the value is read; a value
    /// the result cannot hold is never read, and the result ends before its row.
    /// </summary>
    private static async ValueTask<(bool Fits, object? Value)> ReadAsync(NpgsqlDataReader reader, int ordinal, QueryColumn column, QueryRun run)
    {
        if (await reader.IsDBNullAsync(ordinal, run.Token))
        {
            return (true, null);
        }

        var length = reader.GetBytes(ordinal, 0, null, 0, 0);
        if (!await run.HoldAsync(length))
        {
            return (false, null);
        }

        try
        {
            if (column.Type == "numeric" || column.Type.StartsWith("numeric(", StringComparison.Ordinal))
            {
                var data = new byte[length];
                reader.GetBytes(ordinal, 0, data, 0, data.Length);
                return (true, Numeric(data));
            }

            return (true, QueryValues.Normalize(await reader.GetFieldValueAsync<object>(ordinal, run.Token), column.Type));
        }
        catch (Exception exception) when (exception is InvalidCastException or OverflowException or NotSupportedException)
        {
            throw run.Failed(QueryCodes.QueryFailed,
                $"Column {column.Name} has the type {column.Type}, which Caravan cannot read; cast it to text in the query ({column.Name}::text).", exception);
        }
    }

    /// <summary>The <see cref="SessionReset"/> after a statement that failed or was cancelled, in one round trip.</summary>
    private static async Task RollbackAsync(NpgsqlConnection session)
    {
        if (session.FullState != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            await using var rollback = new NpgsqlBatch(session);
            foreach (var reset in SessionReset)
            {
                rollback.BatchCommands.Add(new NpgsqlBatchCommand(reset));
            }

            await rollback.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException)
        {
            // A broken session is not returned to the pool in a usable state anyway.
        }
    }
}
