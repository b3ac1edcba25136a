using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Caravan.Api.Secrets;

/// <summary>One 256-bit master key and its public id. The key bytes never leave the assembly.</summary>
public sealed class MasterKey
{
    public const int SizeInBytes = 32;

    private static readonly byte[] IdPrefix = Encoding.ASCII.GetBytes("caravan-master-key-id:");

    private readonly byte[] _material;

    internal MasterKey(ReadOnlySpan<byte> material)
    {
        if (material.Length != SizeInBytes)
        {
            throw new ArgumentException($"A master key is exactly {SizeInBytes} bytes.", nameof(material));
        }

        _material = material.ToArray();
        KeyId = ComputeId(_material);
    }

    /// <summary>8 lowercase hex characters derived from the key itself, so it does not depend on how the key was supplied.</summary>
    public string KeyId { get; }

    internal ReadOnlySpan<byte> Material => _material;

    internal static MasterKey Generate()
    {
        Span<byte> material = stackalloc byte[SizeInBytes];
        RandomNumberGenerator.Fill(material);
        try
        {
            return new MasterKey(material);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(material);
        }
    }

    /// <summary>Decodes one base64 key; false when it is not base64 or not exactly 32 bytes.</summary>
    internal static bool TryParse(string base64, [NotNullWhen(true)] out MasterKey? key)
    {
        key = null;
        var text = base64.Trim();

        // Room for any valid input, so a wrong length is reported as such rather than as bad base64.
        var buffer = new byte[(text.Length / 4 * 3) + 3];
        try
        {
            if (!Convert.TryFromBase64String(text, buffer, out var written) || written != SizeInBytes)
            {
                return false;
            }

            key = new MasterKey(buffer.AsSpan(0, written));
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }

    internal string ToBase64() => Convert.ToBase64String(_material);

    public override string ToString() => KeyId;

    private static string ComputeId(ReadOnlySpan<byte> material)
    {
        Span<byte> input = stackalloc byte[IdPrefix.Length + SizeInBytes];
        IdPrefix.CopyTo(input);
        material.CopyTo(input[IdPrefix.Length..]);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(input, hash);
        CryptographicOperations.ZeroMemory(input);
        return Convert.ToHexStringLower(hash[..4]);
    }
}
