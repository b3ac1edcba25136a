namespace Caravan.Api.Secrets;

/// <summary>
/// The master key configuration cannot be used. The message says what to set or fix and never
/// contains key material.
/// </summary>
public sealed class SecretsConfigurationException : InvalidOperationException
{
    public SecretsConfigurationException(string message)
        : base(message)
    {
    }

    public SecretsConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

public enum SecretDecryptionFailure
{
    /// <summary>The secret names a master key that is not in the ring.</summary>
    UnknownKey,

    /// <summary>The stored value is not base64 or is too short to hold a nonce and a tag.</summary>
    Malformed,

    /// <summary>The tag did not match: wrong source or field, or the data was altered.</summary>
    NotAuthentic,
}

/// <summary>
/// A stored secret could not be decrypted. The message names the source, the field and the reason,
/// never plaintext, ciphertext or key material.
/// </summary>
public sealed class SecretDecryptionException : Exception
{
    internal SecretDecryptionException(long sourceId, string field, SecretDecryptionFailure failure, string reason, Exception? innerException = null)
        : base($"The stored secret '{field}' of source {sourceId} could not be decrypted: {reason}.", innerException)
    {
        SourceId = sourceId;
        Field = field;
        Failure = failure;
    }

    private SecretDecryptionException(string message, string field, SecretDecryptionFailure failure, Exception? innerException)
        : base(message, innerException)
    {
        Field = field;
        Failure = failure;
    }

    /// <summary>The source the secret belongs to; 0 for a key the server holds for itself.</summary>
    public long SourceId { get; }

    public string Field { get; }

    public SecretDecryptionFailure Failure { get; }

    internal static SecretDecryptionException ForServerKey(string name, SecretDecryptionFailure failure, string reason, Exception? innerException) =>
        new($"The server's {name} key could not be decrypted: {reason}.", "server:" + name, failure, innerException);
}
