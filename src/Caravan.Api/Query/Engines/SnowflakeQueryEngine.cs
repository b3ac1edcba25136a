using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectivity.Drivers;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Query.Engines;

/// <summary>
/// SNOWFLAKE through the SQL API (<c>POST /api/v2/statements?async=true</c>) with the source's
/// key-pair JWT: one statement (<c>MULTI_STATEMENT_COUNT=1</c>), Snowflake's own statement
/// <c>timeout</c>, status polled by handle, result partitions fetched one at a time as rows are
/// written, and <c>POST /api/v2/statements/{handle}/cancel</c> when the time limit passes. The SQL
/// API does not say what kind a statement is before running it, so writes are kept out by
/// <see cref="WarehouseStatements"/>; the role's grants are the real boundary.
/// </summary>
public sealed class SnowflakeQueryEngine(NetworkPath network, IOptions<ConnectivityOptions> options) : IQueryEngine, IDisposable
{
    private const string Service = "Snowflake";
    private readonly HttpClient _http = RestQuery.Client(network);

    public IReadOnlyCollection<string> Types { get; } = [SnowflakeDriver.TypeName];

    public SqlDialect Dialect => SqlDialect.Warehouse;

    public string? UidUnsupported =>
        "Snowflake's SQL API has no per-statement setting a row access policy could read safely, so uid cannot be handed to it.";

    public void Dispose() => _http.Dispose();

    /// <summary>The body of the statement request.</summary>
    public static JsonObject Body(QueryRun run)
    {
        var body = new JsonObject
        {
            ["statement"] = run.Statement,
            ["timeout"] = RestService.Seconds(run.Request.Timeout),
            ["parameters"] = new JsonObject { ["MULTI_STATEMENT_COUNT"] = "1" },
        };
        foreach (var field in new[] { "warehouse", "database", "role" })
        {
            if (run.Connection.Text(field) is { } value)
            {
                body[field] = value;
            }
        }

        return body;
    }

    public async Task RunAsync(QueryRun run)
    {
        if (run.Connection.Secret("private_key") is null)
        {
            throw WarehouseStatements.Unsupported(
                "Snowflake queries go through the SQL API, which takes key-pair authentication only; this source has a password only. "
                + "Create it without a password to get a generated key pair (or send your own private_key with update-config) and register the public key.");
        }

        if (WarehouseStatements.Refusal(run.Statement, WarehouseSyntax.Snowflake) is { } why)
        {
            throw WarehouseStatements.Refused(Service, why);
        }

        var service = ServiceUri(run.Connection);
        var jwt = Jwt(run.Connection);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(run.Token);
        deadline.CancelAfter(run.Request.Timeout);
        string? handle = null;
        try
        {
            var path = "api/v2/statements?async=true&requestId=" + Guid.NewGuid().ToString("D");
            var answer = await SendAsync(Request(HttpMethod.Post, service, path, Body(run), jwt), deadline.Token);
            handle = answer.Field("statementHandle");
            for (var attempt = 0; answer.Status == HttpStatusCode.Accepted && handle is { Length: > 0 }; attempt++)
            {
                await Task.Delay(RestService.Poll(attempt), deadline.Token);
                answer = await SendAsync(Request(HttpMethod.Get, service, Statement(handle), null, jwt), deadline.Token);
            }

            if (answer.Status != HttpStatusCode.OK)
            {
                throw Map(answer, run, jwt);
            }

            await ReadAsync(answer, service, handle, jwt, run, deadline.Token);
        }
        catch (OperationCanceledException exception) when (deadline.IsCancellationRequested)
        {
            if (handle is { Length: > 0 })
            {
                await RestQuery.CancelAsync(token => SendAsync(Request(HttpMethod.Post, service, Statement(handle) + "/cancel", null, jwt), token));
            }

            if (run.Token.IsCancellationRequested)
            {
                throw;
            }

            throw run.TimedOut(exception);
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException && !run.Token.IsCancellationRequested)
        {
            throw RestQuery.Redacted(RestService.MapNetwork(exception, Service), jwt);
        }
    }

    /// <summary>The answer for a Snowflake error: 422 for the statement's own failure, else the connectivity failure (502).</summary>
    public static Exception Map(RestAnswer answer, QueryRun run, string? jwt)
    {
        var code = answer.Field("code");
        var said = RestQuery.Said(answer.Field("message") ?? answer.Text, jwt);
        if (answer.Status != HttpStatusCode.UnprocessableEntity)
        {
            return RestQuery.Redacted(SnowflakeDriver.Map(answer), jwt);
        }

        var text = $"Snowflake error {code}: {said}";
        return code switch
        {
            "000630" or "000604" => run.TimedOut(),
            "000008" => new QueryException(new QueryFailure(QueryFailureKind.Invalid, QueryCodes.MultipleStatements,
                "Send one statement per query; Snowflake found more than one.", "sql")),
            "001003" or "001007" or "001008" => run.Failed(QueryCodes.SyntaxError, text),
            "002003" or "000904" or "002043" or "002140" => run.Failed(QueryCodes.UndefinedObject, text),
            "003001" or "003011" or "003540" => run.Failed(QueryCodes.InsufficientPrivilege, text),
            _ => run.Failed(QueryCodes.QueryFailed, text),
        };
    }

    /// <summary>One <c>jsonv2</c> cell (always text) of a column as Snowflake describes it in <c>rowType</c>.</summary>
    public static object? Convert(JsonNode? cell, JsonNode? column)
    {
        if (cell is not JsonValue value || !value.TryGetValue<string>(out var text))
        {
            return null;
        }

        var type = column?["type"]?.GetValue<string>()?.ToUpperInvariant() ?? "TEXT";
        var invariant = CultureInfo.InvariantCulture;
        switch (type)
        {
            case "FIXED" when long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var whole):
                return whole;
            case "FIXED" when decimal.TryParse(text, NumberStyles.Number, invariant, out var exact):
                return exact;
            case "REAL" or "FLOAT" or "DOUBLE" when double.TryParse(text, NumberStyles.Float, invariant, out var real):
                return real;
            case "BOOLEAN":
                return text is "true" or "1" or "TRUE";
            case "DATE" when long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var days):
                return DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + (int)days).ToString("yyyy-MM-dd", invariant);
            case "TIME" when Ticks(text) is { } ticks:
                return new TimeOnly(ticks % TimeSpan.TicksPerDay).ToString("HH:mm:ss.FFFFFFF", invariant);
            case "TIMESTAMP_NTZ" when Ticks(text) is { } ticks:
                return DateTime.UnixEpoch.AddTicks(ticks).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", invariant);
            case "TIMESTAMP_LTZ" or "TIMESTAMP_TZ" when Ticks(text.Split(' ')[0]) is { } ticks:
                return DateTime.UnixEpoch.AddTicks(ticks).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", invariant);
            case "VARIANT" or "OBJECT" or "ARRAY":
                return new RawJson(text);
            case "BINARY":
                try
                {
                    return System.Convert.ToBase64String(System.Convert.FromHexString(text));
                }
                catch (FormatException)
                {
                    return text;
                }

            default:
                return text;
        }
    }

    /// <summary>The type name of a <c>rowType</c> entry as Snowflake writes it in SQL.</summary>
    public static string TypeName(JsonNode? column)
    {
        var type = column?["type"]?.GetValue<string>()?.ToUpperInvariant() ?? "TEXT";
        return type switch
        {
            "FIXED" => string.Create(CultureInfo.InvariantCulture,
                $"NUMBER({column?["precision"]?.GetValue<int>() ?? 38},{column?["scale"]?.GetValue<int>() ?? 0})"),
            "REAL" => "FLOAT",
            "TEXT" => "VARCHAR",
            _ => type,
        };
    }

    private static long? Ticks(string seconds) =>
        decimal.TryParse(seconds, NumberStyles.Number, CultureInfo.InvariantCulture, out var value)
            ? (long)decimal.Round(value * TimeSpan.TicksPerSecond)
            : null;

    private async Task ReadAsync(RestAnswer answer, Uri service, string? handle, string jwt, QueryRun run, CancellationToken cancellationToken)
    {
        var meta = answer.Json?["resultSetMetaData"];
        var rowType = meta?["rowType"] as JsonArray ?? [];
        await run.BeginAsync([.. rowType.Select(c => new QueryColumn(c?["name"]?.GetValue<string>() ?? string.Empty, TypeName(c)))]);
        if (!await WriteAsync(answer.Json?["data"], rowType, run))
        {
            return;
        }

        var partitions = meta?["partitionInfo"] is JsonArray info ? info.Count : 1;
        for (var partition = 1; partition < partitions && handle is { Length: > 0 }; partition++)
        {
            var path = Statement(handle) + "?partition=" + partition.ToString(CultureInfo.InvariantCulture);
            var more = await SendAsync(Request(HttpMethod.Get, service, path, null, jwt), cancellationToken);
            if (more.Status != HttpStatusCode.OK)
            {
                throw Map(more, run, jwt);
            }

            if (!await WriteAsync(more.Json?["data"], rowType, run))
            {
                return;
            }
        }
    }

    private static async Task<bool> WriteAsync(JsonNode? data, JsonArray rowType, QueryRun run)
    {
        foreach (var row in data as JsonArray ?? [])
        {
            var cells = row as JsonArray ?? [];
            var values = new object?[rowType.Count];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = i < cells.Count ? Convert(cells[i], rowType[i]) : null;
            }

            if (!await run.AddAsync(values))
            {
                return false;
            }
        }

        return true;
    }

    private static string Statement(string handle) => "api/v2/statements/" + Uri.EscapeDataString(handle);

    private static HttpRequestMessage Request(HttpMethod method, Uri service, string path, JsonNode? body, string jwt)
    {
        var request = RestService.Json(method, RestService.Under(service, path), body);
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + jwt);
        request.Headers.Add("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT");
        return request;
    }

    private static string Jwt(SourceConnection connection)
    {
        using var rsa = SnowflakeDriver.LoadPrivateKey(connection);
        return SnowflakeDriver.KeyPairJwt(connection.Text("account") ?? string.Empty, connection.Text("user") ?? string.Empty, rsa, DateTimeOffset.UtcNow);
    }

    private async Task<RestAnswer> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            return await RestService.SendAsync(_http, request, Service, cancellationToken);
        }
    }

    private Uri ServiceUri(SourceConnection connection)
    {
        var account = connection.Text("account") ?? throw DriverFailures.Unconfigured();
        try
        {
            return RestService.BaseUri(options.Value, SnowflakeDriver.TypeName, $"https://{account.ToLowerInvariant()}.snowflakecomputing.com/");
        }
        catch (UriFormatException)
        {
            throw new ConnectivityException(FailureCodes.HostUnresolvable, "The account identifier does not make a valid host name.");
        }
    }
}
