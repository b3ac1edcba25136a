using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Caravan.Api.Connectors.Files;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// The S3-compatible server the tests may use (<c>CARAVAN_TEST_S3_*</c>; ./test.sh starts s3rver
/// and sets them): the settings that put a Caravan's files in its bucket, and a client of the
/// test's own to look into the bucket behind Caravan's back.
/// </summary>
internal static class S3Kit
{
    public const string NoServer = "No S3-compatible server configured: set CARAVAN_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY (./test.sh starts s3rver).";

    public static string? Endpoint { get; } = Environment.GetEnvironmentVariable("CARAVAN_TEST_S3_ENDPOINT");

    public static string? Bucket { get; } = Environment.GetEnvironmentVariable("CARAVAN_TEST_S3_BUCKET");

    public static string? AccessKey { get; } = Environment.GetEnvironmentVariable("CARAVAN_TEST_S3_ACCESS_KEY");

    public static string? SecretKey { get; } = Environment.GetEnvironmentVariable("CARAVAN_TEST_S3_SECRET_KEY");

    public static bool Missing => string.IsNullOrEmpty(Endpoint) || string.IsNullOrEmpty(Bucket) || string.IsNullOrEmpty(AccessKey) || string.IsNullOrEmpty(SecretKey);

    /// <summary>The server's settings as <see cref="FilesOptions.S3"/> holds them.</summary>
    public static FilesOptions.S3Settings Options() => new() { Endpoint = Endpoint, Bucket = Bucket, AccessKey = AccessKey, SecretKey = SecretKey };

    /// <summary>The configuration keys that make a Caravan keep its files in the test bucket.</summary>
    public static Dictionary<string, string?> StoreSettings() => new()
    {
        ["Caravan:Files:Store"] = "S3",
        ["Caravan:Files:S3:Endpoint"] = Endpoint,
        ["Caravan:Files:S3:Bucket"] = Bucket,
        ["Caravan:Files:S3:AccessKey"] = AccessKey,
        ["Caravan:Files:S3:SecretKey"] = SecretKey,
    };

    public static AmazonS3Client Client() => new(
        new BasicAWSCredentials(AccessKey, SecretKey),
        new AmazonS3Config { ServiceURL = Endpoint, ForcePathStyle = true, AuthenticationRegion = new FilesOptions.S3Settings().Region });

    /// <summary>Every key in the bucket under <paramref name="prefix"/>.</summary>
    public static async Task<List<string>> ListAsync(AmazonS3Client client, string prefix)
    {
        var request = new ListObjectsV2Request { BucketName = Bucket, Prefix = prefix };
        var keys = new List<string>();
        do
        {
            var page = await client.ListObjectsV2Async(request, TestContext.Current.CancellationToken);
            keys.AddRange(page.S3Objects?.Select(o => o.Key) ?? []);
            request.ContinuationToken = page.NextContinuationToken;
        }
        while (request.ContinuationToken is not null);

        return keys;
    }

    /// <summary>Downloads each object to a file of its own under <paramref name="folder"/>, as the bucket holds it.</summary>
    public static async Task DownloadAsync(AmazonS3Client client, IEnumerable<string> keys, string folder)
    {
        foreach (var key in keys)
        {
            using var response = await client.GetObjectAsync(Bucket, key, TestContext.Current.CancellationToken);
            var path = Path.Combine(folder, key.Replace('/', '_'));
            Directory.CreateDirectory(folder);
            await using var file = File.Create(path);
            await response.ResponseStream.CopyToAsync(file, TestContext.Current.CancellationToken);
        }
    }
}
