using Caravan.Api.Secrets;

namespace Caravan.Api.Tests.Secrets;

/// <summary>
/// Server keys (the fingerprint key) are encrypted like secrets but with associated data of their
/// own, so neither kind of ciphertext can be passed off as the other.
/// </summary>
public class ServerKeyProtectionTests
{
    private readonly SecretProtector _protector = SecretsTestKeys.Protector(SecretsTestKeys.NewBase64Key());

    [Fact]
    public void Round_trips_under_the_current_key()
    {
        var stored = _protector.ProtectServerKey("fingerprint", "key material");

        Assert.Equal(_protector.CurrentKeyId, stored.KeyId);
        Assert.Equal("key material", _protector.UnprotectServerKey("fingerprint", stored));
    }

    [Fact]
    public void A_server_key_is_not_a_sources_secret_nor_another_server_key()
    {
        var stored = _protector.ProtectServerKey("fingerprint", "key material");

        Assert.Equal(SecretDecryptionFailure.NotAuthentic,
            Assert.Throws<SecretDecryptionException>(() => _protector.Unprotect(0, "fingerprint", stored)).Failure);
        var other = Assert.Throws<SecretDecryptionException>(() => _protector.UnprotectServerKey("other", stored));
        Assert.Equal("The server's other key could not be decrypted: it was not encrypted as this server key, or it was altered.", other.Message);
    }

    [Fact]
    public void A_sources_secret_is_not_a_server_key()
    {
        var stored = _protector.Protect(1, "fingerprint", "password");

        Assert.Equal(SecretDecryptionFailure.NotAuthentic,
            Assert.Throws<SecretDecryptionException>(() => _protector.UnprotectServerKey("fingerprint", stored)).Failure);
    }

    [Fact]
    public void The_fingerprint_depends_on_key_source_field_and_value()
    {
        var key = new byte[32];
        var otherKey = new byte[32];
        otherKey[0] = 1;
        var fingerprint = SecretFingerprint.Compute(key, 7, "password", "hunter2");

        Assert.Matches("^[0-9a-f]{8}$", fingerprint);
        Assert.Equal(fingerprint, SecretFingerprint.Compute(key, 7, "password", "hunter2"));
        Assert.NotEqual(fingerprint, SecretFingerprint.Compute(otherKey, 7, "password", "hunter2"));
        Assert.NotEqual(fingerprint, SecretFingerprint.Compute(key, 8, "password", "hunter2"));
        Assert.NotEqual(fingerprint, SecretFingerprint.Compute(key, 7, "token", "hunter2"));
        Assert.NotEqual(fingerprint, SecretFingerprint.Compute(key, 7, "password", "hunter3"));
    }
}
