using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static Caravan.Api.Connectors.DriverFailures;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors;

/// <summary>An HTTP answer: its status and its body, parsed when it is JSON.</summary>
public sealed record RestAnswer(HttpStatusCode Status, JsonNode? Json, string Text)
{
    public bool IsSuccess => (int)Status is >= 200 and < 300;

    public string? Field(params string[] path)
    {
        var node = Json;
        foreach (var name in path)
        {
            node = node is JsonObject o ? o[name] : null;
        }

        return node is JsonValue value ? value.GetValueKind() switch
        {
            JsonValueKind.String => value.GetValue<string>(),
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.ToJsonString(),
            _ => null,
        } : null;
    }
}

/// <summary>
/// The parts the REST drivers (Snowflake, BigQuery, Databricks) share: where the service is (its
/// public endpoint, or the override from <see cref="ConnectivityOptions.Endpoints"/>), the first
/// steps of a test, and HTTP calls made only through <see cref="NetworkPath.HttpHandler"/>, so the
/// egress policy applies to every connection, with network failures turned into stable codes.
/// </summary>
public static class RestService
{
    /// <summary>The most a driver reads of one answer; a schema list is far smaller.</summary>
    public const int MaxAnswerBytes = 16 * 1024 * 1024;

    /// <summary>The base URL of a service: the configured override for the type, else the public one.</summary>
    public static Uri BaseUri(ConnectivityOptions options, SourceType type, string publicUrl)
    {
        if (options.Endpoints.TryGetValue(type.Name, out var configured) && !string.IsNullOrWhiteSpace(configured))
        {
            if (Uri.TryCreate(configured.Trim(), UriKind.Absolute, out var overridden) && overridden.Scheme is "http" or "https")
            {
                return WithTrailingSlash(overridden);
            }

            throw new ConnectivityException(FailureCodes.DriverError,
                $"Caravan__Connectivity__Endpoints__{type.Name} is not an http or https base URL.");
        }

        return WithTrailingSlash(new Uri(publicUrl));
    }

    /// <summary>The https base URL of a host name or IP literal (IPv6 in brackets).</summary>
    public static string HttpsUrl(string host) => $"https://{HostNames.ForAuthority(host)}/";

    public static bool IsOverridden(ConnectivityOptions options, SourceType type) =>
        options.Endpoints.TryGetValue(type.Name, out var configured) && !string.IsNullOrWhiteSpace(configured);

    /// <summary>An absolute URL under a base URL; <paramref name="relative"/> has no leading '/'.</summary>
    public static Uri Under(Uri baseUri, string relative) => new(baseUri, relative.TrimStart('/'));

    /// <summary>
    /// Records <c>resolve</c>, <c>egress</c>, <c>connect</c> and <c>tls</c> for the service's host.
    /// TLS is checked by a handshake of its own that validates the certificate against the host
    /// name; a plain-http endpoint override skips it with a note. False when a step failed.
    /// </summary>
    public static async Task<bool> OpenAsync(TestRun run, NetworkPath network, Uri service, string? plainHttpNote = null)
    {
        var address = await network.OpenAsync(run, service.IdnHost, service.Port);
        if (address is null)
        {
            return false;
        }

        if (service.Scheme != Uri.UriSchemeHttps)
        {
            run.Skip("tls", plainHttpNote ?? $"The endpoint {service.GetLeftPart(UriPartial.Authority)} is plain http (an endpoint override); the connection is not encrypted.");
            return true;
        }

        await run.StepAsync("tls", token => HandshakeAsync(address, service.IdnHost, service.Port, token), network.ConnectLimit);
        return !run.HasFailed;
    }

    /// <summary>
    /// The <c>resolve</c> step of a REST driver's test: what <paramref name="resolve"/> reads from the
    /// configuration (a key, the service's URL), or null when it threw a <see cref="ConnectivityException"/>,
    /// which then failed the step with its message.
    /// </summary>
    public static async Task<T?> ResolveAsync<T>(TestRun run, Func<T> resolve)
        where T : class
    {
        try
        {
            return resolve();
        }
        catch (ConnectivityException failure)
        {
            await run.FailAsync(TestSteps.Resolve, failure);
            return null;
        }
    }

    /// <summary>A client whose every connection goes through the network path; timeouts come from tokens.</summary>
    public static HttpClient Client(NetworkPath network)
    {
        var client = new HttpClient(network.HttpHandler(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("caravan");
        client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        return client;
    }

    public static HttpRequestMessage Json(HttpMethod method, Uri url, JsonNode? body)
    {
        var request = new HttpRequestMessage(method, url);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        return request;
    }

    /// <summary>
    /// Sends a request and reads the whole answer (bounded). Network failures become
    /// <see cref="ConnectivityException"/>s: refused, egress denied, TLS, unresolvable.
    /// </summary>
    public static Task<RestAnswer> SendAsync(HttpClient client, HttpRequestMessage request, string service, CancellationToken cancellationToken) =>
        SendAsync(client, request, service, null, cancellationToken);

    /// <summary>
    /// The same, with the rows of a successful answer read as they arrive by <paramref name="rows"/>
    /// (<see cref="AnswerRows"/>): the answer's JSON is then everything but those rows.
    /// </summary>
    public static async Task<RestAnswer> SendAsync(
        HttpClient client, HttpRequestMessage request, string service, AnswerRows? rows, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (rows is not null && response.IsSuccessStatusCode)
            {
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                try
                {
                    var (answer, streamed) = await rows.ReadAsync(body, service, cancellationToken);
                    return new RestAnswer(response.StatusCode, answer, streamed);
                }
                catch (JsonException)
                {
                    throw new ConnectivityException(FailureCodes.DriverError, $"{service} sent an answer that is not the JSON Caravan expects.");
                }
            }

            var text = await ReadAsync(response.Content, service, cancellationToken);
            JsonNode? json = null;
            if (text.Length > 0 && text.TrimStart() is ['{', ..] or ['[', ..])
            {
                try
                {
                    json = JsonNode.Parse(text);
                }
                catch (JsonException)
                {
                    json = null;
                }
            }

            return new RestAnswer(response.StatusCode, json, text);
        }
        catch (HttpRequestException exception)
        {
            throw MapNetwork(exception, service);
        }
    }

    /// <summary>The stable code for a failure to reach the service over HTTP.</summary>
    public static ConnectivityException MapNetwork(Exception exception, string service)
    {
        if (Find<ConnectivityException>(exception) is { } known)
        {
            return known;
        }

        if (Find<AuthenticationException>(exception) is { } tls)
        {
            return new ConnectivityException(FailureCodes.TlsFailed,
                $"The TLS handshake with {service} failed: {tls.Message}", exception, step: "tls");
        }

        if (Find<SocketException>(exception) is { } socket)
        {
            return NetworkPath.Refused(socket, 0);
        }

        return new ConnectivityException(FailureCodes.DriverError, $"The request to {service} failed: {exception.Message}", exception);
    }

    /// <summary>
    /// What a service said, on one line. Not shortened: a cut here would come before the secrets
    /// are masked, so the scrubber that masks them makes the only cut (a test step's, a query's).
    /// </summary>
    public static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>
    /// Masks values that are secret but not stored (tokens made during the test or the query), whole
    /// and in part, as the source's own secrets are masked later; nothing is cut.
    /// </summary>
    public static string Redact(string text, params string?[] values) => new SecretScrubber(values).Scrub(text);

    /// <summary>The pause before the n-th status poll: short at first so quick statements answer quickly.</summary>
    public static TimeSpan Poll(int attempt) => TimeSpan.FromMilliseconds(Math.Min(1000, 25 * Math.Pow(1.6, Math.Min(attempt, 12))));

    /// <summary>The request's timeout in whole seconds for a service that takes one, from the time left.</summary>
    public static int Seconds(TimeSpan budget) => (int)Math.Clamp(Math.Ceiling(budget.TotalSeconds), 1, 3600);

    public static string Base64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static async Task HandshakeAsync(IPAddress address, string host, int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken);
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            throw NetworkPath.Refused(exception, port);
        }

        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = host }, cancellationToken);
        }
        catch (Exception exception) when (exception is AuthenticationException or IOException)
        {
            throw new ConnectivityException(FailureCodes.TlsFailed,
                $"The TLS handshake with {host} failed: {exception.Message} Check the host name, and any proxy that intercepts TLS.", exception);
        }
    }

    private static async Task<string> ReadAsync(HttpContent content, string service, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > MaxAnswerBytes)
        {
            throw TooLarge(service);
        }

        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxAnswerBytes)
            {
                throw TooLarge(service);
            }

            buffer.Write(chunk, 0, read);
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>The failure for an answer (other than its streamed rows) larger than <see cref="MaxAnswerBytes"/>.</summary>
    public static ConnectivityException TooLarge(string service) =>
        new(FailureCodes.DriverError, $"{service} answered more than {MaxAnswerBytes / (1024 * 1024)} MB; Caravan stopped reading.");

    private static Uri WithTrailingSlash(Uri uri) =>
        uri.AbsolutePath.EndsWith('/') ? uri : new Uri(uri.GetLeftPart(UriPartial.Path) + "/");
}
