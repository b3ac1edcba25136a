using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Apis.Auth.OAuth2;
using Google.Apis.Auth.OAuth2.Responses;
using Google.Apis.Http;
using Microsoft.Extensions.Options;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.BigQuery;

/// <summary>
/// BIGQUERY over its REST API with the source's service-account key: an OAuth access token from
/// the key's <c>token_uri</c> (a JWT-bearer grant made by Google.Apis.Auth, sent through Caravan's
/// own network path so the egress policy applies), then <c>jobs.query</c> and <c>datasets.list</c>.
/// With the endpoint override <c>Caravan__Connectivity__Endpoints__BIGQUERY</c> = <c>{base}</c>,
/// the API is at <c>{base}/bigquery/v2/...</c> and the token endpoint at <c>{base}/token</c>.
/// </summary>
public sealed class BigQueryDriver(NetworkPath network, IOptions<ConnectivityOptions> options) : IDriver
{
    /// <summary>The type this driver and its query engine serve.</summary>
    public static BigQueryType Type { get; } = SourceTypes.Get<BigQueryType>();
    public const string Scope = "https://www.googleapis.com/auth/bigquery.readonly";
    public const string DefaultTokenUri = "https://oauth2.googleapis.com/token";
    private const string Service = "BigQuery";
    private const int MaxPages = 100;

    public IReadOnlyCollection<SourceType> Types { get; } = [Type];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (await RestService.ResolveAsync(run, () => ServiceAccount.From(connection)) is not { } account
            || await RestService.ResolveAsync(run, () => RestService.BaseUri(options.Value, Type, "https://bigquery.googleapis.com/")) is not { } service
            || !await RestService.OpenAsync(run, network, service))
        {
            return;
        }

        using var client = RestService.Client(network);
        var accessToken = await run.StepAsync("authenticate", token => AccessTokenAsync(account, token));
        if (accessToken is null)
        {
            return;
        }

        await run.StepAsync("query", token => QueryAsync(client, service, account, accessToken, token));
        await run.StepAsync("schemas", token => DatasetsAsync(client, service, account, accessToken, token));
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var account = ServiceAccount.From(connection);
        var service = RestService.BaseUri(options.Value, Type, "https://bigquery.googleapis.com/");
        using var client = RestService.Client(network);
        var accessToken = await AccessTokenAsync(account, cancellationToken);
        return await DatasetsAsync(client, service, account, accessToken, cancellationToken);
    }

    /// <summary>The stable code for an error answer of the BigQuery API.</summary>
    public static ConnectivityException Map(RestAnswer answer, string projectId)
    {
        var error = answer.Json?["error"] as JsonObject;
        var message = answer.Field("error", "message") is { Length: > 0 } said
            ? RestService.OneLine(said)
            : answer.Text.Length > 0 ? RestService.OneLine(answer.Text) : $"HTTP {(int)answer.Status}";
        var reason = error?["errors"] is JsonArray { Count: > 0 } errors && errors[0]?["reason"] is JsonValue r && r.TryGetValue<string>(out var text) ? text : null;
        return answer.Status switch
        {
            HttpStatusCode.Unauthorized => new ConnectivityException(FailureCodes.AuthFailed,
                $"BigQuery refused the access token ({message})."),
            HttpStatusCode.Forbidden when reason is "quotaExceeded" or "rateLimitExceeded" or "billingNotEnabled" or "billingTierLimitExceeded" =>
                new ConnectivityException(FailureCodes.DriverError, $"BigQuery refused the request: {reason} ({message})."),
            HttpStatusCode.Forbidden => new ConnectivityException(FailureCodes.InsufficientPrivilege,
                $"The service account lacks a permission on project {projectId} ({message}). It needs BigQuery Job User and Data Viewer, or similar."),
            HttpStatusCode.NotFound => new ConnectivityException(FailureCodes.DatabaseNotFound,
                $"BigQuery does not know project {projectId}, or the service account cannot see it ({message})."),
            _ => new ConnectivityException(FailureCodes.DriverError, $"BigQuery answered HTTP {(int)answer.Status}: {message}"),
        };
    }

    /// <summary>The token endpoint: {override}/token with an endpoint override, else the key's token_uri (https only).</summary>
    private Uri TokenUri(ServiceAccount account)
    {
        if (RestService.IsOverridden(options.Value, Type))
        {
            return RestService.Under(RestService.BaseUri(options.Value, Type, DefaultTokenUri), "token");
        }

        return Uri.TryCreate(account.TokenUri ?? DefaultTokenUri, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps
            ? uri
            : throw new ConnectivityException(FailureCodes.AuthFailed, "The key's token_uri is not an https URL.");
    }

    internal async Task<string> AccessTokenAsync(ServiceAccount account, CancellationToken cancellationToken)
    {
        var tokenUri = TokenUri(account);
        using var key = RSA.Create();
        try
        {
            key.ImportFromPem(account.PrivateKey);
        }
        catch (Exception exception) when (exception is ArgumentException or CryptographicException)
        {
            throw new ConnectivityException(FailureCodes.AuthFailed, "The key's private_key could not be read; send the key again with update-config.");
        }

        using var factory = new NetworkPathClientFactory(network);
        var credential = new ServiceAccountCredential(new ServiceAccountCredential.Initializer(account.ClientEmail, tokenUri.AbsoluteUri)
        {
            Key = key,
            KeyId = account.PrivateKeyId,
            ProjectId = account.ProjectId,
            Scopes = [Scope],
            HttpClientFactory = factory,
            DefaultExponentialBackOffPolicy = ExponentialBackOffPolicy.None,
        });
        try
        {
            var token = await credential.GetAccessTokenForRequestAsync(cancellationToken: cancellationToken);
            return string.IsNullOrEmpty(token)
                ? throw new ConnectivityException(FailureCodes.AuthFailed, "The token endpoint answered without an access token.")
                : token;
        }
        catch (TokenResponseException exception)
        {
            throw MapToken(exception, account);
        }
        catch (HttpRequestException exception)
        {
            throw RestService.MapNetwork(exception, tokenUri.Host);
        }
        catch (Exception exception) when (exception is not (OperationCanceledException or ConnectivityException)
            && DriverFailures.Find<ConnectivityException>(exception) is { } known)
        {
            throw known;
        }
    }

    private static ConnectivityException MapToken(TokenResponseException exception, ServiceAccount account)
    {
        var error = exception.Error?.Error;
        var said = RestService.Redact(
            RestService.OneLine(string.Join(": ", new[] { error, exception.Error?.ErrorDescription }.Where(s => !string.IsNullOrEmpty(s)))),
            account.PrivateKeyBody);
        return error is "invalid_grant" or "invalid_client" or "unauthorized_client" || exception.StatusCode is HttpStatusCode.Unauthorized
            ? new ConnectivityException(FailureCodes.AuthFailed,
                $"Google refused the service-account key ({said}). Check that the key is not deleted or disabled, and that the machine's clock is right.")
            : new ConnectivityException(FailureCodes.DriverError,
                $"The token endpoint answered{(exception.StatusCode is { } status ? $" HTTP {(int)status}" : string.Empty)}: {said}");
    }

    private static async Task QueryAsync(HttpClient client, Uri service, ServiceAccount account, string accessToken, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["query"] = "SELECT 1", ["useLegacySql"] = false, ["dryRun"] = false };
        using var request = Request(HttpMethod.Post, service, $"bigquery/v2/projects/{Uri.EscapeDataString(account.ProjectId)}/queries", body, accessToken);
        var answer = await RestService.SendAsync(client, request, Service, cancellationToken);
        if (!answer.IsSuccess)
        {
            throw Redacted(Map(answer, account.ProjectId), accessToken, account);
        }
    }

    private static async Task<IReadOnlyList<string>> DatasetsAsync(
        HttpClient client, Uri service, ServiceAccount account, string accessToken, CancellationToken cancellationToken)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        string? page = null;
        for (var pages = 0; pages < MaxPages; pages++)
        {
            var path = $"bigquery/v2/projects/{Uri.EscapeDataString(account.ProjectId)}/datasets?maxResults=1000"
                + (page is null ? string.Empty : "&pageToken=" + Uri.EscapeDataString(page));
            using var request = Request(HttpMethod.Get, service, path, null, accessToken);
            var answer = await RestService.SendAsync(client, request, Service, cancellationToken);
            if (!answer.IsSuccess)
            {
                throw Redacted(Map(answer, account.ProjectId), accessToken, account);
            }

            if (answer.Json?["datasets"] is JsonArray datasets)
            {
                foreach (var dataset in datasets)
                {
                    if (dataset?["datasetReference"]?["datasetId"] is JsonValue id && id.TryGetValue<string>(out var name) && name.Length > 0)
                    {
                        names.Add(name);
                    }
                }
            }

            page = answer.Field("nextPageToken");
            if (string.IsNullOrEmpty(page))
            {
                break;
            }
        }

        return [.. names];
    }

    private static HttpRequestMessage Request(HttpMethod method, Uri service, string path, JsonNode? body, string accessToken)
    {
        var request = RestService.Json(method, RestService.Under(service, path), body);
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + accessToken);
        return request;
    }

    private static ConnectivityException Redacted(ConnectivityException failure, string accessToken, ServiceAccount account) =>
        new(failure.Code, RestService.Redact(failure.Message, accessToken, account.PrivateKeyBody), failure.InnerException, failure.Step);

    /// <summary>The parts of a service-account key the driver uses.</summary>
    internal sealed record ServiceAccount(string ProjectId, string ClientEmail, string PrivateKey, string? PrivateKeyId, string? TokenUri)
    {
        public static ServiceAccount From(SourceConnection connection)
        {
            var text = connection.Secret("service_account_key")
                ?? throw new ConnectivityException(FailureCodes.AuthFailed, "The source has no service_account_key; set it with update-config.", step: "authenticate");
            JsonObject? key;
            try
            {
                key = JsonNode.Parse(text) as JsonObject;
            }
            catch (JsonException)
            {
                key = null;
            }

            string? Field(string name) => key?[name] is JsonValue value && value.TryGetValue<string>(out var s) && s.Length > 0 ? s : null;
            var projectId = Field("project_id");
            var email = Field("client_email");
            var privateKey = Field("private_key");
            if (projectId is null || email is null || privateKey is null)
            {
                throw new ConnectivityException(FailureCodes.AuthFailed,
                    "The stored service_account_key lacks project_id, client_email or private_key; send the key again with update-config.",
                    step: "authenticate");
            }

            return new ServiceAccount(projectId, email, privateKey, Field("private_key_id"), Field("token_uri"));
        }

        /// <summary>The secret part of the private key, without its BEGIN and END lines, for masking.</summary>
        public string PrivateKeyBody => Field.PemBody(PrivateKey);

        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"service account {ClientEmail} of {ProjectId}");
    }

    /// <summary>Google's HTTP clients, made on Caravan's network path; every handler is disposed with the factory.</summary>
    private sealed class NetworkPathClientFactory(NetworkPath network) : HttpClientFactory, IDisposable
    {
        private readonly List<HttpMessageHandler> _handlers = [];

        public void Dispose()
        {
            lock (_handlers)
            {
                foreach (var handler in _handlers)
                {
                    handler.Dispose();
                }

                _handlers.Clear();
            }
        }

        protected override HttpMessageHandler CreateHandler(CreateHttpClientArgs args)
        {
            var handler = network.HttpHandler();
            lock (_handlers)
            {
                _handlers.Add(handler);
            }

            return handler;
        }
    }
}
