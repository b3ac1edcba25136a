using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Microsoft.Extensions.Options;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.BigQuery;

/// <summary>
/// BIGQUERY through its REST API with the source's service-account key (an OAuth token with the
/// <c>bigquery.readonly</c> scope, as the connection test gets it). First a dry run
/// (<c>jobs.insert</c> with <c>dryRun: true</c>): BigQuery parses and plans the statement without
/// running it and reports <c>statistics.query.statementType</c>; anything but <c>SELECT</c> is refused
/// and never run. Then the job is inserted with an id chosen here and BigQuery's own
/// <c>jobTimeoutMs</c>, and its rows read page by page with <c>jobs.getQueryResults</c>
/// (<c>maxResults</c>, <c>pageToken</c>), each row as it arrives, and written before the next page is
/// asked for; when the time limit passes,
/// <c>jobs.cancel</c> is sent.
/// </summary>
public sealed class BigQueryQueryEngine(NetworkPath network, IOptions<ConnectivityOptions> options) : IQueryEngine, IDisposable
{
    public const int MaxPageRows = 10_000;
    private const string Service = "BigQuery";
    private readonly HttpClient _http = RestQuery.Client(network);
    private readonly BigQueryDriver _driver = new(network, options);

    /// <summary>BigQuery: backticks, <c>#</c> comments, triple-quoted strings.</summary>
    public static SqlDialect Dialect { get; } = new(Backticks: true, HashComments: true, TripleQuotes: true);

    public IReadOnlyCollection<SourceType> Types { get; } = [BigQueryDriver.Type];

    /// <summary>No check of its own: the dry run reports the statement type exactly (below).</summary>
    public StatementCheck Statements { get; } = new() { Dialect = Dialect, Database = Service };

    public string? UidUnsupported =>
        "BigQuery's row-level security follows the caller's Google identity, not a per-statement setting, so uid cannot be handed to it.";

    public void Dispose() => _http.Dispose();

    public static JsonObject DryRunBody(string statement) => new()
    {
        ["configuration"] = new JsonObject
        {
            ["dryRun"] = true,
            ["query"] = new JsonObject { ["query"] = statement, ["useLegacySql"] = false },
        },
    };

    public static JsonObject JobBody(QueryRun run, string projectId, string jobId) => new()
    {
        ["jobReference"] = new JsonObject { ["projectId"] = projectId, ["jobId"] = jobId },
        ["configuration"] = new JsonObject
        {
            ["query"] = new JsonObject { ["query"] = run.Statement, ["useLegacySql"] = false },
            ["jobTimeoutMs"] = run.Request.TimeoutMs.ToString(CultureInfo.InvariantCulture),
        },
    };

    public async Task RunAsync(QueryRun run)
    {
        var account = BigQueryDriver.ServiceAccount.From(run.Connection);
        var service = RestService.BaseUri(options.Value, BigQueryDriver.Type, "https://bigquery.googleapis.com/");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(run.Token);
        deadline.CancelAfter(run.Request.Timeout);
        string? token = null;
        var project = "bigquery/v2/projects/" + Uri.EscapeDataString(account.ProjectId);
        var jobId = "caravan_" + Guid.NewGuid().ToString("N");
        string? location = null;
        var inserted = false;
        try
        {
            token = await _driver.AccessTokenAsync(account, deadline.Token);

            var dryRun = await SendAsync(HttpMethod.Post, service, project + "/jobs", DryRunBody(run.Statement), token, run, deadline.Token);
            var statementType = dryRun.Field("statistics", "query", "statementType");
            if (statementType != "SELECT")
            {
                throw run.Refused(
                    $"Queries are read-only; BigQuery's dry run says this is {(statementType is null ? "not a SELECT" : "a " + statementType + " statement")}, and only SELECT runs.");
            }

            var job = await SendAsync(HttpMethod.Post, service, project + "/jobs", JobBody(run, account.ProjectId, jobId), token, run, deadline.Token);
            inserted = true;
            location = job.Field("jobReference", "location");
            if (job.Json?["status"]?["errorResult"] is JsonObject failed)
            {
                throw Map(HttpStatusCode.BadRequest, failed["reason"]?.GetValue<string>(), failed["message"]?.GetValue<string>(), run, token);
            }

            await ReadAsync(service, project, jobId, location, token, run, deadline.Token);
        }
        catch (OperationCanceledException exception) when (deadline.IsCancellationRequested)
        {
            if (inserted && token is not null)
            {
                var path = $"{project}/jobs/{Uri.EscapeDataString(jobId)}/cancel" + Location(location, '?');
                await RestQuery.CancelAsync(cancel => SendAsync(HttpMethod.Post, service, path, null, token, run, cancel));
            }

            if (run.Token.IsCancellationRequested)
            {
                throw;
            }

            throw run.TimedOut(exception);
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException && !run.Token.IsCancellationRequested)
        {
            throw RestQuery.Redacted(RestService.MapNetwork(exception, Service), token);
        }
    }

    /// <summary>
    /// The answer for a BigQuery error: the statement's own failure (invalid query, missing table,
    /// no access to a table) is a 422; credentials, quotas and the service's own failures are the
    /// connectivity failures (502).
    /// </summary>
    public static Exception Map(HttpStatusCode status, string? reason, string? message, QueryRun run, string? token)
    {
        var said = RestQuery.Said(message ?? reason ?? $"HTTP {(int)status}", token);
        var text = $"BigQuery error {reason}: {said}";
        Exception? known = reason switch
        {
            "timeout" or "stopped" => run.TimedOut(),
            "invalidQuery" => said.Contains("Not found", StringComparison.OrdinalIgnoreCase) || said.Contains("Unrecognized name", StringComparison.Ordinal)
                ? run.Failed(QueryCodes.UndefinedObject, text)
                : run.Failed(QueryCodes.SyntaxError, text),
            "notFound" => run.Failed(QueryCodes.UndefinedObject, text),
            "accessDenied" => run.Failed(QueryCodes.InsufficientPrivilege, text),
            "invalid" or "resourcesExceeded" or "responseTooLarge" => run.Failed(QueryCodes.QueryFailed, text),
            _ when status == HttpStatusCode.NotFound => run.Failed(QueryCodes.UndefinedObject, text),
            _ when status == HttpStatusCode.Forbidden => run.Failed(QueryCodes.InsufficientPrivilege, text),
            _ when status == HttpStatusCode.BadRequest => run.Failed(QueryCodes.QueryFailed, text),
            _ => null,
        };
        return known ?? new ConnectivityException(status == HttpStatusCode.Unauthorized ? FailureCodes.AuthFailed : FailureCodes.DriverError,
            status == HttpStatusCode.Unauthorized ? $"BigQuery refused the access token ({said})." : $"BigQuery answered HTTP {(int)status}: {text}");
    }

    /// <summary>One cell (<c>{"v": …}</c>'s value) of a field of the result schema.</summary>
    public static object? Convert(JsonNode? cell, JsonNode? field)
    {
        if (field?["mode"]?.GetValue<string>() == "REPEATED")
        {
            var items = new List<object?>();
            foreach (var item in cell as JsonArray ?? [])
            {
                items.Add(Scalar(item?["v"], field));
            }

            return items;
        }

        return Scalar(cell, field);
    }

    /// <summary>The type name of a schema field, as in BigQuery's SQL (a repeated field as ARRAY&lt;…&gt;).</summary>
    public static string TypeName(JsonNode? field)
    {
        var type = field?["type"]?.GetValue<string>() ?? "STRING";
        type = type switch
        {
            "INTEGER" => "INT64",
            "FLOAT" => "FLOAT64",
            "BOOLEAN" => "BOOL",
            "RECORD" => "STRUCT",
            _ => type,
        };
        return field?["mode"]?.GetValue<string>() == "REPEATED" ? $"ARRAY<{type}>" : type;
    }

    private static object? Scalar(JsonNode? cell, JsonNode? field)
    {
        var type = field?["type"]?.GetValue<string>() ?? "STRING";
        if (type is "RECORD" or "STRUCT")
        {
            if (cell?["f"] is not JsonArray values)
            {
                return null;
            }

            var fields = field?["fields"] as JsonArray ?? [];
            var record = new JsonObject();
            for (var i = 0; i < fields.Count && i < values.Count; i++)
            {
                record[fields[i]?["name"]?.GetValue<string>() ?? i.ToString(CultureInfo.InvariantCulture)] =
                    ToNode(Convert(values[i]?["v"], fields[i]));
            }

            return new RawJson(record.ToJsonString());
        }

        if (cell is not JsonValue value || !value.TryGetValue<string>(out var text))
        {
            return null;
        }

        var invariant = CultureInfo.InvariantCulture;
        switch (type)
        {
            case "INTEGER" or "INT64" when long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var whole):
                return whole;
            case "FLOAT" or "FLOAT64" when double.TryParse(text, NumberStyles.Float, invariant, out var real):
                return real;
            case "NUMERIC" or "BIGNUMERIC" when decimal.TryParse(text, NumberStyles.Float, invariant, out var exact):
                return exact;
            case "BOOLEAN" or "BOOL":
                return text == "true";
            case "JSON":
                return new RawJson(text);
            case "TIMESTAMP" when long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var micros):
                return DateTime.UnixEpoch.AddTicks(micros * 10).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", invariant);
            case "TIMESTAMP" when double.TryParse(text, NumberStyles.Float, invariant, out var seconds):
                return DateTime.UnixEpoch.AddTicks((long)Math.Round(seconds * TimeSpan.TicksPerSecond)).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", invariant);
            default:
                return text;
        }
    }

    private static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        bool flag => JsonValue.Create(flag),
        long number => JsonValue.Create(number),
        decimal number => JsonValue.Create(number),
        double number when double.IsFinite(number) => JsonValue.Create(number),
        RawJson json => JsonNode.Parse(json.Text),
        IReadOnlyList<object?> list => new JsonArray([.. list.Select(ToNode)]),
        _ => JsonValue.Create(value.ToString()),
    };

    private static string Location(string? location, char separator) =>
        location is { Length: > 0 } ? separator + "location=" + Uri.EscapeDataString(location) : string.Empty;

    /// <summary>
    /// The result, page by page: each page's rows are read as they arrive (<see cref="AnswerRows"/>),
    /// each only while the result has room for it, and written before the next page is asked for.
    /// </summary>
    private async Task ReadAsync(Uri service, string project, string jobId, string? location, string token, QueryRun run, CancellationToken cancellationToken)
    {
        var pageRows = Math.Min(run.Request.MaxRows + 1, MaxPageRows).ToString(CultureInfo.InvariantCulture);
        string? pageToken = null;
        JsonArray? schema = null;
        for (var attempt = 0; ; attempt++)
        {
            var path = $"{project}/queries/{Uri.EscapeDataString(jobId)}?maxResults={pageRows}&formatOptions.useInt64Timestamp=true"
                + "&timeoutMs=" + RemainingMs(run, cancellationToken).ToString(CultureInfo.InvariantCulture)
                + Location(location, '&') + (pageToken is null ? string.Empty : "&pageToken=" + Uri.EscapeDataString(pageToken));
            var delivered = 0;
            var rows = new AnswerRows(["rows"], answer => answer["schema"] is JsonObject, async (row, answer) =>
            {
                delivered++;
                schema ??= await BeginAsync(answer, run);
                return await run.AddAsync(Values(row, schema));
            }, run.HoldAsync);
            var page = await SendAsync(HttpMethod.Get, service, path, null, token, run, rows, cancellationToken);
            if (rows.Stopped)
            {
                return;
            }

            if (page.Json?["jobComplete"] is JsonValue complete && complete.TryGetValue<bool>(out var done) && !done)
            {
                await Task.Delay(RestService.Poll(attempt), cancellationToken);
                continue;
            }

            if (page.Json?["errors"] is JsonArray { Count: > 0 } errors && delivered == 0)
            {
                throw Map(HttpStatusCode.BadRequest, errors[0]?["reason"]?.GetValue<string>(), errors[0]?["message"]?.GetValue<string>(), run, token);
            }

            schema ??= await BeginAsync(page.Json, run);
            pageToken = page.Field("pageToken");
            if (string.IsNullOrEmpty(pageToken))
            {
                return;
            }
        }
    }

    /// <summary>The columns of the result, from the schema of its first page.</summary>
    private static async Task<JsonArray> BeginAsync(JsonNode? page, QueryRun run)
    {
        var schema = page?["schema"]?["fields"] as JsonArray ?? [];
        await run.BeginAsync([.. schema.Select(f => new QueryColumn(f?["name"]?.GetValue<string>() ?? string.Empty, TypeName(f)))]);
        return schema;
    }

    private static object?[] Values(JsonNode? row, JsonArray schema)
    {
        var cells = row?["f"] as JsonArray ?? [];
        var values = new object?[schema.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = i < cells.Count ? Convert(cells[i]?["v"], schema[i]) : null;
        }

        return values;
    }

    private static long RemainingMs(QueryRun run, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested ? 0 : Math.Clamp(run.Request.TimeoutMs, 1, 10_000);

    private Task<RestAnswer> SendAsync(HttpMethod method, Uri service, string path, JsonNode? body, string token, QueryRun run, CancellationToken cancellationToken) =>
        SendAsync(method, service, path, body, token, run, null, cancellationToken);

    private async Task<RestAnswer> SendAsync(
        HttpMethod method, Uri service, string path, JsonNode? body, string token, QueryRun run, AnswerRows? rows, CancellationToken cancellationToken)
    {
        using var request = RestService.Json(method, RestService.Under(service, path), body);
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        var answer = await RestService.SendAsync(_http, request, Service, rows, cancellationToken);
        if (answer.IsSuccess)
        {
            return answer;
        }

        var reason = answer.Json?["error"]?["errors"] is JsonArray { Count: > 0 } errors ? errors[0]?["reason"]?.GetValue<string>() : null;
        var message = answer.Field("error", "message");
        if (answer.Status is HttpStatusCode.Unauthorized || reason is "quotaExceeded" or "rateLimitExceeded" or "billingNotEnabled" or "billingTierLimitExceeded"
            || (int)answer.Status >= 500)
        {
            throw RestQuery.Redacted(BigQueryDriver.Map(answer, run.Connection.Text("project_id") ?? "of the key"), token);
        }

        throw Map(answer.Status, reason, message, run, token);
    }
}
