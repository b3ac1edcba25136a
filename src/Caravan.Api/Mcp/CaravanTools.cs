using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Query;
using Caravan.Api.Sources;
using Caravan.Api.Connectors;
using Caravan.Api.Tokens;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Caravan.Api.Mcp;

/// <summary>
/// The tools of the MCP server, each scoped to the organization of the API key that called. A
/// failure is a tool result with <c>isError: true</c> and a message an agent can act on, never an
/// exception and never a secret (messages from databases come scrubbed from the gateway and
/// discovery). Sources of other organizations do not exist here: their ids answer exactly like
/// ids that were never used.
/// </summary>
[McpServerToolType]
internal sealed class CaravanTools(
    IHttpContextAccessor http,
    Database database,
    SourceConnections sources,
    ConnectionTester tester,
    QueryGateway gateway,
    RateLimits limits)
{
    /// <summary>The tools that reach a database: they count against <c>TestsPerMinute</c> (and not against <c>RequestsPerMinute</c>).</summary>
    public static readonly IReadOnlySet<string> DatabaseTools = new HashSet<string>(["list_schemas", "describe_table", "run_query"], StringComparer.Ordinal);

    /// <summary>The default row limit of run_query: smaller than the HTTP route's, as agents read every row.</summary>
    public const int DefaultAgentMaxRows = 100;

    /// <summary>The most sources list_sources returns.</summary>
    public const int MaxListedSources = 1000;

    public const string Instructions = """
        Caravan gives read-only SQL access to the databases ("sources") registered by your organization.
        Typical flow: list_sources to find a source id, list_schemas to see its schemas, describe_table
        for the columns of a table, then run_query with one read-only SELECT. Results are limited in rows,
        time and size; database credentials are never shown. A failed call returns isError with a message
        saying what to do next. Tools named <source id>__<tool> belong to your organization's own MCP servers
        registered in Caravan: Caravan forwards them with the server's credentials.
        """;

    private const string NotFoundCode = "not_found";

    [AllowTokens(TokenScope.Read)]
    [McpServerTool(Name = "list_sources", Title = "List data sources", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("""
        Lists the data sources (databases) your organization registered in Caravan: for each its id, name,
        type (POSTGRES, MYSQL, CLICKHOUSE, MSSQL, ...), whether it is fully configured, whether run_query
        supports its type (supports_sql), and the schemas (selected_schemas, or selected_datasets for
        BigQuery) the organization chose to expose, when a selection is stored. Call this first: every other
        tool takes a source id from here. Does not contact any database. At most 1000 sources, ordered by id.
        """)]
    public async Task<CallToolResult> ListSources(CancellationToken cancellationToken)
    {
        var caller = Caller();
        var listed = new JsonArray();
        var truncated = false;
        await using (var lease = await database.LeaseReadAsync(cancellationToken))
        {
            await using var reader = await lease.Command($"""
                SELECT id, account_name, type, is_fully_configured, settings FROM sources
                WHERE organization_id = @org AND deleted_at IS NULL{caller.SourceCondition(database)}
                ORDER BY id LIMIT @limit
                """).With("@org", caller.OrganizationId).With("@limit", MaxListedSources + 1).WithSources(caller, database).ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                if (listed.Count == MaxListedSources)
                {
                    truncated = true;
                    break;
                }

                var type = reader.GetString(2);
                var source = new JsonObject
                {
                    ["id"] = reader.GetInt64(0),
                    ["name"] = reader.GetString(1),
                    ["type"] = type,
                    ["configured"] = reader.GetBoolean(3),
                    ["supports_sql"] = SourceTypes.Find(type) is { } known && gateway.EngineFor(known) is not null,
                };
                if (SelectionField(type) is { } field && Selection(JsonNode.Parse(reader.GetString(4)) as JsonObject, field) is { Count: > 0 } selected)
                {
                    source[field] = new JsonArray([.. selected.Select(n => JsonValue.Create(n))]);
                }

                listed.Add(source);
            }
        }

        return Success(new JsonObject { ["sources"] = listed, ["count"] = listed.Count, ["truncated"] = truncated });
    }

    [AllowTokens(TokenScope.Read)]
    [McpServerTool(Name = "list_schemas", Title = "List schemas of a source", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("""
        Lists the schemas of one source (databases for MySQL, SingleStore, ClickHouse and MongoDB; datasets for
        BigQuery). When the organization stored a selection of schemas for the source, only those are returned
        (origin "selection") and the database is not contacted; otherwise Caravan connects and lists the
        non-system schemas the database has (origin "discovery"). Use a returned name as the schema argument of
        describe_table, or to qualify table names in run_query. Counts against the per-minute limit of database
        tool calls. Errors: not_found (wrong source id: call list_sources), not_configured, unreachable
        (the database could not be reached: retry later), throttled (wait the seconds given).
        """)]
    public async Task<CallToolResult> ListSchemas(
        [Description("The id of the source, from list_sources.")] long source_id,
        CancellationToken cancellationToken)
    {
        var caller = Caller();
        if (Throttled(caller) is { } throttled)
        {
            return throttled;
        }

        if (await sources.FindAsync(caller, source_id, cancellationToken) is not { } row)
        {
            return NotFound(source_id);
        }

        var field = SelectionField(row.Type);
        if (field is not null && Selection(row.Settings, field) is { Count: > 0 } selected)
        {
            return Success(new JsonObject
            {
                ["source_id"] = row.Id,
                ["kind"] = SourceTypes.Find(row.Type)!.SchemaKind,
                ["origin"] = "selection",
                ["schemas"] = new JsonArray([.. selected.Select(n => JsonValue.Create(n))]),
            });
        }

        if (!row.IsFullyConfigured && !SourceTypes.Find(row.Type)!.ServesWhileIncomplete)
        {
            return NotConfigured(row.Id);
        }

        try
        {
            var discovery = await tester.DiscoverAsync(sources.Connect(row), cancellationToken);
            return Success(new JsonObject
            {
                ["source_id"] = row.Id,
                ["kind"] = discovery.Kind,
                ["origin"] = "discovery",
                ["schemas"] = new JsonArray([.. discovery.Names.Select(n => JsonValue.Create(n))]),
            });
        }
        catch (ConnectivityException failure)
        {
            return Failure(failure.Code, $"Could not list the schemas of source {row.Id}: the database could not be reached ({failure.Code}): "
                + $"{failure.Message} Retry later; if it keeps failing, an administrator must check the source's configuration or network.");
        }
    }

    [AllowTokens(TokenScope.Read)]
    [McpServerTool(Name = "describe_table", Title = "Describe a table", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("""
        Lists the columns of one table or view: name, the database's type name, and whether it may be null,
        in column order. Use it before writing a query, to get column names and types right. Works for
        PostgreSQL, Supabase, MySQL, SingleStore, ClickHouse, MotherDuck/DuckDB and SQL Server sources. Names
        are matched exactly as stored (usually lower case in PostgreSQL, case-sensitive). For MySQL,
        SingleStore and ClickHouse the schema is the database name. Counts against the per-minute limit of
        database tool calls. Errors: not_found (wrong source id, or no such table: check list_schemas and
        the spelling), unsupported (the source's type cannot be described), unreachable, timeout, throttled.
        """)]
    public async Task<CallToolResult> DescribeTable(
        [Description("The id of the source, from list_sources.")] long source_id,
        [Description("The schema holding the table (the database name for MySQL, SingleStore and ClickHouse), as list_schemas shows it, e.g. public or dbo.")] string schema,
        [Description("The table or view name, exactly as stored, without schema and without quotes.")] string table,
        CancellationToken cancellationToken)
    {
        var caller = Caller();
        if (Throttled(caller) is { } throttled)
        {
            return throttled;
        }

        if ((BadName("schema", schema) ?? BadName("table", table)) is { } invalid)
        {
            return invalid;
        }

        if (await sources.FindAsync(caller, source_id, cancellationToken) is not { } row)
        {
            return NotFound(source_id);
        }

        var engine = gateway.EngineFor(SourceTypes.Find(row.Type)!);
        if (engine?.DescribeTable(schema, table) is not { } statement)
        {
            return Failure(QueryCodes.Unsupported, $"describe_table does not support {row.Type} sources. "
                + (engine is not null
                    ? "Use run_query on the database's own catalog instead."
                    : "Caravan cannot run SQL on this type either; use list_schemas to see what the source holds."));
        }

        using var sink = new ResultSink { KeptRows = [] };
        var request = new QueryRequest(statement, gateway.MaxRowsLimit, QueryOptions.DefaultTimeoutMs, null);
        if (await gateway.RunAsync(caller, source_id, request, sink, cancellationToken) is { } failure)
        {
            return QueryFailed(source_id, failure);
        }

        if (sink.KeptRows!.Count == 0)
        {
            return Failure(NotFoundCode, $"Source {row.Id} has no table or view named \"{table}\" in schema \"{schema}\" that this source's user can see. "
                + "Names are matched exactly (check case); call list_schemas for the schemas, or run_query on the database's catalog to list tables.");
        }

        var columns = new JsonArray();
        foreach (var column in sink.KeptRows)
        {
            columns.Add(new JsonObject
            {
                ["name"] = column[0] as string,
                ["type"] = column[1] as string,
                ["nullable"] = column[2] switch
                {
                    bool flag => flag,
                    long number => number != 0,
                    ulong number => number != 0,
                    string text => text is "1" or "true" or "YES",
                    _ => null,
                },
            });
        }

        return Success(new JsonObject { ["source_id"] = row.Id, ["schema"] = schema, ["table"] = table, ["columns"] = columns });
    }

    [AllowTokens(TokenScope.Query)]
    [McpServerTool(Name = "run_query", Title = "Run a read-only SQL query", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("""
        Runs one read-only SQL statement (SELECT, or WITH ... SELECT) on a source and returns the result as
        compact JSON: columns (name, database type), rows (arrays in column order), row_count, truncated,
        truncated_by (only when truncated: the limit that cut the result) and duration_ms. Write in the source's
        own SQL dialect (see its type in list_sources). Read-only is enforced by the database: INSERT, UPDATE,
        DELETE, DDL and writes hidden in functions are refused. One statement per call. Limits: max_rows (default
        100, at most the server's ceiling, 100000 unless its operator set another; truncated_by max_rows means
        there were more rows: aggregate or filter rather than raise the limit), timeout_ms (default 30000, at most
        300000; the statement is cancelled in the database), and caps on result bytes (truncated_by
        max_result_bytes: select narrower columns or fewer rows; max_buffered_result_bytes: the server is busy,
        retry shortly). Counts against the per-minute limit of database tool calls. Errors: not_found (wrong
        source id), write_refused (the statement writes: use a SELECT), multiple_statements, syntax_error /
        undefined_object / insufficient_privilege (fix the SQL; describe_table shows columns), timeout (narrow
        the query or raise timeout_ms), unreachable, source_busy (retry in a few seconds), not_configured,
        unsupported, throttled (wait the seconds given).
        """)]
    public async Task<CallToolResult> RunQuery(
        [Description("The id of the source, from list_sources.")] long source_id,
        [Description("One read-only SQL statement in the source's dialect; a trailing semicolon is fine.")] string sql,
        [Description("Most rows to return (default 100, at most the server's ceiling: 100000 unless its operator set another). Beyond it the result is cut and truncated is true.")] int? max_rows = null,
        [Description("Time limit in milliseconds (default 30000, at most 300000); the statement is cancelled in the database when it passes.")] int? timeout_ms = null,
        [Description("Optional end-user id handed to the database for row-level security (PostgreSQL: the setting caravan.uid); never part of the SQL. Leave it out unless your application uses it.")] string? uid = null,
        CancellationToken cancellationToken = default)
    {
        var caller = Caller();
        if (Throttled(caller) is { } throttled)
        {
            return throttled;
        }

        var body = new JsonObject { ["sql"] = sql, ["max_rows"] = max_rows ?? DefaultAgentMaxRows };
        if (timeout_ms is not null)
        {
            body["timeout_ms"] = timeout_ms;
        }

        if (uid is not null)
        {
            body["uid"] = uid;
        }

        // Read as the HTTP route reads a body (from JSON text), so both check arguments the same way.
        var (request, errors) = QueryRequestReader.Read(JsonNode.Parse(body.ToJsonString())!.AsObject(), gateway.MaxRowsLimit);
        if (request is null)
        {
            return Failure("invalid", "Invalid arguments: " + string.Join(" ", errors.ToBody().Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
        }

        using var sink = new ResultSink();
        if (await gateway.RunAsync(caller, source_id, request, sink, cancellationToken) is { } failure)
        {
            return QueryFailed(source_id, failure);
        }

        using var result = JsonDocument.Parse(sink.Json);
        var content = new List<ContentBlock> { new TextContentBlock { Text = result.RootElement.GetRawText() } };
        if (sink.Summary is { Truncated: true } summary)
        {
            content.Add(new TextContentBlock
            {
                Text = string.Create(CultureInfo.InvariantCulture, $"The result was truncated after {summary.RowCount} rows by {summary.TruncatedBy}: ")
                    + summary.TruncatedBy switch
                    {
                        QueryLimits.MaxResultBytes =>
                            "the next row would pass the server's cap on the bytes of one result (a value in it may be large). Select fewer or narrower columns (a prefix of long text, its length) or fewer rows.",
                        QueryLimits.MaxBufferedResultBytes =>
                            "the server is holding many results at once and could not hold the next row. Retry in a few seconds, or ask for less.",
                        _ => "more rows exist. Aggregate, filter or page (LIMIT/OFFSET) rather than fetch everything.",
                    },
            });
        }

        return new CallToolResult { Content = content, StructuredContent = result.RootElement.Clone() };
    }

    private Caller Caller() =>
        http.HttpContext?.Features.Get<Caller>() ?? throw new InvalidOperationException("An MCP tool ran outside a request authenticated by McpGate.");

    /// <summary>Takes one <c>TestsPerMinute</c> token for a tool that reaches a database; the error result when none is left.</summary>
    private CallToolResult? Throttled(Caller caller)
    {
        if (limits.TryAcquire(caller.KeyId, RateBucket.Tests, out var retryAfter))
        {
            return null;
        }

        var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));
        return Failure("throttled", string.Create(CultureInfo.InvariantCulture,
            $"Throttled: this API key has used its database tool calls for now (list_schemas, describe_table and run_query share a per-minute limit). Retry in {seconds} s; nothing was run."));
    }

    private static CallToolResult? BadName(string field, string name) =>
        string.IsNullOrWhiteSpace(name) ? Failure("invalid", $"Invalid arguments: {field} may not be blank.")
        : name.Length > 256 ? Failure("invalid", $"Invalid arguments: {field} is longer than 256 characters, which no database allows for a name.")
        : name.Contains('\0', StringComparison.Ordinal) ? Failure("invalid", $"Invalid arguments: {field} may not contain null characters.")
        : null;

    private static CallToolResult NotFound(long sourceId) =>
        Failure(NotFoundCode, string.Create(CultureInfo.InvariantCulture,
            $"Not found: there is no source with id {sourceId} in your organization. Call list_sources for the ids you can use."));

    private static CallToolResult NotConfigured(long sourceId) =>
        Failure(QueryCodes.NotConfigured, string.Create(CultureInfo.InvariantCulture,
            $"Source {sourceId} is not fully configured yet, so Caravan cannot connect to it. An administrator must complete its configuration (update-config); choose another source meanwhile."));

    /// <summary>A failure of the gateway as a message an agent can act on; the gateway's messages are already scrubbed of secrets.</summary>
    private static CallToolResult QueryFailed(long sourceId, QueryFailure failure) => failure.Kind switch
    {
        QueryFailureKind.NotFound => NotFound(sourceId),
        QueryFailureKind.NotConfigured when failure.Message == QueryGateway.NotConfiguredMessage => NotConfigured(sourceId),

        // A type that serves what is ready of its own work (FILE) says itself why nothing is.
        QueryFailureKind.NotConfigured => Failure(failure.Code, string.Create(CultureInfo.InvariantCulture,
            $"Source {sourceId} cannot be queried yet: {failure.Message} Retry in a while, or choose another source meanwhile.")),
        QueryFailureKind.Invalid when failure.Code == QueryCodes.WriteRefused =>
            Failure(failure.Code, $"Refused, nothing was changed: queries are read-only. {failure.Message} Use a SELECT statement."),
        QueryFailureKind.Invalid =>
            Failure(failure.Code, $"Invalid {failure.Field ?? "request"}: {failure.Message}"),
        QueryFailureKind.Database =>
            Failure(failure.Code, $"The database rejected the statement: {failure.Message} Fix the SQL (describe_table shows the columns) and try again."),
        QueryFailureKind.Unreachable =>
            Failure(failure.Code, $"The database could not be reached ({failure.Code}): {failure.Message} Retry later; if it keeps failing, an administrator must check the source's configuration or network."),
        QueryFailureKind.Busy =>
            Failure(failure.Code, $"{failure.Message} Wait a few seconds and retry."),
        QueryFailureKind.Timeout =>
            Failure(failure.Code, $"{failure.Message} Narrow the query (filter, aggregate, LIMIT) or pass a larger timeout_ms (at most 300000)."),
        _ => Failure(failure.Code, failure.Message),
    };

    private static CallToolResult Success(JsonObject result)
    {
        using var document = JsonDocument.Parse(result.ToJsonString());
        return new CallToolResult
        {
            Content = [new TextContentBlock { Text = document.RootElement.GetRawText() }],
            StructuredContent = document.RootElement.Clone(),
        };
    }

    /// <summary>A failed call as an agent reads it: <c>isError</c>, the message, and <c>{"error": {"code", "detail"}}</c>.</summary>
    internal static CallToolResult Failure(string code, string message)
    {
        using var document = JsonDocument.Parse(new JsonObject { ["error"] = new JsonObject { ["code"] = code, ["detail"] = message } }.ToJsonString());
        return new CallToolResult
        {
            IsError = true,
            Content = [new TextContentBlock { Text = message }],
            StructuredContent = document.RootElement.Clone(),
        };
    }

    private static string? SelectionField(string type) => SourceTypes.Find(type)?.SelectionField?.Name;

    private static List<string>? Selection(JsonObject? settings, string field) =>
        settings?[field] is JsonArray names ? [.. names.Select(n => n?.GetValue<string>()).OfType<string>()] : null;
}
