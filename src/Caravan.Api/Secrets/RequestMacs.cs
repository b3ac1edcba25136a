using System.Security.Cryptography;
using System.Text;

namespace Caravan.Api.Secrets;

/// <summary>
/// HMAC-SHA256 of a request under a key derived (HKDF-SHA256) from a master key, to recognise a
/// request seen before without keeping anything from which its content could be guessed: the
/// bodies hold passwords, and a plain hash of one is a dictionary attack away from the password.
/// The MAC names the master key it was made under, so it can still be checked after a rotation,
/// for as long as that key stays in the ring.
/// </summary>
public sealed class RequestMacs(SecretProtector protector)
{
    // Binds the derived key to this one use: no other MAC or cipher of Caravan shares it.
    private static readonly byte[] Purpose = Encoding.ASCII.GetBytes("caravan:idempotency-request-mac:v1");

    /// <summary>The MAC of <paramref name="request"/> under the current master key, and that key's id.</summary>
    public (string KeyId, byte[] Mac) Compute(ReadOnlySpan<byte> request)
    {
        var key = protector.CurrentKey;
        return (key.KeyId, Mac(key, request));
    }

    /// <summary>
    /// Whether <paramref name="mac"/>, made under the master key <paramref name="keyId"/>, is the MAC
    /// of <paramref name="request"/>; null when that key is no longer in the ring, so nothing can be said.
    /// </summary>
    public bool? Matches(string keyId, ReadOnlySpan<byte> mac, ReadOnlySpan<byte> request)
    {
        if (!protector.TryGetKey(keyId, out var key))
        {
            return null;
        }

        return CryptographicOperations.FixedTimeEquals(Mac(key, request), mac);
    }

    private static byte[] Mac(MasterKey masterKey, ReadOnlySpan<byte> request)
    {
        Span<byte> derived = stackalloc byte[32];
        try
        {
            HKDF.DeriveKey(HashAlgorithmName.SHA256, masterKey.Material, derived, salt: [], Purpose);
            return HMACSHA256.HashData(derived, request);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(derived);
        }
    }
}
