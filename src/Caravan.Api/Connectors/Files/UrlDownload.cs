namespace Caravan.Api.Connectors.Files;

/// <summary>
/// An open download: the response body as it arrives, and what the server said about it.
/// <see cref="FinalUrl"/> is the URL after redirects, query included: not for messages.
/// </summary>
public sealed class UrlDownload : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;

    internal UrlDownload(HttpResponseMessage response, Stream content, Uri finalUrl)
    {
        _response = response;
        Content = content;
        FinalUrl = finalUrl;
        ContentType = response.Content.Headers.ContentType?.ToString();
        Length = response.Content.Headers.ContentLength;
    }

    /// <summary>The body, read once; it throws <see cref="UrlImportException"/> past the size limit, after the idle timeout, or when the connection breaks.</summary>
    public Stream Content { get; }

    public Uri FinalUrl { get; }

    /// <summary>The Content-Type header as sent, if any.</summary>
    public string? ContentType { get; }

    /// <summary>The Content-Length header, if any (already checked against the size limit).</summary>
    public long? Length { get; }

    public async ValueTask DisposeAsync()
    {
        await Content.DisposeAsync();
        _response.Dispose();
    }
}

/// <summary>
/// A response body that counts the bytes it hands out and stops past the size limit, and gives up
/// when the server sends nothing for the idle timeout. Either way it closes the response at once,
/// so the connection is dropped rather than read on.
/// </summary>
internal sealed class UrlStream(Stream body, HttpResponseMessage response, long maxBytes, TimeSpan idle, Uri uri) : ForwardStream
{
    private long _handedOut;
    private UrlImportException? _failure;

    /// <summary>How many bytes were handed out (the size of what a URL sent, once read).</summary>
    public override long Position
    {
        get => _handedOut;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_failure is not null)
        {
            throw _failure;
        }

        if (buffer.IsEmpty)
        {
            return 0;
        }

        // Never ask for more than one byte past the limit: the byte that proves the file too large.
        var wanted = (int)Math.Min(buffer.Length, maxBytes - _handedOut + 1);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(idle);
        int read;
        try
        {
            read = await body.ReadAsync(buffer[..wanted], limit.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Fail($"{uri.Host} sent nothing for {UrlImports.Seconds(idle)}; the download was stopped.");
        }
        catch (Exception exception) when (exception is IOException or HttpRequestException)
        {
            throw Fail($"The download from {uri.Host} broke off before the whole file arrived.");
        }

        if (read > maxBytes - _handedOut)
        {
            throw Fail(UrlImports.TooLarge(uri, "is larger", maxBytes).Message);
        }

        _handedOut += read;
        return read;
    }


    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            body.Dispose();
            response.Dispose();
        }

        base.Dispose(disposing);
    }

    private UrlImportException Fail(string message)
    {
        _failure = new UrlImportException(message);
        body.Dispose();
        response.Dispose();
        return _failure;
    }
}
