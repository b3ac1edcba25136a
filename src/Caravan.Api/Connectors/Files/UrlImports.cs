using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Downloads the files of URL imports (<c>file_urls</c> of FILE sources). Caravan fetches them
/// itself, from inside the operator's network, for anyone who may create a source: unchecked, a
/// URL would reach a router's admin page, a database's HTTP port or the cloud metadata service
/// that hands out instance credentials. So every connection is resolved, checked
/// (<see cref="UrlAddresses"/>) and made here, in the handler's ConnectCallback: the address
/// connected to is the address checked, for the first URL and for each redirect, and a second DNS
/// answer cannot send the connection elsewhere. Redirects are followed here too, each one checked
/// again; no proxy, no decompression (a compressed bomb counts against the limit byte for byte as
/// it arrives), and every wait is bounded so a silent server cannot hold a job forever.
/// </summary>
public sealed class UrlImports : IDisposable
{
    public const int MaxUrlLength = 2048;
    public const int MaxRedirects = 5;

    private const string SizeSetting = "Caravan__Files__MaxFileBytes";

    private readonly UrlAddresses _addresses;
    private readonly UrlTimeouts _timeouts;
    private readonly long _maxBytes;
    private readonly HttpClient _client;

    public UrlImports(IOptions<FilesOptions> options, UrlTimeouts? timeouts = null)
    {
        _addresses = new UrlAddresses(options.Value.UrlAllow);
        _maxBytes = options.Value.MaxFileBytes;
        _timeouts = timeouts ?? UrlTimeouts.Default;
        _client = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),

            // An abandoned download (too large, failed) closes its connection instead of reading on to reuse it.
            MaxResponseDrainSize = 0,
            ConnectCallback = ConnectAsync,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
            DefaultRequestHeaders = { UserAgent = { new ProductInfoHeaderValue("Caravan", null) } },
        };
    }

    /// <summary>
    /// Checks a URL's syntax only: an absolute http or https URL with a host, no user name or
    /// password, at most <see cref="MaxUrlLength"/> characters. Null when it is fine, else a message
    /// for the user (which never repeats the URL).
    /// </summary>
    public static string? CheckSyntax(string? url)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            return "Enter the URL of a file.";
        }

        if (url.Length > MaxUrlLength)
        {
            return $"The URL is longer than {MaxUrlLength} characters.";
        }

        // On Unix a path such as /data.csv parses as an absolute file: URI; it is a relative URL here.
        var trimmed = url.Trim();
        if (trimmed.StartsWith('/') || trimmed.StartsWith('\\') || !Uri.TryCreate(trimmed, UriKind.Absolute, out var uri))
        {
            return "Enter an absolute URL, such as https://example.com/data.csv.";
        }

        return CheckSyntax(uri);
    }

    /// <summary>
    /// Downloads <paramref name="url"/>, following at most <see cref="MaxRedirects"/> redirects, and
    /// answers once the response headers arrived. The content stream throws
    /// <see cref="UrlImportException"/> when the body passes <c>Caravan__Files__MaxFileBytes</c>,
    /// the server sends nothing for the idle timeout or the connection breaks. Every failure to
    /// download is a <see cref="UrlImportException"/> whose message is for the user and never
    /// contains the URL's user name, password or query. <paramref name="cancellationToken"/> covers
    /// opening; reads take their own token.
    /// </summary>
    public async Task<UrlDownload> OpenAsync(string url, CancellationToken cancellationToken)
    {
        if (CheckSyntax(url) is { } problem)
        {
            throw new UrlImportException(problem);
        }

        var current = new Uri(url.Trim(), UriKind.Absolute);
        for (var redirects = 0; ; redirects++)
        {
            var response = await SendAsync(current, redirects > 0, cancellationToken);
            if (!IsRedirect(response.StatusCode))
            {
                return await AcceptAsync(response, current, cancellationToken);
            }

            using (response)
            {
                if (redirects == MaxRedirects)
                {
                    throw new UrlImportException($"{Display(current)} redirects again after {MaxRedirects} redirects; Caravan follows at most {MaxRedirects}.");
                }

                current = Next(current, response);
            }
        }
    }

    public void Dispose() => _client.Dispose();

    /// <summary>The URL without its user name, password, query and fragment, shortened: what messages may show.</summary>
    public static string Display(Uri uri)
    {
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        {
            // Other schemes do not all split off a query; their scheme says enough.
            return $"a {uri.Scheme}: URL";
        }

        var shown = uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
        return shown.Length <= 200 ? shown : string.Concat(shown.AsSpan(0, 200), "…");
    }

    private static string? CheckSyntax(Uri uri)
    {
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        {
            return "Only http and https URLs can be imported.";
        }

        if (uri.UserInfo.Length > 0)
        {
            return "The URL contains a user name or password; Caravan does not send credentials to download a file.";
        }

        return string.IsNullOrEmpty(uri.Host) ? "The URL has no host." : null;
    }

    private static bool IsRedirect(HttpStatusCode status) => status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found
        or HttpStatusCode.SeeOther or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private async Task<HttpResponseMessage> SendAsync(Uri uri, bool redirected, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_timeouts.Headers);
        try
        {
            return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, limit.Token);
        }
        catch (Exception exception) when (!cancellationToken.IsCancellationRequested && exception is HttpRequestException or OperationCanceledException)
        {
            var failure = Find<UrlImportException>(exception) ?? (exception is OperationCanceledException
                ? new UrlImportException($"{uri.Host} did not answer within {Seconds(_timeouts.Headers)}.")
                : Failed(uri, exception));
            throw redirected ? new UrlImportException($"The redirect to {Display(uri)} failed: {failure.Message}") : failure;
        }
    }

    private async Task<UrlDownload> AcceptAsync(HttpResponseMessage response, Uri uri, CancellationToken cancellationToken)
    {
        try
        {
            if (!response.IsSuccessStatusCode)
            {
                var status = (int)response.StatusCode;
                var phrase = ReasonPhrases.GetReasonPhrase(status);
                throw new UrlImportException($"{Display(uri)} answered {status}{(phrase.Length > 0 ? $" {phrase}" : string.Empty)} instead of the file.");
            }

            if (response.Content.Headers.ContentLength > _maxBytes)
            {
                throw TooLarge(uri, $"is {Bytes(response.Content.Headers.ContentLength.Value)}", _maxBytes);
            }

            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            return new UrlDownload(response, new UrlStream(body, response, _maxBytes, _timeouts.Idle, uri), uri);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private static Uri Next(Uri current, HttpResponseMessage response)
    {
        if (response.Headers.Location is not { } location)
        {
            throw new UrlImportException($"{Display(current)} answered {(int)response.StatusCode}, a redirect, without a valid Location.");
        }

        if (!Uri.TryCreate(current, location, out var next))
        {
            throw new UrlImportException($"{Display(current)} redirects to a URL that is not valid.");
        }

        var problem = next.OriginalString.Length > MaxUrlLength ? $"The URL is longer than {MaxUrlLength} characters." : CheckSyntax(next);
        if (problem is null && current.Scheme == Uri.UriSchemeHttps && next.Scheme == Uri.UriSchemeHttp)
        {
            // Like HttpClient's own redirects: the user asked for a file over TLS, so it is not fetched in clear text.
            problem = "It leaves https for http.";
        }

        return problem is null ? next : throw new UrlImportException($"The redirect to {Display(next)} was refused: {problem}");
    }

    /// <summary>
    /// Resolves the host, checks every address and connects to the first allowed one that answers,
    /// by address: this is where URL imports' address rules hold, for every connection the client makes.
    /// </summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host.Trim('[', ']');
        var port = context.DnsEndPoint.Port;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_timeouts.Connect);
        try
        {
            var literal = IPAddress.TryParse(host, out var parsed);
            var addresses = literal ? [parsed!] : await ResolveAsync(host, limit.Token);
            UrlImportException? refused = null, failed = null;
            foreach (var address in addresses)
            {
                if (_addresses.Refusal(address) is { } refusal)
                {
                    refused ??= new UrlImportException(literal ? $"The URL's host is {refusal}." : $"{host} resolves to {refusal}.");
                    continue;
                }

                // A mapped address passed as its IPv4 address; an IPv4 socket reaches it without a dual-stack one.
                var target = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
                var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(target, port), limit.Token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException exception)
                {
                    socket.Dispose();
                    failed = new UrlImportException(exception.SocketErrorCode == SocketError.ConnectionRefused
                        ? $"Nothing accepts connections on {host} port {port}."
                        : $"Caravan could not connect to {host} port {port} ({exception.SocketErrorCode}).");
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }

            throw failed ?? refused!;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UrlImportException($"{host} did not accept a connection within {Seconds(_timeouts.Connect)}.");
        }
    }

    private static async Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (UrlAddresses.IsMetadataName(host))
        {
            throw new UrlImportException($"{host} is a cloud metadata service; Caravan never downloads from it.");
        }

        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host, cancellationToken);
            return addresses.Length > 0 ? addresses : throw new UrlImportException($"The host name {host} has no addresses.");
        }
        catch (SocketException)
        {
            throw new UrlImportException($"The host name {host} could not be resolved. Check its spelling.");
        }
    }

    private static UrlImportException Failed(Uri uri, Exception exception) =>
        new((exception as HttpRequestException)?.HttpRequestError switch
        {
            HttpRequestError.SecureConnectionError => $"The TLS connection to {uri.Host} failed: its certificate is not valid for the name, or not trusted.",
            HttpRequestError.InvalidResponse or HttpRequestError.ResponseEnded => $"{uri.Host} did not answer with a valid HTTP response.",
            HttpRequestError.ConfigurationLimitExceeded => $"{uri.Host} answered with headers that are too large.",
            _ => $"The download from {uri.Host} failed.",
        });

    internal static UrlImportException TooLarge(Uri uri, string size, long maxBytes) =>
        new($"The file at {Display(uri)} {size}, more than the limit of {Bytes(maxBytes)} ({SizeSetting}).");

    internal static string Bytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes:N0} bytes");

    internal static string Seconds(TimeSpan span) => string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.#} second{(span == TimeSpan.FromSeconds(1) ? string.Empty : "s")}");

    private static T? Find<T>(Exception? exception) where T : Exception
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is T found)
            {
                return found;
            }
        }

        return null;
    }
}

/// <summary>A URL import that failed, with a message for the user (no credentials or query of the URL in it).</summary>
public sealed class UrlImportException(string message) : Exception(message);

/// <summary>How long URL imports wait: for a connection, for the response headers, and for each next byte of the body.</summary>
public sealed record UrlTimeouts(TimeSpan Connect, TimeSpan Headers, TimeSpan Idle)
{
    public static readonly UrlTimeouts Default = new(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60));
}
