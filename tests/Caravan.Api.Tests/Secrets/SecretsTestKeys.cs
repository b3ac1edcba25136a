using System.Security.Cryptography;
using Caravan.Api.Secrets;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Secrets;

internal static class SecretsTestKeys
{
    /// <summary>Bytes 0..31; its id is pinned in a test so the derivation cannot drift.</summary>
    public const string Sequential = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    public const string SequentialId = "cdbb7881";

    public static string NewBase64Key() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public static SecretProtector Protector(string masterKey, string? previousMasterKeys = null) =>
        new(MasterKeyRing.Load(new SecretsOptions { MasterKey = masterKey, PreviousMasterKeys = previousMasterKeys }));
}

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), Unique.Name("caravan-secrets-tests-"));

    public string File(string relative) => System.IO.Path.Combine(Path, relative);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
