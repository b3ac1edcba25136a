using System.Collections.Concurrent;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Caravan.Api.Connectors.Files;
using Caravan.Api.Hosting;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// The file store's contract (<see cref="IFileStore"/>), run against every store: objects stream in
/// whole or not at all, read back equal, list and delete by prefix, and refuse keys outside the store.
/// Each test works under its own random prefix, so the tests share a bucket or a folder safely.
/// </summary>
public abstract class FileStoreContract : IDisposable
{
    private const int MiB = 1024 * 1024;

    protected FileStoreContract()
    {
        Options = new FilesOptions { Directory = Path.Combine(Path.GetTempPath(), Unique.Name("caravan-files-tests-")) };
    }

    protected FilesOptions Options { get; }

    protected string Prefix { get; } = "sources/" + Unique.Name("t") + "/";

    protected static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public virtual void Dispose()
    {
        if (Directory.Exists(Options.Directory))
        {
            Directory.Delete(Options.Directory, recursive: true);
        }

        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task A_non_seekable_stream_of_20_MiB_is_stored_whole_and_read_back_equal()
    {
        var store = Store();
        var key = Prefix + "raw/big.bin";
        var content = new GeneratedStream(20 * MiB, seed: 1);

        Assert.Equal(20 * MiB, await store.PutAsync(key, content, Cancel));

        Assert.Equal(GeneratedStream.Hash(20 * MiB, seed: 1), await HashFileAsync(await store.LocalCopyAsync(key, Cancel)));
        Assert.Equal([key], await store.ListAsync(Prefix, Cancel));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(S3FileStore.PartBytes - 1)]
    [InlineData(S3FileStore.PartBytes)]
    [InlineData(S3FileStore.PartBytes + 1)]
    public async Task Objects_around_the_part_size_read_back_equal(int bytes)
    {
        var store = Store();
        var key = Prefix + "sized.bin";

        Assert.Equal(bytes, await store.PutAsync(key, new GeneratedStream(bytes, seed: bytes), Cancel));

        var copy = await store.LocalCopyAsync(key, Cancel);
        Assert.Equal(bytes, new FileInfo(copy).Length);
        Assert.Equal(GeneratedStream.Hash(bytes, seed: bytes), await HashFileAsync(copy));
    }

    [Fact]
    public async Task A_stream_that_fails_midway_leaves_nothing_under_the_key()
    {
        var store = Store();
        var key = Prefix + "raw/broken.bin";

        // Past the first part, so the S3 store has started a multipart upload.
        var failure = await Assert.ThrowsAsync<IOException>(() => store.PutAsync(key, new GeneratedStream(20 * MiB, seed: 2) { FailAfter = 12 * MiB }, Cancel));

        Assert.Equal(GeneratedStream.FailureMessage, failure.Message);
        await AssertNothingStoredAsync(store, key);
    }

    [Fact]
    public async Task A_cancelled_put_leaves_nothing_under_the_key()
    {
        var store = Store();
        var key = Prefix + "raw/cancelled.bin";
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Cancel);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => store.PutAsync(key, new GeneratedStream(20 * MiB, seed: 3) { CancelAfter = (12 * MiB, cancel) }, cancel.Token));

        await AssertNothingStoredAsync(store, key);
    }

    [Fact]
    public async Task Deleting_a_prefix_removes_its_objects_and_their_copies_and_nothing_else()
    {
        var store = Store();
        string[] doomed = [Prefix + "1/a.bin", Prefix + "1/deep/b.bin"];
        string[] kept = [Prefix + "10/a.bin", Prefix + "2/a.bin"];
        foreach (var key in doomed.Concat(kept))
        {
            await store.PutAsync(key, new GeneratedStream(1000, seed: 4), Cancel);
        }

        var copies = new List<string>();
        foreach (var key in doomed)
        {
            copies.Add(await store.LocalCopyAsync(key, Cancel));
        }

        await store.DeletePrefixAsync(Prefix + "1/", Cancel);

        Assert.Empty(await store.ListAsync(Prefix + "1/", Cancel));
        Assert.All(copies, copy => Assert.False(File.Exists(copy), copy));
        await Assert.ThrowsAsync<FileNotFoundException>(() => store.LocalCopyAsync(doomed[0], Cancel));
        Assert.Equal(kept, await store.ListAsync(Prefix, Cancel));
        Assert.Equal(1000, new FileInfo(await store.LocalCopyAsync(kept[0], Cancel)).Length);
    }

    [Fact]
    public async Task Dropping_the_local_copies_under_a_prefix_leaves_the_objects()
    {
        var store = Store();
        var key = Prefix + "1/copied.bin";
        await store.PutAsync(key, new GeneratedStream(1000, seed: 9), Cancel);
        await store.PutAsync(Prefix + "2/other.bin", new GeneratedStream(1000, seed: 9), Cancel);
        await store.LocalCopyAsync(key, Cancel);
        var other = await store.LocalCopyAsync(Prefix + "2/other.bin", Cancel);
        Assert.Equal(KeepsCopies ? [key] : [], store.LocalCopies(Prefix + "1/"));

        store.DropLocalCopies(Prefix + "1/");

        Assert.Empty(store.LocalCopies(Prefix + "1/"));
        Assert.True(File.Exists(other));
        Assert.Equal([key, Prefix + "2/other.bin"], await store.ListAsync(Prefix, Cancel));
        Assert.Equal(GeneratedStream.Hash(1000, seed: 9), await HashFileAsync(await store.LocalCopyAsync(key, Cancel)));
    }

    [Fact]
    public async Task Listing_and_deleting_go_past_a_thousand_objects()
    {
        var store = Store();
        var keys = Enumerable.Range(0, 1005).Select(i => $"{Prefix}many/{i:D4}.bin").ToList();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = Cancel },
            async (key, cancel) => await store.PutAsync(key, new MemoryStream([1, 2, 3]), cancel));

        Assert.Equal(keys, await store.ListAsync(Prefix + "many/", Cancel));

        await store.DeletePrefixAsync(Prefix, Cancel);
        Assert.Empty(await store.ListAsync(Prefix, Cancel));
    }

    [Fact]
    public async Task A_copy_of_a_missing_object_is_a_file_not_found()
    {
        var store = Store();

        var missing = await Assert.ThrowsAsync<FileNotFoundException>(() => store.LocalCopyAsync(Prefix + "nothing.bin", Cancel));

        Assert.Contains(Prefix + "nothing.bin", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_readers_of_one_object_get_the_same_whole_copy()
    {
        var store = Store();
        var key = Prefix + "shared.bin";
        await store.PutAsync(key, new GeneratedStream(3 * MiB, seed: 5), Cancel);

        var copies = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => store.LocalCopyAsync(key, Cancel), Cancel)));

        Assert.Single(copies.Distinct());
        Assert.Equal(GeneratedStream.Hash(3 * MiB, seed: 5), await HashFileAsync(copies[0]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/sources/1/a.bin")]
    [InlineData("sources/../../etc/passwd")]
    [InlineData("sources/./a.bin")]
    [InlineData("sources//a.bin")]
    [InlineData("Sources/1/a.bin")]
    [InlineData("sources/1/a b.bin")]
    [InlineData("sources\\1\\a.bin")]
    public async Task Keys_outside_the_store_are_refused(string key)
    {
        var store = Store();

        await Assert.ThrowsAsync<ArgumentException>(() => store.PutAsync(key, new MemoryStream([1]), Cancel));
        await Assert.ThrowsAsync<ArgumentException>(() => store.LocalCopyAsync(key, Cancel));
        await Assert.ThrowsAsync<ArgumentException>(() => store.DeletePrefixAsync(key, Cancel));
        await Assert.ThrowsAsync<ArgumentException>(() => store.ListAsync(key, Cancel));
        Assert.False(Directory.Exists(Options.Directory) && Directory.EnumerateFiles(Options.Directory, "*", SearchOption.AllDirectories).Any());
    }

    protected abstract IFileStore Store();

    /// <summary>Whether the store keeps local copies of its objects (a remote store), or its objects are their own.</summary>
    protected virtual bool KeepsCopies => false;

    private async Task AssertNothingStoredAsync(IFileStore store, string key)
    {
        Assert.Empty(await store.ListAsync(Prefix, Cancel));
        await Assert.ThrowsAsync<FileNotFoundException>(() => store.LocalCopyAsync(key, Cancel));
        await AssertNoUnfinishedUploadAsync(key);
    }

    /// <summary>Checks, where the store has such a thing, that no unfinished upload is left under <paramref name="key"/>.</summary>
    protected abstract Task AssertNoUnfinishedUploadAsync(string key);

    protected static async Task<string> HashFileAsync(string path)
    {
        await using var file = File.OpenRead(path);
        return Convert.ToHexString(await SHA256.HashDataAsync(file, Cancel));
    }

    /// <summary>
    /// Deterministic bytes of a given length, read like a request body: not seekable, no length,
    /// short reads; optionally failing or cancelling once a number of bytes has been read.
    /// </summary>
    protected sealed class GeneratedStream(long length, int seed) : Stream
    {
        public const string FailureMessage = "The client went away.";

        private readonly Random random = new(seed);
        private long position;

        public long? FailAfter { get; init; }

        public (long Bytes, CancellationTokenSource Source)? CancelAfter { get; init; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public static string Hash(long length, int seed)
        {
            using var stream = new GeneratedStream(length, seed);
            return Convert.ToHexString(SHA256.HashData(stream));
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (position >= FailAfter)
            {
                throw new IOException(FailureMessage);
            }

            if (CancelAfter is { } cancel && position >= cancel.Bytes)
            {
                cancel.Source.Cancel();
            }

            // At most 64 KiB at a time, as a request body arrives.
            var count = (int)Math.Min(Math.Min(buffer.Length, 64 * 1024), length - position);
            random.NextBytes(buffer[..count]);
            position += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var count = Read(buffer.Span);
            cancellationToken.ThrowIfCancellationRequested();
            return ValueTask.FromResult(count);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

public sealed class LocalFileStoreTests : FileStoreContract
{
    protected override IFileStore Store() => new LocalFileStore(Microsoft.Extensions.Options.Options.Create(Options));

    protected override Task AssertNoUnfinishedUploadAsync(string key)
    {
        // The local store's unfinished object is its temporary file beside the key.
        var folder = Path.GetDirectoryName(Path.Combine(Options.Directory, "store", key))!;
        Assert.False(Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any());
        return Task.CompletedTask;
    }
}

/// <summary>
/// The S3 store against a real S3-compatible server (<c>CARAVAN_TEST_S3_*</c>; ./test.sh starts
/// s3rver), with every request the client sends recorded.
/// </summary>
public sealed class S3FileStoreTests : FileStoreContract
{
    private readonly RecordingHttpClientFactory requests = new();
    private readonly List<S3FileStore> stores = [];

    public S3FileStoreTests()
    {
        Options.Store = "S3";
        Options.S3 = S3Kit.Options();
    }

    public override void Dispose()
    {
        foreach (var store in stores)
        {
            store.Dispose();
        }

        base.Dispose();
    }

    [Fact]
    public async Task A_large_object_goes_up_in_parts_and_a_small_one_in_one_request()
    {
        var store = Store();

        await store.PutAsync(Prefix + "big.bin", new GeneratedStream(20 * 1024 * 1024, seed: 6), Cancel);
        await store.PutAsync(Prefix + "small.bin", new GeneratedStream(1000, seed: 7), Cancel);

        Assert.Equal(3, requests.Count("PUT", Prefix + "big.bin", "partNumber="));
        Assert.Equal(1, requests.Count("POST", Prefix + "big.bin", "uploadId="));
        Assert.Equal(1, requests.Count("PUT", Prefix + "small.bin"));
        Assert.Equal(0, requests.Count("POST", Prefix + "small.bin", "uploads"));
    }

    [Fact]
    public async Task Concurrent_readers_share_one_download_and_later_ones_reuse_the_copy()
    {
        var store = Store();
        var key = Prefix + "once.bin";
        await store.PutAsync(key, new GeneratedStream(6 * 1024 * 1024, seed: 8), Cancel);

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => store.LocalCopyAsync(key, Cancel), Cancel)));
        var again = await store.LocalCopyAsync(key, Cancel);

        Assert.Equal(1, requests.Count("GET", key));
        Assert.StartsWith(Path.Combine(Path.GetFullPath(Options.Directory), "cache") + Path.DirectorySeparatorChar, again, StringComparison.Ordinal);
        Assert.Equal([again], Directory.EnumerateFiles(Path.GetDirectoryName(again)!));
    }

    [Fact]
    public async Task A_refused_request_does_not_carry_the_secret_key_into_its_error()
    {
        Assert.SkipWhen(S3Kit.Missing, S3Kit.NoServer);

        // Keys the server does not know (s3rver checks the key id, not version 4 signatures).
        var secret = Unique.Secret("s3-secret-");
        Options.S3.AccessKey = Unique.Name("NOSUCHKEY");
        Options.S3.SecretKey = secret;
        using var store = new S3FileStore(Microsoft.Extensions.Options.Options.Create(Options), NullLogger<S3FileStore>.Instance);

        var refused = await Assert.ThrowsAsync<AmazonS3Exception>(() => store.PutAsync(Prefix + "x.bin", new MemoryStream([1]), Cancel));

        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.DoesNotContain(secret, refused.ToString(), StringComparison.Ordinal);
    }

    protected override bool KeepsCopies => true;

    protected override IFileStore Store()
    {
        Assert.SkipWhen(S3Kit.Missing, S3Kit.NoServer);
        var store = new S3FileStore(Options, NullLogger.Instance, config => config.HttpClientFactory = requests);
        stores.Add(store);
        return store;
    }

    protected override async Task AssertNoUnfinishedUploadAsync(string key)
    {
        // Every multipart upload begun under the key was aborted ...
        var begun = requests.Count("POST", key, "uploads");
        Assert.True(begun > 0, "The put never began a multipart upload: the test did not reach the part it checks.");
        Assert.Equal(begun, requests.Count("DELETE", key, "uploadId="));

        // ... and, where the server lists unfinished uploads (s3rver does not), none is left.
        using var client = S3Kit.Client();
        try
        {
            var uploads = await client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = Options.S3.Bucket, Prefix = key }, Cancel);
            Assert.Empty(uploads.MultipartUploads ?? []);
        }
        catch (AmazonS3Exception exception) when (exception.ErrorCode == "NotImplemented")
        {
        }
    }

    /// <summary>Hands the SDK clients whose every request is recorded (method and path with query).</summary>
    private sealed class RecordingHttpClientFactory : HttpClientFactory
    {
        private readonly ConcurrentQueue<(string Method, string PathAndQuery)> sent = new();

        public int Count(string method, string key, string? query = null) => sent.Count(request =>
            request.Method == method
            && Uri.UnescapeDataString(request.PathAndQuery.Split('?')[0]).EndsWith("/" + key, StringComparison.Ordinal)
            && (query is null ? !request.PathAndQuery.Contains('?', StringComparison.Ordinal) : request.PathAndQuery.Contains(query, StringComparison.Ordinal)));

        public override HttpClient CreateHttpClient(IClientConfig clientConfig) => new(new Recorder(sent, new SocketsHttpHandler()));

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        private sealed class Recorder(ConcurrentQueue<(string, string)> sent, HttpMessageHandler inner) : DelegatingHandler(inner)
        {
            protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                sent.Enqueue((request.Method.Method, request.RequestUri!.PathAndQuery));
                return base.SendAsync(request, cancellationToken);
            }
        }
    }
}

/// <summary>The store <c>Caravan__Files__Store</c> names, and the settings it refuses to start without.</summary>
public sealed class FileStoreSettingsTests
{
    [Theory]
    [InlineData("Local", typeof(LocalFileStore))]
    [InlineData("local", typeof(LocalFileStore))]
    [InlineData("S3", typeof(S3FileStore))]
    [InlineData("s3", typeof(S3FileStore))]
    public void The_setting_picks_the_store_whatever_its_case(string setting, Type expected)
    {
        var options = new FilesOptions { Store = setting, S3 = { Bucket = "b", AccessKey = "a", SecretKey = "s" } };

        var store = FileStores.Create(Microsoft.Extensions.Options.Options.Create(options), NullLoggerFactory.Instance);

        Assert.IsType(expected, store);
        (store as IDisposable)?.Dispose();
    }

    [Theory]
    [InlineData(null, "a", "s", "Caravan__Files__S3__Bucket")]
    [InlineData("b", null, "s", "Caravan__Files__S3__AccessKey")]
    [InlineData("b", "a", " ", "Caravan__Files__S3__SecretKey")]
    [InlineData(null, null, null, "Caravan__Files__S3__Bucket, Caravan__Files__S3__AccessKey, Caravan__Files__S3__SecretKey")]
    public void S3_without_a_bucket_or_keys_stops_the_start_naming_what_to_set(string? bucket, string? accessKey, string? secretKey, string named)
    {
        var options = new FilesOptions { Store = "S3", S3 = { Bucket = bucket, AccessKey = accessKey, SecretKey = secretKey } };

        var failure = Assert.Throws<StartupFailureException>(() => FileStores.Create(Microsoft.Extensions.Options.Options.Create(options), NullLoggerFactory.Instance));

        Assert.Equal($"Caravan__Files__Store=S3 needs {named}.", failure.Message);
    }

    [Fact]
    public void A_bad_endpoint_or_an_unknown_store_stops_the_start_without_echoing_the_secret()
    {
        var secret = Unique.Secret("s3-secret-");
        var endpoint = new FilesOptions { Store = "S3", S3 = { Endpoint = "s3.example.com:9000", Bucket = "b", AccessKey = "a", SecretKey = secret } };
        var unknown = new FilesOptions { Store = "Azure", S3 = { SecretKey = secret } };

        var badEndpoint = Assert.Throws<StartupFailureException>(() => FileStores.Create(Microsoft.Extensions.Options.Options.Create(endpoint), NullLoggerFactory.Instance));
        var badStore = Assert.Throws<StartupFailureException>(() => FileStores.Create(Microsoft.Extensions.Options.Options.Create(unknown), NullLoggerFactory.Instance));

        Assert.StartsWith("Caravan__Files__S3__Endpoint must be an http or https URL", badEndpoint.Message, StringComparison.Ordinal);
        Assert.Equal("Caravan__Files__Store must be Local or S3, not \"Azure\".", badStore.Message);
        Assert.DoesNotContain(secret, badEndpoint.Message + badStore.Message, StringComparison.Ordinal);
    }
}
