using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Objects in a bucket of any S3-compatible store (<c>Caravan__Files__S3__*</c>), which several
/// replicas share. Uploads stream in fixed parts, so memory does not grow with a file's size;
/// readers get a copy downloaded once into this replica's <c>&lt;Directory&gt;/cache/</c>, kept
/// for as long as the object exists since objects never change.
/// </summary>
public sealed partial class S3FileStore : IFileStore, IDisposable
{
    /// <summary>
    /// Each part of a multipart upload: above S3's 5 MiB minimum, and 10,000 parts (S3's maximum)
    /// of it hold 80 GiB, well over the largest file accepted (<c>MaxFileBytes</c>, 10 GiB by default).
    /// </summary>
    internal const int PartBytes = 8 * 1024 * 1024;

    private readonly AmazonS3Client client;
    private readonly string bucket;
    private readonly string cacheRoot;
    private readonly ILogger logger;
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> downloads = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource closing = new();

    public S3FileStore(IOptions<FilesOptions> options, ILogger<S3FileStore> logger)
        : this(options.Value, logger, configure: null)
    {
    }

    /// <summary>A store whose client settings <paramref name="configure"/> adjusts (tests count its requests through it).</summary>
    internal S3FileStore(FilesOptions options, ILogger logger, Action<AmazonS3Config>? configure)
    {
        var s3 = options.S3;
        bucket = s3.Bucket ?? throw new ArgumentException("No bucket: " + FileStores.S3Setting("Bucket"), nameof(options));
        cacheRoot = Path.GetFullPath(Path.Combine(options.Directory, "cache"));
        this.logger = logger;
        var config = new AmazonS3Config
        {
            ForcePathStyle = s3.ForcePathStyle,

            // SDK v4 adds CRC32 checksums to every upload and asks for them on every download,
            // which not every S3-compatible store understands (some refuse the headers); they are
            // kept to the operations that require one (DeleteObjects). Stored objects are
            // authenticated by their encryption anyway. Uploads also send their bytes plainly
            // (UseChunkEncoding = false), since stores without aws-chunked decoding (s3rver, which
            // the tests use) would keep the chunk framing as part of the object.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };

        // The region is always given, so the SDK never looks for one in the environment, a
        // profile or the instance metadata service.
        if (string.IsNullOrWhiteSpace(s3.Endpoint))
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(s3.Region);
        }
        else
        {
            config.ServiceURL = s3.Endpoint;
            config.AuthenticationRegion = s3.Region;
        }

        configure?.Invoke(config);

        // Explicit keys: the SDK's credential chain (environment, profiles, instance metadata) is never consulted.
        client = new AmazonS3Client(new BasicAWSCredentials(s3.AccessKey, s3.SecretKey), config);
    }

    /// <summary>How many keys one list request asks for (S3 answers at most 1,000); tests page with fewer.</summary>
    internal int ListPageSize { get; init; } = 1000;

    /// <summary>The folder this replica's downloaded copies are kept in.</summary>
    internal string CacheRoot => cacheRoot;

    public async Task<long> PutAsync(string key, Stream content, CancellationToken cancellationToken)
    {
        FileKeys.ThrowIfInvalid(key);

        // Two buffers: one part uploads while the next is read from the stream.
        var buffers = new[] { ArrayPool<byte>.Shared.Rent(PartBytes), ArrayPool<byte>.Shared.Rent(PartBytes) };
        try
        {
            var filled = await FillAsync(content, buffers[0], cancellationToken);
            if (filled < PartBytes)
            {
                using var single = new MemoryStream(buffers[0], 0, filled, writable: false);
                await client.PutObjectAsync(new PutObjectRequest
                {
                    BucketName = bucket, Key = key, InputStream = single, AutoCloseStream = false, UseChunkEncoding = false,
                }, cancellationToken);
                return filled;
            }

            return await PutInPartsAsync(key, content, buffers, filled, cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffers[0]);
            ArrayPool<byte>.Shared.Return(buffers[1]);
        }
    }

    public async Task<string> LocalCopyAsync(string key, CancellationToken cancellationToken)
    {
        var path = LocalObjects.PathOf(cacheRoot, key);
        if (File.Exists(path))
        {
            return path;
        }

        // Callers asking for the same object share one download, which runs to its end even if
        // one of them stops waiting (until the store is disposed); once it ends, successfully or
        // not, it is forgotten, so the next caller finds the file or tries again.
        var download = downloads.GetOrAdd(key, _ => new Lazy<Task<string>>(() => DownloadAsync(key, path)));
        return await download.Value.WaitAsync(cancellationToken);
    }

    public async Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var folder = prefix.TrimEnd('/');
        FileKeys.ThrowIfInvalid(folder);

        // Like the local store: the objects under the folder, and an object named exactly so.
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = folder + "/", MaxKeys = ListPageSize };
        List<string> exact = [folder];
        do
        {
            var page = await client.ListObjectsV2Async(request, cancellationToken);
            var keys = exact.Concat(page.S3Objects?.Select(o => o.Key) ?? []).ToList();
            exact = [];
            if (keys.Count > 0)
            {
                await client.DeleteObjectsAsync(new DeleteObjectsRequest
                {
                    BucketName = bucket, Quiet = true, Objects = [.. keys.Select(k => new KeyVersion { Key = k })],
                }, cancellationToken);
            }

            request.ContinuationToken = page.NextContinuationToken;
        }
        while (request.ContinuationToken is not null);

        LocalObjects.DeleteUnder(cacheRoot, folder);
    }

    public async Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        var folder = prefix.TrimEnd('/');
        FileKeys.ThrowIfInvalid(folder);
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = folder + "/", MaxKeys = ListPageSize };
        var keys = new List<string>();
        do
        {
            var page = await client.ListObjectsV2Async(request, cancellationToken);
            keys.AddRange(page.S3Objects?.Select(o => o.Key) ?? []);
            request.ContinuationToken = page.NextContinuationToken;
        }
        while (request.ContinuationToken is not null);

        keys.Sort(StringComparer.Ordinal);
        return keys;
    }

    public IReadOnlyList<string> LocalCopies(string prefix) => LocalObjects.Keys(cacheRoot, prefix);

    public void DropLocalCopies(string prefix) => LocalObjects.DeleteUnder(cacheRoot, prefix);

    public void Dispose()
    {
        closing.Cancel();
        client.Dispose();
        closing.Dispose();
    }

    /// <summary>Reads until <paramref name="buffer"/> holds a whole part or the stream ends.</summary>
    private static async Task<int> FillAsync(Stream content, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        int read;
        while (filled < PartBytes && (read = await content.ReadAsync(buffer.AsMemory(filled, PartBytes - filled), cancellationToken)) > 0)
        {
            filled += read;
        }

        return filled;
    }

    private async Task<long> PutInPartsAsync(string key, Stream content, byte[][] buffers, int filled, CancellationToken cancellationToken)
    {
        var upload = await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = key }, cancellationToken);
        using var failing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task<UploadPartResponse>? sending = null;
        try
        {
            var parts = new List<PartETag>();
            long total = 0;
            for (var number = 1; filled > 0; number++)
            {
                var buffer = buffers[(number - 1) % 2];
                sending = UploadPartAsync(key, upload.UploadId, number, buffer, filled, failing.Token);
                total += filled;
                filled = await FillAsync(content, buffers[number % 2], failing.Token);
                parts.Add(new PartETag(number, (await sending).ETag));
                sending = null;
            }

            await client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = bucket, Key = key, UploadId = upload.UploadId, PartETags = parts,
            }, cancellationToken);
            return total;
        }
        catch
        {
            // The part in flight reads a buffer that goes back to the pool: it must end first.
            await failing.CancelAsync();
            if (sending is not null)
            {
                await ((Task)sending).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await AbortAsync(key, upload.UploadId);
            throw;
        }
    }

    private Task<UploadPartResponse> UploadPartAsync(string key, string uploadId, int number, byte[] buffer, int length, CancellationToken cancellationToken) =>
        client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = bucket, Key = key, UploadId = uploadId, PartNumber = number,
            InputStream = new MemoryStream(buffer, 0, length, writable: false), PartSize = length, UseChunkEncoding = false,
        }, cancellationToken);

    /// <summary>
    /// Abandons an unfinished upload so its parts are not kept (and billed) under the key; a failure
    /// here is logged, not thrown, so the caller sees why the upload failed in the first place.
    /// </summary>
    private async Task AbortAsync(string key, string uploadId)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = bucket, Key = key, UploadId = uploadId }, timeout.Token);
        }
        catch (Exception exception) when (exception is AmazonServiceException or HttpRequestException or OperationCanceledException or IOException)
        {
            LogAbortFailed(logger, key, uploadId, exception.Message);
        }
    }

    private async Task<string> DownloadAsync(string key, string path)
    {
        try
        {
            using var response = await client.GetObjectAsync(bucket, key, closing.Token);
            await LocalObjects.WriteAsync(path, response.ResponseStream, closing.Token);
            return path;
        }
        catch (AmazonS3Exception exception) when (exception.StatusCode == HttpStatusCode.NotFound || exception.ErrorCode == "NoSuchKey")
        {
            throw new FileNotFoundException("No stored object " + key);
        }
        finally
        {
            // Only this download can be registered under the key until it is removed here.
            downloads.TryRemove(key, out _);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not abort the unfinished upload {UploadId} of {Key}; its parts stay in the bucket until a lifecycle rule removes them: {Reason}")]
    private static partial void LogAbortFailed(ILogger logger, string key, string uploadId, string reason);
}
