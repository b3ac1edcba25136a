using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.Databricks;

/// <summary>
/// DATABRICKS SQL warehouses through the SQL Statement Execution API
/// (<c>POST /api/2.0/sql/statements</c>) with the source's personal access token. The warehouse
/// id is the last segment of <c>http_path</c> (<c>/sql/1.0/warehouses/abc123</c>).
/// </summary>
public sealed class DatabricksDriver(NetworkPath network, IOptions<ConnectivityOptions> options) : IDriver
{
    /// <summary>The type this driver and its query engine serve.</summary>
    public static DatabricksType Type { get; } = SourceTypes.Get<DatabricksType>();
    private const string ServiceName = "Databricks";
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    public IReadOnlyCollection<SourceType> Types { get; } = [Type];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (await RestService.ResolveAsync(run, () => Connect(connection)) is not { } warehouse)
        {
            return;
        }

        using (warehouse)
        {
            await TestAsync(run, warehouse);
        }
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        using var warehouse = Connect(connection);
        return await warehouse.SchemasAsync(cancellationToken);
    }

    private async Task TestAsync(TestRun run, Warehouse warehouse)
    {
        if (!await RestService.OpenAsync(run, network, warehouse.Service))
        {
            return;
        }

        // The API has no login of its own: the first statement proves the token, and a failure of
        // the statement itself (no such catalog, no right to use the warehouse) belongs to the query step.
        ConnectivityException? failed = null;
        await run.StepAsync("authenticate", async token =>
        {
            try
            {
                await warehouse.RunAsync("SELECT 1", token);
            }
            catch (ConnectivityException failure) when (failure.Code is FailureCodes.DatabaseNotFound or FailureCodes.InsufficientPrivilege || warehouse.StatementFailed)
            {
                failed = failure;
            }
        });
        if (run.HasFailed)
        {
            return;
        }

        await run.StepAsync("query", _ => failed is null ? Task.CompletedTask : Task.FromException(failed));
        await run.StepAsync("schemas", token => warehouse.SchemasAsync(token));
    }

    /// <summary>The stable code for a Databricks error, from the HTTP status and the error code.</summary>
    public static ConnectivityException Map(HttpStatusCode status, string? errorCode, string? message)
    {
        var detail = string.IsNullOrEmpty(message) ? errorCode ?? $"HTTP {(int)status}" : RestService.OneLine(message);
        var text = (errorCode ?? string.Empty) + " " + (message ?? string.Empty);
        if (status == HttpStatusCode.Unauthorized || errorCode is "UNAUTHENTICATED"
            || status == HttpStatusCode.Forbidden && errorCode is not "PERMISSION_DENIED")
        {
            return new ConnectivityException(FailureCodes.AuthFailed,
                $"Databricks refused the access token ({detail}). Check that it is valid and not expired.");
        }

        if (errorCode is "PERMISSION_DENIED" || text.Contains("INSUFFICIENT_PERMISSIONS", StringComparison.Ordinal))
        {
            return new ConnectivityException(FailureCodes.InsufficientPrivilege,
                $"The token's user lacks a permission Caravan needs ({detail}), such as CAN USE on the warehouse or USE CATALOG.");
        }

        if (status == HttpStatusCode.NotFound || errorCode is "RESOURCE_DOES_NOT_EXIST" or "NOT_FOUND"
            || text.Contains("NO_SUCH_CATALOG", StringComparison.Ordinal) || text.Contains("SCHEMA_NOT_FOUND", StringComparison.Ordinal)
            || text.Contains("CATALOG_NOT_FOUND", StringComparison.Ordinal))
        {
            return new ConnectivityException(FailureCodes.DatabaseNotFound,
                $"Databricks says the warehouse or catalog does not exist ({detail}). Check http_path and catalog.");
        }

        return new ConnectivityException(FailureCodes.DriverError,
            errorCode is null ? $"Databricks answered HTTP {(int)status}: {detail}" : $"Databricks error {errorCode}: {detail}");
    }

    /// <summary>The warehouse id in an HTTP path: its last segment.</summary>
    public static string? WarehouseId(string httpPath)
    {
        var segments = httpPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return segments.Length > 0 && !segments.Contains("protocolv1", StringComparer.Ordinal) ? segments[^1] : null;
    }

    private Warehouse Connect(SourceConnection connection)
    {
        var host = connection.Text("server_hostname");
        var path = connection.Text("http_path");
        var token = connection.Secret("access_token");
        if (host is null || path is null || token is null)
        {
            throw new ConnectivityException(FailureCodes.DriverError,
                "The source lacks server_hostname, http_path or access_token; complete its configuration with update-config.");
        }

        var id = WarehouseId(path) ?? throw new ConnectivityException(FailureCodes.DriverError,
            "http_path names a cluster (/sql/protocolv1/...), not a SQL warehouse; the Statement Execution API needs a warehouse path such as /sql/1.0/warehouses/abc123.");
        Uri service;
        try
        {
            service = RestService.BaseUri(options.Value, Type, RestService.HttpsUrl(host));
        }
        catch (UriFormatException)
        {
            throw new ConnectivityException(FailureCodes.HostUnresolvable, "server_hostname does not make a valid URL.");
        }

        return new Warehouse(RestService.Client(network), service, id, token, connection.Text("catalog"));
    }

    private sealed class Warehouse(HttpClient client, Uri service, string warehouseId, string accessToken, string? catalog) : IDisposable
    {
        public Uri Service => service;

        /// <summary>Whether a statement ran and failed (the token and warehouse were fine, the SQL was not).</summary>
        public bool StatementFailed { get; private set; }

        public void Dispose() => client.Dispose();

        /// <summary>Runs one statement to its end and returns every row (all chunks).</summary>
        public async Task<IReadOnlyList<JsonArray>> RunAsync(string statement, CancellationToken cancellationToken)
        {
            var body = new JsonObject { ["warehouse_id"] = warehouseId, ["statement"] = statement, ["wait_timeout"] = "10s" };
            if (catalog is not null)
            {
                body["catalog"] = catalog;
            }

            var answer = await SendAsync(HttpMethod.Post, "api/2.0/sql/statements", body, cancellationToken);

            // Still running after wait_timeout (a warehouse that is starting, say): ask again until it ends.
            while (State(answer) is "PENDING" or "RUNNING" && answer.Field("statement_id") is { Length: > 0 } id)
            {
                await Task.Delay(PollInterval, cancellationToken);
                answer = await SendAsync(HttpMethod.Get, "api/2.0/sql/statements/" + Uri.EscapeDataString(id), null, cancellationToken);
            }

            var state = State(answer);
            if (state != "SUCCEEDED")
            {
                StatementFailed = state is "FAILED";
                throw state is "FAILED"
                    ? Map(HttpStatusCode.OK, answer.Field("status", "error", "error_code"), answer.Field("status", "error", "message"))
                    : new ConnectivityException(FailureCodes.DriverError, $"The statement ended {state?.ToLowerInvariant() ?? "without a state"}.");
            }

            var rows = new List<JsonArray>(Arrays(answer.Json?["result"]?["data_array"]));
            var next = answer.Field("result", "next_chunk_internal_link");
            for (var chunks = 0; !string.IsNullOrEmpty(next) && chunks < 1000; chunks++)
            {
                var chunk = await SendAsync(HttpMethod.Get, next, null, cancellationToken);
                rows.AddRange(Arrays(chunk.Json?["data_array"]));
                next = chunk.Field("next_chunk_internal_link");
            }

            return rows;
        }

        /// <summary><c>SHOW SCHEMAS</c>, in the catalog when one is set; information_schema left out.</summary>
        public async Task<IReadOnlyList<string>> SchemasAsync(CancellationToken cancellationToken)
        {
            var sql = catalog is null ? "SHOW SCHEMAS" : $"SHOW SCHEMAS IN `{catalog.Replace("`", "``", StringComparison.Ordinal)}`";
            var names = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var row in await RunAsync(sql, cancellationToken))
            {
                if (row.Count > 0 && row[0] is JsonValue value && value.TryGetValue<string>(out var name) && name.Length > 0
                    && !string.Equals(name, "information_schema", StringComparison.OrdinalIgnoreCase))
                {
                    names.Add(name);
                }
            }

            return [.. names];
        }

        private async Task<RestAnswer> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken)
        {
            using var request = RestService.Json(method, RestService.Under(service, path), body);
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + accessToken);
            var answer = await RestService.SendAsync(client, request, ServiceName, cancellationToken);
            return answer.IsSuccess ? answer : throw Map(answer.Status, answer.Field("error_code"), answer.Field("message"));
        }

        private static string? State(RestAnswer answer) => answer.Field("status", "state");

        private static IEnumerable<JsonArray> Arrays(JsonNode? node) => node is JsonArray rows ? rows.OfType<JsonArray>() : [];
    }
}
