namespace Caravan.Api.Secrets;

/// <summary>Where the master keys that encrypt stored secrets come from (section <c>Caravan:Secrets</c>).</summary>
public sealed class SecretsOptions
{
    public const string Section = "Caravan:Secrets";

    public const string DefaultMasterKeyFile = "data/master.key";

    /// <summary>
    /// Base64 of exactly 32 bytes. When set, it is the current key and the key file is neither read
    /// nor created. Empty or whitespace counts as not set, like an unset environment variable.
    /// </summary>
    public string? MasterKey { get; set; }

    /// <summary>Comma-separated base64 keys that are still accepted for decryption; only used with <see cref="MasterKey"/>.</summary>
    public string? PreviousMasterKeys { get; set; }

    /// <summary>Used when <see cref="MasterKey"/> is not set; a relative path is resolved against the working directory.</summary>
    public string MasterKeyFile { get; set; } = DefaultMasterKeyFile;
}
