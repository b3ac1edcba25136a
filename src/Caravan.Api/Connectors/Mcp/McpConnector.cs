using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors.Files;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Caravan.Api.Connectors.Mcp;

/// <summary>The limits of Caravan's calls to remote MCP servers (<c>Caravan__Mcp__*</c>, docs/mcp.md).</summary>
public sealed class RemoteMcpOptions
{
    public const string Section = "Caravan:Mcp";

    /// <summary>Longest a forwarded tool call may take, in seconds (1–600); then it is cancelled on the remote.</summary>
    public int RemoteCallTimeoutSeconds { get; set; } = 60;

    /// <summary>Most bytes one answer of a remote server may have (1 KiB – 64 MiB); Caravan stops reading past it.</summary>
    public int MaxRemoteResultBytes { get; set; } = 1024 * 1024;

    /// <summary>How long the list of a remote server's tools is reused for <c>tools/list</c>, in seconds (0–3600).</summary>
    public int ToolListCacheSeconds { get; set; } = 60;
}

/// <summary>
/// Opens MCP client sessions to the server of an MCP source: Streamable HTTP, falling back to SSE,
/// over connections made only by <see cref="NetworkPath"/> (every connected address checked by the
/// egress policy, no proxy, no redirects). The stored token is added by Caravan to requests for the
/// origin of <c>base_url</c> only, so a server that names another host for its messages (SSE) never
/// receives it there. Every answer is read through a byte limit, so a server cannot make Caravan
/// hold more than <see cref="RemoteMcpOptions.MaxRemoteResultBytes"/> of one message.
/// </summary>
public sealed class McpConnector(NetworkPath network, IOptions<RemoteMcpOptions> options)
{
    /// <summary>
    /// The SDK's client logs what a server answered (error bodies that may repeat the token, tool
    /// results) at levels operators keep: it gets no logger. Caravan logs what it needs itself
    /// (the audit of each call, the failure code of a test), never a body.
    /// </summary>
    private static readonly ILoggerFactory NoLogs = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;

    private static readonly Implementation ClientInfo = new()
    {
        Name = "caravan",
        Version = typeof(McpConnector).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "1.0.0",
    };

    public RemoteMcpOptions Options => options.Value;

    public int MaxResultBytes => Math.Clamp(options.Value.MaxRemoteResultBytes, 1024, 64 * 1024 * 1024);

    public TimeSpan CallLimit => TimeSpan.FromSeconds(Math.Clamp(options.Value.RemoteCallTimeoutSeconds, 1, 600));

    /// <summary>The source's <c>base_url</c>, checked again (it was on write), or a failure at <c>resolve</c>.</summary>
    public static Uri BaseUrl(SourceConnection connection) =>
        connection.Text("base_url") is { } text && Field.CheckUrl(text) is null && Uri.TryCreate(text, UriKind.Absolute, out var url)
            ? url
            : throw new ConnectivityException(FailureCodes.DriverError, "The source has no valid base_url yet; complete its configuration with update-config.");

    /// <summary>Opens a session: connects, <c>initialize</c>s. The caller disposes the session.</summary>
    public async Task<RemoteSession> OpenAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var url = BaseUrl(connection);
        var watch = new RemoteWatch();
        var http = new HttpClient(new RemoteHandler(url, connection.Secret("access_token"), MaxResultBytes, watch, network.HttpHandler()), disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("caravan");
        var transport = new HttpClientTransport(
            new HttpClientTransportOptions { Endpoint = url, TransportMode = HttpTransportMode.AutoDetect, Name = "source " + connection.SourceId },
            http,
            NoLogs,
            ownsHttpClient: true);
        try
        {
            var client = await McpClient.CreateAsync(transport, new McpClientOptions { ClientInfo = ClientInfo }, NoLogs, cancellationToken);
            return new RemoteSession(client, watch, (exception, since) => Explain(exception, watch, url, since));
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await transport.DisposeAsync();
            throw Explain(exception, watch, url);
        }
    }

    /// <summary>The stable failure for what went wrong talking to a remote server, as the test and the tools report it.</summary>
    public ConnectivityException Explain(Exception exception, RemoteWatch watch, Uri url, RemoteWatch.Counts since = default)
    {
        if (watch.OversizedSince(since))
        {
            return new ConnectivityException(FailureCodes.ResultTooLarge,
                $"The MCP server sent a message larger than {MaxResultBytes / 1024} KiB (Caravan__Mcp__MaxRemoteResultBytes); Caravan stopped reading it.", exception);
        }

        if (watch.RefusedSince(since) is { } refused)
        {
            return new ConnectivityException(FailureCodes.AuthFailed,
                $"The MCP server refused Caravan's request with HTTP {(int)refused}: check access_token (it is sent as Authorization: Bearer) and its rights on the server.", exception);
        }

        if (exception is TimeoutException)
        {
            return new ConnectivityException(FailureCodes.Timeout, "The MCP server did not answer in time.", exception);
        }

        if (exception is McpProtocolException protocol)
        {
            return new ConnectivityException(FailureCodes.DriverError, $"The MCP server answered with an error: {protocol.Message}", exception);
        }

        if (watch.FailedSince(since) is { } status)
        {
            var redirect = (int)status is >= 300 and < 400;
            return new ConnectivityException(FailureCodes.DriverError, redirect
                ? $"The MCP server answered HTTP {(int)status}, a redirect: Caravan does not follow redirects with the token; set base_url to the final address."
                : $"The MCP server answered HTTP {(int)status} at {url.GetLeftPart(UriPartial.Path)}: check that base_url is its MCP endpoint (Streamable HTTP, or the SSE endpoint such as /sse).", exception);
        }

        return RestService.MapNetwork(exception, "The MCP server");
    }

    /// <summary>
    /// Adds the token for <c>base_url</c>'s origin (and removes any other authorization), records
    /// refusals and failures, and bounds every answer.
    /// </summary>
    private sealed class RemoteHandler(Uri origin, string? token, int limit, RemoteWatch watch, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Authorization = token is not null && request.RequestUri is { } target && SameOrigin(target, origin)
                ? new AuthenticationHeaderValue("Bearer", token)
                : null;
            var response = await base.SendAsync(request, cancellationToken);
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                watch.NoteRefused(response.StatusCode);
            }
            else if (!response.IsSuccessStatusCode)
            {
                watch.NoteFailed(response.StatusCode);
            }

            var events = response.Content.Headers.ContentType?.MediaType == "text/event-stream";
            response.Content = new BoundedContent(response.Content, limit, events, watch);
            return response;
        }

        private static bool SameOrigin(Uri a, Uri b) =>
            a.Scheme == b.Scheme && a.Port == b.Port && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>An answer read through <see cref="BoundedStream"/>, with the original's headers.</summary>
    private sealed class BoundedContent : HttpContent
    {
        private readonly HttpContent _inner;
        private readonly int _limit;
        private readonly bool _events;
        private readonly RemoteWatch _watch;

        public BoundedContent(HttpContent inner, int limit, bool events, RemoteWatch watch)
        {
            _inner = inner;
            _limit = limit;
            _events = events;
            _watch = watch;
            foreach (var header in inner.Headers)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
            new BoundedStream(await _inner.ReadAsStreamAsync(cancellationToken), _limit, _events, _watch);

        protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await using var bounded = await CreateContentReadStreamAsync(cancellationToken);
            await bounded.CopyToAsync(stream, cancellationToken);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// Counts the bytes of one message: a whole JSON body, or one server-sent event (bytes since the
    /// last blank line) of an event stream, which carries many messages over time. Past the limit it
    /// fails the read, which ends the answer.
    /// </summary>
    private sealed class BoundedStream(Stream inner, int limit, bool events, RemoteWatch watch) : ForwardStream
    {
        private long _count;
        private bool _lineEnded;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            if (!events)
            {
                _count += read;
            }
            else
            {
                foreach (var b in buffer.Span[..read])
                {
                    if (b == (byte)'\r')
                    {
                        continue;
                    }

                    if (b == (byte)'\n')
                    {
                        _count = _lineEnded ? 0 : _count + 1;
                        _lineEnded = true;
                        continue;
                    }

                    _lineEnded = false;
                    _count++;
                    if (_count > limit)
                    {
                        break;
                    }
                }
            }

            if (_count > limit)
            {
                watch.NoteOversized();
                throw new IOException($"The answer passed the limit of {limit} bytes.");
            }

            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// What the HTTP layer saw of a session's answers (counted, as calls share a session), for
/// explaining a failure that the MCP client reports vaguely.
/// </summary>
public sealed class RemoteWatch
{
    private int _oversized;
    private int _refusals;
    private int _refused;
    private int _failures;
    private int _status;

    /// <summary>How many of each were seen, for telling what happened during one call.</summary>
    public readonly record struct Counts(int Oversized, int Refusals, int Failures);

    public Counts Snapshot() => new(Volatile.Read(ref _oversized), Volatile.Read(ref _refusals), Volatile.Read(ref _failures));

    /// <summary>An answer passed the size limit.</summary>
    public void NoteOversized() => Interlocked.Increment(ref _oversized);

    /// <summary>A 401 or 403.</summary>
    public void NoteRefused(HttpStatusCode status)
    {
        Volatile.Write(ref _refused, (int)status);
        Interlocked.Increment(ref _refusals);
    }

    /// <summary>Another unsuccessful status.</summary>
    public void NoteFailed(HttpStatusCode status)
    {
        Volatile.Write(ref _status, (int)status);
        Interlocked.Increment(ref _failures);
    }

    public bool OversizedSince(Counts before) => Volatile.Read(ref _oversized) > before.Oversized;

    public HttpStatusCode? RefusedSince(Counts before) => Volatile.Read(ref _refusals) > before.Refusals ? (HttpStatusCode)Volatile.Read(ref _refused) : null;

    public HttpStatusCode? FailedSince(Counts before) => Volatile.Read(ref _failures) > before.Failures ? (HttpStatusCode)Volatile.Read(ref _status) : null;
}

/// <summary>The code of forwarded tool calls beyond the connection failure codes.</summary>
public static class RemoteCodes
{
    public const string RemoteError = "remote_error";
}

/// <summary>
/// A connected MCP client session to one source's server, which explains its failures by what its
/// answers showed (<see cref="McpConnector.Explain"/>), with the tools it listed last (reused for
/// <see cref="RemoteMcpOptions.ToolListCacheSeconds"/>).
/// </summary>
public sealed class RemoteSession(McpClient client, RemoteWatch watch, Func<Exception, RemoteWatch.Counts, ConnectivityException> explain) : IAsyncDisposable
{
    public McpClient Client => client;

    public RemoteWatch Watch => watch;

    /// <summary>The stable failure for <paramref name="exception"/>, judged by what the answers showed since <paramref name="since"/>.</summary>
    public ConnectivityException Explain(Exception exception, RemoteWatch.Counts since) => explain(exception, since);

    /// <summary>Whether the session ended (the server closed it, the stream broke): a new one is needed.</summary>
    public bool IsClosed => client.Completion.IsCompleted;

    /// <summary>The tools listed last and when (a <see cref="TimeProvider"/> timestamp).</summary>
    public (IReadOnlyList<Tool> Tools, long At)? Listed { get; set; }

    /// <summary>Every tool of the server, following <c>nextCursor</c> (at most 100 pages); a failure is a <see cref="ConnectivityException"/>.</summary>
    public async Task<IReadOnlyList<Tool>> ListToolsAsync(CancellationToken cancellationToken)
    {
        var seen = watch.Snapshot();
        var tools = new List<Tool>();
        string? cursor = null;
        try
        {
            for (var page = 0; page < 100; page++)
            {
                var result = await client.ListToolsAsync(new ListToolsRequestParams { Cursor = cursor }, cancellationToken);
                tools.AddRange(result.Tools);
                if (string.IsNullOrEmpty(result.NextCursor))
                {
                    break;
                }

                cursor = result.NextCursor;
            }
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            throw explain(exception, seen);
        }

        return tools;
    }

    public ValueTask DisposeAsync() => client.DisposeAsync();
}
