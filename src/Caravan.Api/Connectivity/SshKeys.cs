using System.Text;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace Caravan.Api.Connectivity;

/// <summary>Private keys of SSH tunnels: OpenSSH or PEM, Ed25519, ECDSA or RSA, encrypted with a passphrase or not.</summary>
public static class SshKeys
{
    /// <summary>Opens a private key; throws <see cref="SshException"/> (or a format exception) when it cannot.</summary>
    public static PrivateKeyFile Open(string key, string? passphrase) =>
        new(new MemoryStream(Encoding.UTF8.GetBytes(key)), string.IsNullOrEmpty(passphrase) ? null : passphrase);

    /// <summary>
    /// Why a private key (with its passphrase) cannot be used, as the member to blame and a message
    /// that repeats neither; null when it opens and is of a kind Caravan uses.
    /// </summary>
    public static (string Member, string Message)? Check(string key, string? passphrase)
    {
        if (key.Contains("BEGIN DSA PRIVATE KEY", StringComparison.Ordinal) || OpenSshHead(key).Contains("ssh-dss", StringComparison.Ordinal))
        {
            return ("private_key", "DSA keys are not accepted: use an Ed25519, ECDSA or RSA key.");
        }

        try
        {
            using var file = Open(key, passphrase);
            return null;
        }
        catch (SshPassPhraseNullOrEmptyException)
        {
            return ("private_key_passphrase", "The private key is encrypted: send its private_key_passphrase.");
        }
        catch (Exception e) when (passphrase is not null && IsEncrypted(key) && e is SshException or System.Security.Cryptography.CryptographicException or ArgumentException or InvalidOperationException or FormatException)
        {
            return ("private_key_passphrase", "This passphrase does not open the private key.");
        }
        catch (Exception e) when (e is SshException or System.Security.Cryptography.CryptographicException or ArgumentException or InvalidOperationException or FormatException or NotSupportedException or IndexOutOfRangeException)
        {
            // The library's message may quote the key: it is not repeated.
            return ("private_key", "Not a private key Caravan can read: send an OpenSSH or PEM private key (Ed25519, ECDSA or RSA).");
        }
    }

    // PEM keys say so in a header; OpenSSH keys name their cipher ("none" when unencrypted) inside the base64 body.
    private static bool IsEncrypted(string key) =>
        key.Contains("ENCRYPTED", StringComparison.Ordinal)
        || (OpenSshHead(key) is { Length: > 0 } head && !head.Contains("\0\0\0\u0004none", StringComparison.Ordinal));

    /// <summary>The start of an OpenSSH key's body (its cipher, and the type of its public key, which is not encrypted); empty for other keys.</summary>
    private static string OpenSshHead(string key)
    {
        var body = Connectors.Field.PemBody(key);
        var bytes = new byte[body.Length];
        if (!Convert.TryFromBase64String(body, bytes, out var written))
        {
            return string.Empty;
        }

        var head = Encoding.ASCII.GetString(bytes, 0, Math.Min(written, 128));
        return head.StartsWith("openssh-key-v1\0", StringComparison.Ordinal) ? head : string.Empty;
    }
}
