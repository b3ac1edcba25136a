using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Caravan.Api.Secrets;

/// <summary>
/// Encrypts secrets with AES-256-GCM under the current master key. Each ciphertext is bound to its
/// source id and field name through the associated data, so a value copied to another source or
/// field fails to decrypt instead of leaking there. Thread-safe: the ring is immutable and every
/// call uses its own <see cref="AesGcm"/>.
/// With a key file, the ring follows the file: when <c>secrets rotate</c> adds a key, a running
/// server encrypts with it from its next write and decrypts what was re-encrypted under it, so a
/// rotation needs no restart.
/// </summary>
public sealed class SecretProtector(MasterKeyRing initialRing)
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly Lock _reloadLock = new();
    private volatile MasterKeyRing _ring = initialRing;
    private DateTime _fileWrittenAt = KeyFileWrittenAt(initialRing);

    public string CurrentKeyId => CurrentRing().Current.KeyId;

    /// <summary>The ids of the keys in the ring, oldest first.</summary>
    public IReadOnlyList<string> KeyIds => [.. CurrentRing().Keys.Select(k => k.KeyId)];

    /// <summary>
    /// Re-reads the key file (a no-op when the keys come from configuration). Without
    /// <paramref name="force"/>, only when the file was written since it was last read.
    /// </summary>
    public void Reload(bool force)
    {
        var path = _ring.KeyFilePath;
        if (path is null)
        {
            return;
        }

        var writtenAt = File.GetLastWriteTimeUtc(path);
        if (!force && writtenAt == _fileWrittenAt)
        {
            return;
        }

        lock (_reloadLock)
        {
            _ring = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });
            _fileWrittenAt = writtenAt;
        }
    }

    // Encryption always uses the newest key in the file: one stat call per write keeps a server
    // from writing under a key that a rotation running beside it has just retired.
    private MasterKeyRing CurrentRing()
    {
        Reload(force: false);
        return _ring;
    }

    /// <summary>The newest master key, for keys derived from it (see <see cref="RequestMacs"/>).</summary>
    internal MasterKey CurrentKey => CurrentRing().Current;

    /// <summary>A key of the ring by id, re-reading the key file once when the id is not known yet.</summary>
    internal bool TryGetKey(string keyId, [NotNullWhen(true)] out MasterKey? key)
    {
        if (_ring.TryGet(keyId, out key))
        {
            return true;
        }

        Reload(force: true);
        return _ring.TryGet(keyId, out key);
    }

    private static DateTime KeyFileWrittenAt(MasterKeyRing ring) =>
        ring.KeyFilePath is null ? default : File.GetLastWriteTimeUtc(ring.KeyFilePath);

    public StoredSecret Protect(long sourceId, string field, string plaintext)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(plaintext);
        return Seal(AssociatedData(sourceId, field), plaintext);
    }

    /// <exception cref="SecretDecryptionException">The key is unknown, the data is malformed, or it does not authenticate for this source and field.</exception>
    public string Unprotect(long sourceId, string field, StoredSecret secret)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(secret);
        return Open(AssociatedData(sourceId, field), secret, "for this source and field",
            (failure, reason, inner) => new SecretDecryptionException(sourceId, field, failure, reason, inner));
    }

    /// <summary>
    /// Encrypts a key the server holds for itself (such as the fingerprint key), bound to its name
    /// through associated data of its own, so it can never be mistaken for a source's secret.
    /// </summary>
    public StoredSecret ProtectServerKey(string name, string plaintext)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(plaintext);
        return Seal(ServerKeyAssociatedData(name), plaintext);
    }

    /// <exception cref="SecretDecryptionException">The key is unknown, the data is malformed, or it was not encrypted as this server key.</exception>
    public string UnprotectServerKey(string name, StoredSecret secret)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(secret);
        return Open(ServerKeyAssociatedData(name), secret, "as this server key",
            (failure, reason, inner) => SecretDecryptionException.ForServerKey(name, failure, reason, inner));
    }

    private StoredSecret Seal(byte[] associatedData, string plaintext)
    {
        var key = CurrentRing().Current;
        var input = Encoding.UTF8.GetBytes(plaintext);
        var output = new byte[NonceSize + input.Length + TagSize];
        try
        {
            var nonce = output.AsSpan(0, NonceSize);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(key.Material, TagSize);
            aes.Encrypt(nonce, input, output.AsSpan(NonceSize, input.Length), output.AsSpan(NonceSize + input.Length), associatedData);
            return new StoredSecret(key.KeyId, Convert.ToBase64String(output));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(input);
        }
    }

    private string Open(
        byte[] associatedData, StoredSecret secret, string boundTo, Func<SecretDecryptionFailure, string, Exception?, SecretDecryptionException> failed)
    {
        var ring = _ring;
        if (secret.KeyId is not null && !ring.TryGet(secret.KeyId, out _) && ring.KeyFilePath is not null)
        {
            // Perhaps written by a process that has already seen a key this one has not read yet.
            Reload(force: true);
            ring = _ring;
        }

        if (secret.KeyId is null || !ring.TryGet(secret.KeyId, out var key))
        {
            // Echo the id only when it looks like one: it is public, but the stored value may be anything.
            var which = IsWellFormedKeyId(secret.KeyId) ? $"the master key {secret.KeyId}" : "the master key it names";
            throw failed(SecretDecryptionFailure.UnknownKey, $"{which} is not configured", null);
        }

        var data = Decode(secret.Ciphertext);
        if (data is null || data.Length < NonceSize + TagSize)
        {
            throw failed(SecretDecryptionFailure.Malformed, "it is not a well-formed encrypted value", null);
        }

        var plaintext = new byte[data.Length - NonceSize - TagSize];
        try
        {
            using var aes = new AesGcm(key.Material, TagSize);
            aes.Decrypt(
                data.AsSpan(0, NonceSize), data.AsSpan(NonceSize, plaintext.Length), data.AsSpan(NonceSize + plaintext.Length),
                plaintext, associatedData);
            return Encoding.UTF8.GetString(plaintext);
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw failed(SecretDecryptionFailure.NotAuthentic, $"it was not encrypted {boundTo}, or it was altered", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>True when the secret is not under the current key and should be re-encrypted.</summary>
    public bool NeedsRotation(StoredSecret secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        return !string.Equals(secret.KeyId, CurrentKeyId, StringComparison.Ordinal);
    }

    private static byte[] AssociatedData(long sourceId, string field) =>
        Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"caravan:source:{sourceId}:{field}"));

    private static byte[] ServerKeyAssociatedData(string name) => Encoding.UTF8.GetBytes($"caravan:server:{name}");

    private static byte[]? Decode(string? base64)
    {
        if (base64 is null)
        {
            return null;
        }

        var buffer = new byte[base64.Length / 4 * 3];
        return Convert.TryFromBase64String(base64, buffer, out var written) ? buffer[..written] : null;
    }

    private static bool IsWellFormedKeyId(string? keyId) =>
        keyId is { Length: 8 } && keyId.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');
}
