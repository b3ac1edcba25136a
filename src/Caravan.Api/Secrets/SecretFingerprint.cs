using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Caravan.Api.Secrets;

/// <summary>
/// A stored secret's fingerprint: the first 8 hex characters of HMAC-SHA256, under the server's
/// fingerprint key, of the source id, the field name and the value. It tells a person whether a
/// secret changed without revealing it: a plain hash would let anyone holding the fingerprint test
/// guesses offline, and binding the source and field keeps equal passwords on two sources from
/// looking alike. It changes only when the value does (not on a master key rotation).
/// </summary>
public static class SecretFingerprint
{
    public const int Length = 8;

    public static string Compute(ReadOnlySpan<byte> key, long sourceId, string field, string value)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(value);

        // The id is digits and the field a name without ':', so this prefix cannot be confused with another.
        var prefix = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"caravan:fingerprint:v1:{sourceId}:{field}:"));
        var bytes = Encoding.UTF8.GetBytes(value);
        try
        {
            using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
            hmac.AppendData(prefix);
            hmac.AppendData(bytes);
            Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
            hmac.GetHashAndReset(mac);
            return Convert.ToHexStringLower(mac[..(Length / 2)]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}
