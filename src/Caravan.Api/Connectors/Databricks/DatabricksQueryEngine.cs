using System.Globalization;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Microsoft.Extensions.Options;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.Databricks;

/// <summary>
/// DATABRICKS SQL warehouses through the Statement Execution API (<c>POST /api/2.0/sql/statements</c>)
/// with the source's access token: <c>row_limit</c> one above <c>max_rows</c> (so a cut is seen),
/// <c>byte_limit</c> the result cap, <c>disposition: INLINE</c>, <c>format: JSON_ARRAY</c>,
/// <c>wait_timeout: 0s</c> so the statement id comes back at once; the status is polled, rows are
/// read as they arrive and result chunks fetched one at a time as rows are written, and
/// <c>POST /api/2.0/sql/statements/{id}/cancel</c> is sent when the time limit passes. The API does
/// not report a statement's type, so writes are kept out by <see cref="WarehouseStatements"/>; the
/// token's grants are the real boundary.
/// </summary>
public sealed class DatabricksQueryEngine(NetworkPath network, IOptions<ConnectivityOptions> options) : IQueryEngine, IDisposable
{
    private const string Service = "Databricks";
    private readonly HttpClient _http = RestQuery.Client(network);

    /// <summary>Databricks (Spark SQL): <c>'…'</c> and <c>"…"</c> strings, backtick names, <c>--</c> comments.</summary>
    public static SqlDialect Dialect { get; } = new(Backticks: true, DollarInNames: false);

    public IReadOnlyCollection<SourceType> Types { get; } = [DatabricksDriver.Type];

    public StatementCheck Statements { get; } = WarehouseStatements.Check(Dialect, Service);

    public string? UidUnsupported =>
        "Databricks' Statement Execution API has no per-statement setting a row filter could read safely, so uid cannot be handed to it.";

    public void Dispose() => _http.Dispose();

    /// <summary>The body of the statement request.</summary>
    public static JsonObject Body(QueryRun run, string warehouseId)
    {
        var body = new JsonObject
        {
            ["warehouse_id"] = warehouseId,
            ["statement"] = run.Statement,
            ["wait_timeout"] = "0s",
            ["on_wait_timeout"] = "CONTINUE",
            ["row_limit"] = run.Request.MaxRows + 1L,
            ["byte_limit"] = run.Options.MaxResultBytes,
            ["disposition"] = "INLINE",
            ["format"] = "JSON_ARRAY",
        };
        if (run.Connection.Text("catalog") is { } catalog)
        {
            body["catalog"] = catalog;
        }

        return body;
    }

    public async Task RunAsync(QueryRun run)
    {
        var (service, warehouseId, token) = Connect(run.Connection);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(run.Token);
        deadline.CancelAfter(run.Request.Timeout);
        string? id = null;
        try
        {
            var rows = new ResultRows(run);
            var reading = rows.At("result", "data_array");
            var answer = await SendAsync(service, HttpMethod.Post, "api/2.0/sql/statements", Body(run, warehouseId), token, reading, deadline.Token);
            id = answer.Field("statement_id");
            for (var attempt = 0; !reading.Stopped && State(answer) is "PENDING" or "RUNNING" && id is { Length: > 0 }; attempt++)
            {
                await Task.Delay(RestService.Poll(attempt), deadline.Token);
                reading = rows.At("result", "data_array");
                answer = await SendAsync(service, HttpMethod.Get, Statement(id), null, token, reading, deadline.Token);
            }

            if (reading.Stopped)
            {
                // The result was cut while its first rows were read.
                return;
            }

            var state = State(answer);
            if (state != "SUCCEEDED")
            {
                throw state == "FAILED"
                    ? Map(answer.Field("status", "error", "error_code"), answer.Field("status", "error", "message"), run)
                    : run.Failed(QueryCodes.QueryFailed, $"The statement ended {state?.ToLowerInvariant() ?? "without a state"} in Databricks.");
            }

            await ReadAsync(answer, rows, service, token, run, deadline.Token);
        }
        catch (OperationCanceledException exception) when (deadline.IsCancellationRequested)
        {
            if (id is { Length: > 0 })
            {
                await RestQuery.CancelAsync(cancel => SendAsync(service, HttpMethod.Post, Statement(id) + "/cancel", null, token, cancel));
            }

            if (run.Token.IsCancellationRequested)
            {
                throw;
            }

            throw run.TimedOut(exception);
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException && !run.Token.IsCancellationRequested)
        {
            throw RestService.MapNetwork(exception, Service);
        }
    }

    /// <summary>The 422 for a statement Databricks failed, by the error class in its message.</summary>
    public static QueryException Map(string? errorCode, string? message, QueryRun run)
    {
        var said = RestQuery.Said(message ?? errorCode ?? "no message");
        var text = $"Databricks error {errorCode}: {said}";
        bool Has(string what) => said.Contains(what, StringComparison.Ordinal) || errorCode == what;
        if (Has("PARSE_SYNTAX_ERROR") || Has("PARSE_EMPTY_STATEMENT"))
        {
            return run.Failed(QueryCodes.SyntaxError, text);
        }

        if (Has("TABLE_OR_VIEW_NOT_FOUND") || Has("UNRESOLVED_COLUMN") || Has("SCHEMA_NOT_FOUND") || Has("UNRESOLVED_ROUTINE")
            || Has("CATALOG_NOT_FOUND") || Has("NO_SUCH_CATALOG") || Has("RESOURCE_DOES_NOT_EXIST"))
        {
            return run.Failed(QueryCodes.UndefinedObject, text);
        }

        return Has("INSUFFICIENT_PERMISSIONS") || Has("PERMISSION_DENIED")
            ? run.Failed(QueryCodes.InsufficientPrivilege, text)
            : run.Failed(QueryCodes.QueryFailed, text);
    }

    /// <summary>One JSON_ARRAY cell (text or null) of a column of the given <c>type_name</c>.</summary>
    public static object? Convert(JsonNode? cell, string typeName)
    {
        if (cell is not JsonValue value || !value.TryGetValue<string>(out var text))
        {
            return null;
        }

        var invariant = CultureInfo.InvariantCulture;
        return typeName.ToUpperInvariant() switch
        {
            "BYTE" or "SHORT" or "INT" or "LONG" when long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var whole) => whole,
            "FLOAT" or "DOUBLE" when double.TryParse(text, NumberStyles.Float, invariant, out var real) => real,
            "DECIMAL" when decimal.TryParse(text, NumberStyles.Number, invariant, out var exact) => exact,
            "BOOLEAN" => text == "true",
            "ARRAY" or "MAP" or "STRUCT" => new RawJson(text),
            _ => text,
        };
    }

    /// <summary>After the first answer (whose rows were read as they arrived): the next chunks, one at a time, only while rows are still wanted.</summary>
    private async Task ReadAsync(RestAnswer answer, ResultRows rows, Uri service, string token, QueryRun run, CancellationToken cancellationToken)
    {
        await rows.BeginAsync(answer.Json);
        var serviceCut = answer.Json?["manifest"]?["truncated"] is JsonValue cut && cut.TryGetValue<bool>(out var truncated) && truncated;
        var link = answer.Json?["result"]?["next_chunk_internal_link"];
        for (var chunks = 0; link is JsonValue value && value.TryGetValue<string>(out var next) && next.Length > 0 && chunks < 10_000; chunks++)
        {
            var reading = rows.At("data_array");
            var chunk = await SendAsync(service, HttpMethod.Get, next, null, token, reading, cancellationToken);
            if (reading.Stopped)
            {
                return;
            }

            link = chunk.Json?["next_chunk_internal_link"];
        }

        if (serviceCut)
        {
            // Databricks stopped at byte_limit (at row_limit, one more than max_rows, the row above already cut it).
            run.MarkTruncated(QueryLimits.MaxResultBytes);
        }
    }

    private static object?[] Values(JsonNode? row, string[] types)
    {
        var cells = row as JsonArray ?? [];
        var values = new object?[types.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = i < cells.Count ? Convert(cells[i], types[i]) : null;
        }

        return values;
    }

    private Task<RestAnswer> SendAsync(Uri service, HttpMethod method, string path, JsonNode? body, string token, CancellationToken cancellationToken) =>
        SendAsync(service, method, path, body, token, null, cancellationToken);

    private async Task<RestAnswer> SendAsync(
        Uri service, HttpMethod method, string path, JsonNode? body, string token, AnswerRows? rows, CancellationToken cancellationToken)
    {
        using var request = RestService.Json(method, RestService.Under(service, path), body);
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        var answer = await RestService.SendAsync(_http, request, Service, rows, cancellationToken);
        return answer.IsSuccess ? answer : throw DatabricksDriver.Map(answer.Status, answer.Field("error_code"), answer.Field("message"));
    }

    private static string Statement(string id) => "api/2.0/sql/statements/" + Uri.EscapeDataString(id);

    private static string? State(RestAnswer answer) => answer.Field("status", "state");

    private (Uri Service, string WarehouseId, string Token) Connect(SourceConnection connection)
    {
        var host = connection.Text("server_hostname");
        var path = connection.Text("http_path");
        var token = connection.Secret("access_token");
        if (host is null || path is null || token is null)
        {
            throw DriverFailures.Unconfigured();
        }

        var id = DatabricksDriver.WarehouseId(path) ?? throw WarehouseStatements.Unsupported(
            "http_path names a cluster (/sql/protocolv1/...), not a SQL warehouse; the Statement Execution API needs a warehouse path such as /sql/1.0/warehouses/abc123.");
        try
        {
            return (RestService.BaseUri(options.Value, DatabricksDriver.Type, RestService.HttpsUrl(host)), id, token);
        }
        catch (UriFormatException)
        {
            throw new ConnectivityException(FailureCodes.HostUnresolvable, "server_hostname does not make a valid URL.");
        }
    }

    /// <summary>One statement's rows as they arrive, in its first answer and then its chunks: the columns come from the first answer's manifest.</summary>
    private sealed class ResultRows(QueryRun run)
    {
        private string[]? _types;

        /// <summary>A reader for the rows at <paramref name="path"/> of one answer.</summary>
        public AnswerRows At(params string[] path) => new(path, answer => _types is not null || answer["manifest"] is JsonObject, async (row, answer) =>
            await run.AddAsync(Values(row, await BeginAsync(answer))), run.HoldAsync);

        /// <summary>The columns, from the manifest of <paramref name="answer"/> the first time (written out as the result's columns).</summary>
        public async Task<string[]> BeginAsync(JsonNode? answer)
        {
            if (_types is null)
            {
                var columns = answer?["manifest"]?["schema"]?["columns"] as JsonArray ?? [];
                _types = [.. columns.Select(c => c?["type_name"]?.GetValue<string>() ?? "STRING")];
                await run.BeginAsync([.. columns.Select(c => new QueryColumn(
                    c?["name"]?.GetValue<string>() ?? string.Empty,
                    c?["type_text"]?.GetValue<string>() ?? c?["type_name"]?.GetValue<string>() ?? "STRING"))]);
            }

            return _types;
        }
    }
}
