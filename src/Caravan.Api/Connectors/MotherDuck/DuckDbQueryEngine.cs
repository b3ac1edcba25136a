using System.Globalization;
using System.Text.Json;
using Caravan.Api.Connectivity;
using DuckDB.NET.Data;
using Microsoft.Extensions.Options;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.MotherDuck;

/// <summary>
/// MOTHERDUCK (and local DuckDB files, when the operator allows them): DuckDB's own parser first
/// decides whether the text is one SELECT (<c>json_serialize_sql</c> serializes nothing else),
/// then a local file is opened with <c>access_mode=read_only</c> and external access off. DuckDB
/// cannot be interrupted from here: past the time limit the answer is 504 and the statement's
/// connection is closed when it ends. DuckDB runs inside this process, so each statement gets its
/// own <c>memory_limit</c>, the replica's result budget.
/// </summary>
public sealed class DuckDbQueryEngine(NetworkPath network, IOptions<LocalFileOptions> localFiles) : IQueryEngine
{
    /// <summary>DuckDB, whose parser is PostgreSQL's.</summary>
    public static SqlDialect Dialect { get; } = new(DollarQuotes: true, NestedComments: true, EscapeStrings: true, UnicodeNames: true);

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<MotherDuckType>()];

    /// <summary>
    /// In front of DuckDB's own parser (SELECT only, below): the functions that read files, other
    /// databases or the environment, or run an SQL text, and a file named in place of a table
    /// (<c>FROM 'data.csv'</c>). A local file is opened with external access off, which refuses
    /// those too; a MotherDuck connection is not, and runs such reads on Caravan's own host.
    /// </summary>
    public static StatementCheck Check { get; } = new()
    {
        Dialect = Dialect,
        Database = "DuckDB",
        Leading = ["SELECT", "WITH", "VALUES", "TABLE", "FROM", "SHOW", "DESCRIBE", "DESC", "SUMMARIZE", "PIVOT", "UNPIVOT"],
        Functions = new()
        {
            {
                StatementCheck.ServerFiles, "read_*", "parquet_*", "glob", "sniff_csv", "st_read*", "getenv", "iceberg_*", "delta_scan",
                "csv_scan", "json_scan", "text_scan"
            },
            { StatementCheck.ConnectsElsewhere, "sqlite_*", "postgres_*", "mysql_*" },
            { StatementCheck.RunsSqlText, "query", "query_table" },
        },
        FilesAsTables = true,
    };

    public StatementCheck Statements => Check;

    public string? UidUnsupported =>
        "DuckDB and MotherDuck have no row-level security to hand uid to; Caravan refuses it rather than ignore it.";

    public string DescribeTable(string schema, string table) => $"""
        SELECT column_name AS name, data_type AS type, is_nullable = 'YES' AS nullable
        FROM information_schema.columns
        WHERE table_catalog = current_database()
          AND table_schema = decode(unhex('{SqlLiterals.Hex(schema)}')) AND table_name = decode(unhex('{SqlLiterals.Hex(table)}'))
        ORDER BY ordinal_position
        """;

    public async Task RunAsync(QueryRun run)
    {
        var name = run.Connection.Text("database_name")
            ?? throw new ConnectivityException(FailureCodes.DriverError, "The source has no database_name yet; complete its configuration with update-config.");
        string connectionString;
        if (MotherDuckDriver.IsLocalFile(name))
        {
            if (!localFiles.Value.AllowLocalFiles)
            {
                throw new ConnectivityException(FailureCodes.EgressDenied,
                    "database_name names a local DuckDB file; Caravan opens local files only when Caravan__Egress__AllowLocalFiles=true.");
            }

            connectionString = MotherDuckDriver.LocalConnectionString(name);
        }
        else
        {
            await network.ResolveAllowedAsync(MotherDuckDriver.ServiceHost, run.Token);
            connectionString = MotherDuckDriver.CloudConnectionString(name, run.Connection.Secret("token"));
        }

        var settings = new DuckDBConnectionStringBuilder { ConnectionString = connectionString };
        settings["memory_limit"] = MemoryLimit(run);
        connectionString = settings.ConnectionString;
        await RunOnAsync(run, token => MotherDuckDriver.OpenAsync(connectionString, token));
    }

    /// <summary>
    /// DuckDB runs inside this process: its own memory for a statement is bounded by the replica's
    /// result budget. (It does not bound a single value: DuckDB builds one whole.)
    /// </summary>
    public static string MemoryLimit(QueryRun run) =>
        string.Create(CultureInfo.InvariantCulture, $"{Math.Max(1, run.Options.MaxBufferedResultBytes / 1024)}KiB");

    /// <summary>
    /// Runs the statement on a DuckDB session that <paramref name="open"/> gives (for MotherDuck, a
    /// local file, or a FILE source's attached databases): DuckDB's own parser first, then the rows,
    /// within the time limit. The session is closed when the statement ends, even past the limit.
    /// </summary>
    public static async Task RunOnAsync(QueryRun run, Func<CancellationToken, Task<DuckDBConnection>> open)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(run.Token);
        limit.CancelAfter(run.Request.Timeout);
        try
        {
            await Task.Run(() => CheckSelect(run), CancellationToken.None).WaitAsync(limit.Token);
            var session = await open(limit.Token);
            var work = Task.Run(() => Read(session, run, limit.Token), CancellationToken.None);
            try
            {
                await work.WaitAsync(limit.Token);
            }
            finally
            {
                _ = work.ContinueWith(_ => session.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
        catch (OperationCanceledException exception) when (limit.IsCancellationRequested && !run.Token.IsCancellationRequested)
        {
            throw run.TimedOut(exception);
        }
        catch (DuckDBException exception)
        {
            throw Map(exception, run);
        }
    }

    public static Exception Map(DuckDBException exception, QueryRun run)
    {
        var message = exception.Message.Split('\n', 2)[0].Trim();
        bool Says(string text) => message.Contains(text, StringComparison.OrdinalIgnoreCase);
        if (Says("read-only") || Says("read only"))
        {
            return run.Refused($"Queries are read-only; the database refused this statement ({message}).");
        }

        if (Says("Parser Error") || Says("syntax error"))
        {
            return run.Failed(QueryCodes.SyntaxError, "DuckDB error: " + message, exception);
        }

        if (Says("Catalog Error") || Says("Binder Error") || Says("does not exist"))
        {
            return run.Failed(QueryCodes.UndefinedObject, "DuckDB error: " + message, exception);
        }

        if (Says("Out of Memory"))
        {
            return run.Failed(QueryCodes.QueryFailed,
                $"DuckDB error: {message} (DuckDB's memory_limit for a query is Caravan__Query__MaxBufferedResultBytes).", exception);
        }

        if (Says("Permission Error"))
        {
            return run.Failed(QueryCodes.InsufficientPrivilege, "DuckDB error: " + message, exception);
        }

        return run.Failed(QueryCodes.QueryFailed, "DuckDB error: " + message, exception);
    }

    /// <summary>
    /// One value. A blob is a view of DuckDB's own memory whose length is known, so one the result
    /// cannot hold is never copied; DuckDB.NET hands other values over whole (text as a .NET string),
    /// and the row's size is checked right after (<see cref="QueryRun.AddAsync"/>).
    /// </summary>
    private static async ValueTask<(bool Fits, object? Value)> ReadAsync(System.Data.Common.DbDataReader reader, int ordinal, string type, QueryRun run)
    {
        if (reader.IsDBNull(ordinal))
        {
            return (true, null);
        }

        if (reader.GetFieldType(ordinal) == typeof(Stream))
        {
            await using var blob = reader.GetStream(ordinal);
            return await ValueReads.Base64Async(blob, run);
        }

        return (true, QueryValues.Normalize(reader.GetValue(ordinal), type));
    }

    /// <summary>Refuses anything but one SELECT, by DuckDB's own parser (in a private in-memory database).</summary>
    private static void CheckSelect(QueryRun run)
    {
        using var parser = new DuckDBConnection("DataSource=:memory:");
        parser.Open();
        using var command = parser.CreateCommand();
        command.CommandText = "SELECT json_serialize_sql($1::VARCHAR)";
        command.Parameters.Add(new DuckDBParameter(run.Statement));
        if (command.ExecuteScalar() is not string text)
        {
            return;
        }

        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;
        if (root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.True)
        {
            var message = root.TryGetProperty("error_message", out var said) ? said.GetString() ?? string.Empty : string.Empty;
            if (message.Contains("Only SELECT", StringComparison.OrdinalIgnoreCase))
            {
                throw run.Refused("Queries are read-only: DuckDB's parser found a statement that is not a SELECT.");
            }
        }
        else if (root.TryGetProperty("statements", out var statements) && statements.GetArrayLength() > 1)
        {
            throw new QueryException(new QueryFailure(QueryFailureKind.Invalid, QueryCodes.MultipleStatements,
                "Send one statement per query; this text holds more than one.", "sql"));
        }
    }

    private static async Task Read(DuckDBConnection session, QueryRun run, CancellationToken cancellationToken)
    {
        using var command = session.CreateCommand();
        command.CommandText = run.Statement;
        command.UseStreamingMode = true;
        using var reader = command.ExecuteReader();
        var columns = new QueryColumn[reader.FieldCount];
        for (var i = 0; i < columns.Length; i++)
        {
            columns[i] = new QueryColumn(reader.GetName(i), reader.GetDataTypeName(i));
        }

        await run.BeginAsync(columns);
        while (!cancellationToken.IsCancellationRequested && reader.Read())
        {
            var row = new object?[columns.Length];
            var fits = true;
            for (var i = 0; i < row.Length && fits; i++)
            {
                (fits, row[i]) = await ReadAsync(reader, i, columns[i].Type, run);
            }

            if (!fits || !await run.AddAsync(row))
            {
                return;
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
    }
}
