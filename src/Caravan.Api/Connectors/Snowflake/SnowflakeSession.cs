using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.Snowflake;

/// <summary>
/// One session on Snowflake's session API, the one Snowflake's own connectors use: a login
/// (<c>POST /session/v1/login-request</c>, with the password or, for a key pair, the JWT and
/// <c>AUTHENTICATOR=SNOWFLAKE_JWT</c>) that yields a session token; statements by
/// <c>POST /queries/v1/query-request?requestId=…</c>, followed through <c>getResultUrl</c> while they
/// run; <c>POST /queries/v1/abort-request</c> to cancel one by its request id; and the logout
/// (<c>POST /session?delete=true</c>). Used by the connection test (password sources) and by the
/// query engine (every source).
/// </summary>
public sealed class SnowflakeSession(HttpClient client, Uri service, SourceConnection connection)
{
    public const string Service = "Snowflake";

    private string? _jwt;
    private string? _token;

    /// <summary>Values made for this session that must never leave it: the JWT and the session token.</summary>
    public IReadOnlyList<string?> Secrets => [_jwt, _token];

    /// <summary>The account's service URL: the configured override, else <c>https://&lt;account&gt;.snowflakecomputing.com/</c>.</summary>
    public static Uri ServiceUri(ConnectivityOptions options, SourceConnection connection)
    {
        var account = connection.Text("account")
            ?? throw new ConnectivityException(FailureCodes.DriverError, "The source has no account yet; complete its configuration with update-config.");
        try
        {
            return RestService.BaseUri(options, SnowflakeDriver.Type, $"https://{account.ToLowerInvariant()}.snowflakecomputing.com/");
        }
        catch (UriFormatException)
        {
            throw new ConnectivityException(FailureCodes.HostUnresolvable, "The account identifier does not make a valid host name.");
        }
    }

    /// <summary>
    /// True when Snowflake answered a session API call with <c>"success": true</c>; a failed
    /// statement comes back as HTTP 200 with <c>success: false</c> and Snowflake's error code.
    /// </summary>
    public static bool Succeeded(RestAnswer answer) =>
        answer.IsSuccess && answer.Json?["success"] is JsonValue value && value.TryGetValue<bool>(out var success) && success;

    /// <summary>
    /// Logs in with the source's private key when it has one (a key-pair JWT), else its password;
    /// warehouse, database and role go in the query string as the connectors send them.
    /// </summary>
    public async Task LoginAsync(CancellationToken cancellationToken)
    {
        var data = new JsonObject
        {
            ["ACCOUNT_NAME"] = SnowflakeDriver.AccountForJwt(connection.Text("account")!),
            ["LOGIN_NAME"] = connection.Text("user"),
        };
        if (connection.Secret("private_key") is not null)
        {
            _jwt = SnowflakeDriver.KeyPairJwt(connection);
            data["AUTHENTICATOR"] = "SNOWFLAKE_JWT";
            data["TOKEN"] = _jwt;
        }
        else
        {
            data["PASSWORD"] = connection.Secret("password")
                ?? throw new ConnectivityException(FailureCodes.AuthFailed, "The source has neither a password nor a private key; set one with update-config.");
        }

        data["CLIENT_APP_ID"] = "caravan";
        var parameters = new List<string>();
        foreach (var (field, parameter) in new[] { ("warehouse", "warehouse"), ("database", "databaseName"), ("role", "roleName") })
        {
            if (connection.Text(field) is { } value)
            {
                parameters.Add($"{parameter}={Uri.EscapeDataString(value)}");
            }
        }

        var path = "session/v1/login-request" + (parameters.Count > 0 ? "?" + string.Join('&', parameters) : string.Empty);
        using var request = RestService.Json(HttpMethod.Post, RestService.Under(service, path), new JsonObject { ["data"] = data });
        var answer = await RestService.SendAsync(client, request, Service, cancellationToken);
        if (!Succeeded(answer))
        {
            throw Fail(answer);
        }

        _token = answer.Field("data", "token") is { Length: > 0 } token
            ? token
            : throw new ConnectivityException(FailureCodes.DriverError, "Snowflake accepted the login but sent no session token.");
    }

    /// <summary>
    /// Sends one query-request and, while Snowflake says the statement is still running (codes
    /// 333333/333334), follows its <c>getResultUrl</c>. Returns the last answer as it is, failed or not.
    /// </summary>
    public Task<RestAnswer> QueryAsync(string requestId, JsonObject body, CancellationToken cancellationToken) =>
        QueryAsync(requestId, body, null, cancellationToken);

    /// <summary>The same, with the rows of the answers (<c>data.rowset</c>) read by <paramref name="rows"/> as they arrive.</summary>
    public async Task<RestAnswer> QueryAsync(string requestId, JsonObject body, AnswerRows? rows, CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Post, "queries/v1/query-request?requestId=" + Uri.EscapeDataString(requestId), body);
        var answer = await RestService.SendAsync(client, request, Service, rows, cancellationToken);
        for (var attempt = 0; rows?.Stopped is not true && answer.IsSuccess && answer.Field("code") is "333333" or "333334"
            && answer.Field("data", "getResultUrl") is { Length: > 0 } next; attempt++)
        {
            await Task.Delay(RestService.Poll(attempt), cancellationToken);
            using var poll = Request(HttpMethod.Get, next, null);
            answer = await RestService.SendAsync(client, poll, Service, rows, cancellationToken);
        }

        return answer;
    }

    /// <summary>Asks Snowflake to cancel the statement sent with <paramref name="requestId"/>; the outcome is the caller's to ignore.</summary>
    public async Task AbortAsync(string requestId, string sql, CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Post, "queries/v1/abort-request?requestId=" + Guid.NewGuid().ToString("D"),
            new JsonObject { ["sqlText"] = sql, ["requestId"] = requestId });
        await RestService.SendAsync(client, request, Service, cancellationToken);
    }

    /// <summary>Ends the session (best effort, at most 2 s); nothing to do before a login.</summary>
    public async Task CloseAsync(CancellationToken cancellationToken)
    {
        if (_token is null || cancellationToken.IsCancellationRequested)
        {
            return;
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            using var request = Request(HttpMethod.Post, "session?delete=true", null);
            await RestService.SendAsync(client, request, Service, limit.Token);
        }
        catch (Exception exception) when (exception is ConnectivityException or OperationCanceledException or HttpRequestException or IOException)
        {
            // The session expires on its own; nothing to report.
        }
        finally
        {
            _token = null;
        }
    }

    /// <summary>The mapped failure of an answer, without the JWT or session token should Snowflake ever quote them.</summary>
    public ConnectivityException Fail(RestAnswer answer) => Redacted(SnowflakeDriver.Map(answer));

    /// <summary>A failure with this session's own secrets removed from its message.</summary>
    public ConnectivityException Redacted(ConnectivityException failure) =>
        new(failure.Code, RestService.Redact(failure.Message, [.. Secrets]), failure.InnerException, failure.Step);

    private HttpRequestMessage Request(HttpMethod method, string path, JsonNode? body)
    {
        var request = RestService.Json(method, RestService.Under(service, path), body);
        request.Headers.TryAddWithoutValidation("Authorization", $"Snowflake Token=\"{_token}\"");
        return request;
    }
}
