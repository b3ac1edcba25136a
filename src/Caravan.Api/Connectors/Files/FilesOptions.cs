namespace Caravan.Api.Connectors.Files;

/// <summary>FILE sources' settings (<c>Caravan__Files__*</c>).</summary>
public sealed class FilesOptions
{
    public const string Section = "Caravan:Files";

    /// <summary><c>Local</c> (a folder of this machine) or <c>S3</c> (any S3-compatible object store, which several replicas share).</summary>
    public string Store { get; set; } = "Local";

    /// <summary>The local store's folder, and every replica's working folder (conversions, copies of remote objects).</summary>
    public string Directory { get; set; } = "data/files";

    /// <summary>The largest file accepted, counted while it streams (10 GiB).</summary>
    public long MaxFileBytes { get; set; } = 10L * 1024 * 1024 * 1024;

    public int MaxFilesPerSource { get; set; } = 100;

    /// <summary>
    /// The longest one file's conversion may take (2 hours; a 2 GiB CSV takes under 2 minutes): a
    /// conversion that runs longer is stopped and its file marked failed, so that no file can
    /// hold the replica's conversions for ever.
    /// </summary>
    public TimeSpan ConversionTimeout { get; set; } = TimeSpan.FromHours(2);

    /// <summary>Comma-separated CIDR ranges that URL imports may reach although they are loopback, private, link-local or metadata addresses.</summary>
    public string? UrlAllow { get; set; }

    public S3Settings S3 { get; set; } = new();

    public sealed class S3Settings
    {
        /// <summary>The service URL, such as <c>https://s3.eu-west-1.amazonaws.com</c> or <c>http://127.0.0.1:9000</c>; empty means AWS's own for the region.</summary>
        public string? Endpoint { get; set; }

        public string? Bucket { get; set; }

        public string Region { get; set; } = "us-east-1";

        public string? AccessKey { get; set; }

        public string? SecretKey { get; set; }

        /// <summary>Addresses objects as <c>endpoint/bucket/key</c> (most S3-compatible stores) rather than <c>bucket.endpoint/key</c>.</summary>
        public bool ForcePathStyle { get; set; } = true;
    }
}
