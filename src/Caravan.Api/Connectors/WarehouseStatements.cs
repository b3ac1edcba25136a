using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors;

/// <summary>
/// The read-only check for services that do not report a statement's type before running it
/// (Databricks' Statement Execution API), and the first of two for Snowflake, whose statement type
/// is asked for next (<see cref="Snowflake.SnowflakeQueryEngine"/>): the first word must be <c>SELECT</c>,
/// <c>WITH</c>, <c>SHOW</c>, <c>DESCRIBE</c>/<c>DESC</c> or <c>EXPLAIN</c>, and no word that starts
/// a write or a procedure may appear anywhere as a bare word (a function call, the word followed by
/// '(', is allowed: <c>INSERT(…)</c> and <c>REPLACE(…)</c> are string functions), read by the
/// shared <see cref="StatementCheck"/>. False refusals are the price (a column named <c>update</c>
/// must be quoted); the read-only role is the real boundary.
/// </summary>
public static class WarehouseStatements
{
    private static readonly string[] Forbidden =
    [
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "UNDROP",
        "GRANT", "REVOKE", "CALL", "PROCEDURE", "EXECUTE", "EXEC", "COPY", "PUT", "REMOVE", "USE", "SET", "UNSET",
        "RESET", "BEGIN", "COMMIT", "ROLLBACK", "DECLARE", "LET", "REPLACE", "OPTIMIZE", "VACUUM", "REFRESH", "MSCK",
        "CACHE", "UNCACHE", "RESTORE", "ANALYZE", "LOAD", "EXPORT",
    ];

    /// <summary>The check of one warehouse's dialect.</summary>
    public static StatementCheck Check(SqlDialect dialect, string service) => new()
    {
        Dialect = dialect,
        Database = service,
        Leading = ["SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"],
        Words = new() { { "may write or run a procedure", Forbidden } },
        CallableWords = new HashSet<string>(Forbidden, StringComparer.OrdinalIgnoreCase),
    };

    /// <summary>The 400 for a type where the request cannot be honoured as configured.</summary>
    public static QueryException Unsupported(string message) =>
        new(new QueryFailure(QueryFailureKind.Invalid, QueryCodes.Unsupported, message, ValidationErrors.NonField));
}

/// <summary>What the REST engines share: a best-effort cancel in the service, redaction of per-query tokens, their HTTP client.</summary>
internal static class RestQuery
{
    /// <summary>How long a cancel request may take; it is sent after the answer's time limit passed.</summary>
    public static readonly TimeSpan CancelLimit = TimeSpan.FromSeconds(3);

    /// <summary>Sends the cancel request, ignoring its outcome: the statement may have ended meanwhile.</summary>
    public static async Task CancelAsync(Func<CancellationToken, Task> cancel)
    {
        using var limit = new CancellationTokenSource(CancelLimit);
        try
        {
            await cancel(limit.Token);
        }
        catch (Exception exception) when (exception is ConnectivityException or OperationCanceledException or HttpRequestException or IOException)
        {
            // Best effort: the service's own statement timeout is set too.
        }
    }

    /// <summary>A one-line text without the given values (tokens made for this query are not stored secrets the scrubber knows).</summary>
    public static string Said(string text, params string?[] secrets) =>
        Connectors.RestService.Redact(Connectors.RestService.OneLine(text), secrets);

    /// <summary>A connectivity failure with the given values removed from its message.</summary>
    public static ConnectivityException Redacted(ConnectivityException failure, params string?[] secrets) =>
        new(failure.Code, Connectors.RestService.Redact(failure.Message, secrets), failure.InnerException, failure.Step);

    /// <summary>An HTTP client on the network path (egress policy) that accepts compressed answers.</summary>
    public static HttpClient Client(NetworkPath network)
    {
        var handler = network.HttpHandler();
        handler.AutomaticDecompression = System.Net.DecompressionMethods.All;
        var client = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("caravan");
        client.DefaultRequestHeaders.Accept.Add(new System.Net.Http.Headers.MediaTypeWithQualityHeaderValue("application/json"));
        return client;
    }
}
