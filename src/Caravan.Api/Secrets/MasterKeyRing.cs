using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Caravan.Api.Secrets;

/// <summary>
/// The master keys Caravan knows, oldest first. New secrets are encrypted under <see cref="Current"/>;
/// the older keys stay so that secrets written under them can still be read until they are re-encrypted.
/// </summary>
public sealed class MasterKeyRing
{
    private const string GenerateHint = "generate one with: openssl rand -base64 32";

    private readonly Dictionary<string, MasterKey> _byId;

    private MasterKeyRing(List<MasterKey> oldestFirst, string? keyFilePath, bool keyFileCreated, bool keyFileModeTooOpen)
    {
        _byId = new Dictionary<string, MasterKey>(StringComparer.Ordinal);
        var keys = new List<MasterKey>(oldestFirst.Count);
        foreach (var key in oldestFirst)
        {
            if (_byId.TryGetValue(key.KeyId, out var known))
            {
                // The same key listed twice is harmless (e.g. the current key also among the previous
                // ones); it keeps its newest position. Two different keys with one id would make
                // decryption ambiguous, which a 32-bit id makes unlikely but not impossible.
                if (!CryptographicOperations.FixedTimeEquals(known.Material, key.Material))
                {
                    throw new SecretsConfigurationException(
                        $"Two different master keys share the id {key.KeyId}: replace the newer one with a freshly generated key ({GenerateHint}).");
                }

                keys.Remove(known);
            }

            _byId[key.KeyId] = key;
            keys.Add(key);
        }

        if (keys.Count == 0)
        {
            throw new SecretsConfigurationException("No master key is configured: set Caravan:Secrets:MasterKey or Caravan:Secrets:MasterKeyFile.");
        }

        Keys = keys.AsReadOnly();
        KeyFilePath = keyFilePath;
        KeyFileCreated = keyFileCreated;
        KeyFileModeTooOpen = keyFileModeTooOpen;
    }

    /// <summary>Every known key, oldest first; the last one is <see cref="Current"/>.</summary>
    public IReadOnlyList<MasterKey> Keys { get; }

    public MasterKey Current => Keys[^1];

    /// <summary>The full path of the key file the ring came from, or null when it came from configuration.</summary>
    public string? KeyFilePath { get; }

    /// <summary>True when the key file did not exist and a new key was generated: worth telling the operator to back it up.</summary>
    public bool KeyFileCreated { get; }

    /// <summary>True when the key file is readable or writable by group or others: allowed, but worth a warning.</summary>
    public bool KeyFileModeTooOpen { get; }

    public bool TryGet(string keyId, [NotNullWhen(true)] out MasterKey? key) => _byId.TryGetValue(keyId, out key);

    /// <summary>
    /// Builds the ring from <see cref="SecretsOptions.MasterKey"/> (plus <see cref="SecretsOptions.PreviousMasterKeys"/>)
    /// when it is set, otherwise from the key file, which is created with a fresh key if it is missing.
    /// </summary>
    /// <exception cref="SecretsConfigurationException">The configuration or the key file cannot be used.</exception>
    public static MasterKeyRing Load(SecretsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);

        if (!string.IsNullOrWhiteSpace(options.MasterKey))
        {
            return FromConfiguration(options.MasterKey, options.PreviousMasterKeys);
        }

        if (!string.IsNullOrWhiteSpace(options.PreviousMasterKeys))
        {
            throw new SecretsConfigurationException(
                "Caravan:Secrets:PreviousMasterKeys is only used together with Caravan:Secrets:MasterKey: "
                + "set Caravan:Secrets:MasterKey to the current key, or list the older keys in the master key file instead.");
        }

        if (string.IsNullOrWhiteSpace(options.MasterKeyFile))
        {
            throw new SecretsConfigurationException(
                $"Caravan:Secrets:MasterKeyFile must not be empty: set it to a file path (default {SecretsOptions.DefaultMasterKeyFile}) or set Caravan:Secrets:MasterKey.");
        }

        var file = MasterKeyFile.ReadOrCreate(options.MasterKeyFile);
        return new MasterKeyRing([.. file.Keys], file.Path, file.Created, file.ModeTooOpen);
    }

    private static MasterKeyRing FromConfiguration(string masterKey, string? previousMasterKeys)
    {
        if (!MasterKey.TryParse(masterKey, out var current))
        {
            throw new SecretsConfigurationException(
                $"Caravan:Secrets:MasterKey must be the base64 encoding of exactly 32 bytes ({GenerateHint}).");
        }

        var keys = new List<MasterKey>();
        var entries = (previousMasterKeys ?? string.Empty).Split(',');
        for (var i = 0; i < entries.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(entries[i]))
            {
                continue;
            }

            if (!MasterKey.TryParse(entries[i], out var previous))
            {
                throw new SecretsConfigurationException(
                    $"Entry {i + 1} of Caravan:Secrets:PreviousMasterKeys must be the base64 encoding of exactly 32 bytes "
                    + "(the setting is a comma-separated list of the older master keys).");
            }

            keys.Add(previous);
        }

        keys.Add(current);
        return new MasterKeyRing(keys, keyFilePath: null, keyFileCreated: false, keyFileModeTooOpen: false);
    }
}
