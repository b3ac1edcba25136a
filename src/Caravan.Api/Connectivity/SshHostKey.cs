using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Caravan.Api.Connectivity;

/// <summary>
/// The pinned host key of an SSH bastion (contract section 10): a <c>SHA256:</c> fingerprint as
/// <c>ssh-keygen -lf</c> prints it, or an OpenSSH public key line as <c>ssh-keyscan</c> prints it.
/// There is no trust on first use: a key that is not pinned is never accepted.
/// </summary>
public static class SshHostKey
{
    public const string FingerprintPrefix = "SHA256:";

    private static readonly HashSet<string> KeyTypes = new(StringComparer.Ordinal)
    {
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
    };

    private const string Expected =
        "Send a SHA256: fingerprint (ssh-keyscan -p PORT HOST | ssh-keygen -lf -) or an OpenSSH public key line (ssh-ed25519 AAAA..., ecdsa-sha2-..., ssh-rsa ...).";

    /// <summary>Why <paramref name="text"/> is not a host key Caravan can pin, or null when it is one.</summary>
    public static string? Check(string text) => Fingerprint(text) is null ? Expected : null;

    /// <summary>The <c>SHA256:</c> fingerprint a pinned value stands for, or null when it is neither form.</summary>
    public static string? Fingerprint(string pinned)
    {
        if (pinned.StartsWith(FingerprintPrefix, StringComparison.Ordinal))
        {
            var digest = pinned[FingerprintPrefix.Length..].TrimEnd('=');
            return digest.Length == 43 && TryBase64(digest + "=", out var bytes) && bytes.Length == 32 ? FingerprintPrefix + digest : null;
        }

        var parts = pinned.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2 || !KeyTypes.Contains(parts[0]) || !TryBase64(parts[1], out var blob) || BlobType(blob) != parts[0])
        {
            return null;
        }

        return Of(blob);
    }

    /// <summary>The fingerprint of a public key blob, as <c>ssh-keygen -lf</c> prints it.</summary>
    public static string Of(ReadOnlySpan<byte> blob) => FingerprintPrefix + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');

    /// <summary>Whether the key the server presented (<paramref name="blob"/>) is the pinned one.</summary>
    public static bool Matches(string pinned, ReadOnlySpan<byte> blob) =>
        Fingerprint(pinned) is { } expected && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(Of(blob)));

    // The first field of a public key blob is its type, as an SSH string (a 32-bit length, then the bytes).
    private static string? BlobType(byte[] blob)
    {
        if (blob.Length < 4)
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(blob);
        return length <= 64 && blob.Length >= 4 + length ? Encoding.ASCII.GetString(blob, 4, (int)length) : null;
    }

    private static bool TryBase64(string text, out byte[] bytes)
    {
        bytes = new byte[text.Length];
        if (Convert.TryFromBase64String(text, bytes, out var written))
        {
            bytes = bytes[..written];
            return true;
        }

        return false;
    }
}
