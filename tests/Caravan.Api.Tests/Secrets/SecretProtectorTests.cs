using System.Text;
using Caravan.Api.Secrets;

namespace Caravan.Api.Tests.Secrets;

public class SecretProtectorTests
{
    private const string Plaintext = "correct horse battery staple";

    private readonly string _key = SecretsTestKeys.NewBase64Key();

    [Theory]
    [InlineData("")]
    [InlineData(Plaintext)]
    [InlineData("pässwörd ✓ 🔑 with\nnewlines and \0 nulls")]
    public void Round_trips(string plaintext)
    {
        var protector = SecretsTestKeys.Protector(_key);

        var stored = protector.Protect(12, "password", plaintext);

        Assert.Equal(protector.CurrentKeyId, stored.KeyId);
        Assert.Equal(12 + Encoding.UTF8.GetByteCount(plaintext) + 16, Convert.FromBase64String(stored.Ciphertext).Length);
        Assert.Equal(plaintext, protector.Unprotect(12, "password", stored));
    }

    [Fact]
    public void Uses_a_fresh_nonce_for_every_call()
    {
        var protector = SecretsTestKeys.Protector(_key);

        var nonces = Enumerable.Range(0, 100)
            .Select(_ => Convert.ToHexString(Convert.FromBase64String(protector.Protect(1, "password", Plaintext).Ciphertext), 0, 12))
            .ToHashSet();

        Assert.Equal(100, nonces.Count);
    }

    [Theory]
    [InlineData(13, "password")]
    [InlineData(12, "token")]
    [InlineData(-12, "password")]
    [InlineData(1, "2:password")]
    public void Fails_for_another_source_or_field(long sourceId, string field)
    {
        var protector = SecretsTestKeys.Protector(_key);
        var stored = protector.Protect(12, "password", Plaintext);

        var error = Assert.Throws<SecretDecryptionException>(() => protector.Unprotect(sourceId, field, stored));

        Assert.Equal(SecretDecryptionFailure.NotAuthentic, error.Failure);
        Assert.Equal(
            $"The stored secret '{field}' of source {sourceId} could not be decrypted: it was not encrypted for this source and field, or it was altered.",
            error.Message);
    }

    [Fact]
    public void Fails_when_any_byte_is_altered()
    {
        var protector = SecretsTestKeys.Protector(_key);
        var stored = protector.Protect(12, "password", Plaintext);
        var bytes = Convert.FromBase64String(stored.Ciphertext);

        for (var i = 0; i < bytes.Length; i++)
        {
            var tampered = (byte[])bytes.Clone();
            tampered[i] ^= 0x01;

            var error = Assert.Throws<SecretDecryptionException>(
                () => protector.Unprotect(12, "password", stored with { Ciphertext = Convert.ToBase64String(tampered) }));
            Assert.Equal(SecretDecryptionFailure.NotAuthentic, error.Failure);
        }
    }

    [Fact]
    public void Fails_for_an_unknown_key_id_naming_it()
    {
        var protector = SecretsTestKeys.Protector(_key);
        var stored = protector.Protect(12, "password", Plaintext) with { KeyId = "1a2b3c4d" };

        var error = Assert.Throws<SecretDecryptionException>(() => protector.Unprotect(12, "password", stored));

        Assert.Equal(SecretDecryptionFailure.UnknownKey, error.Failure);
        Assert.Equal(12, error.SourceId);
        Assert.Equal("password", error.Field);
        Assert.Equal("The stored secret 'password' of source 12 could not be decrypted: the master key 1a2b3c4d is not configured.", error.Message);
    }

    [Fact]
    public void Does_not_echo_a_key_id_that_is_not_one()
    {
        var protector = SecretsTestKeys.Protector(_key);
        var stored = protector.Protect(12, "password", Plaintext) with { KeyId = "hunter2-is-my-password" };

        var error = Assert.Throws<SecretDecryptionException>(() => protector.Unprotect(12, "password", stored));

        Assert.Equal(SecretDecryptionFailure.UnknownKey, error.Failure);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("")]
    [InlineData("AAECAwQFBgcICQoLDA0ODxAREhM=")]
    public void Fails_for_malformed_data(string ciphertext)
    {
        var protector = SecretsTestKeys.Protector(_key);

        var error = Assert.Throws<SecretDecryptionException>(
            () => protector.Unprotect(12, "password", new StoredSecret(protector.CurrentKeyId, ciphertext)));

        Assert.Equal(SecretDecryptionFailure.Malformed, error.Failure);
        Assert.Equal("The stored secret 'password' of source 12 could not be decrypted: it is not a well-formed encrypted value.", error.Message);
    }

    [Fact]
    public void Decrypts_with_a_previous_key_and_encrypts_with_the_new_one()
    {
        var oldKey = _key;
        var newKey = SecretsTestKeys.NewBase64Key();
        var stored = SecretsTestKeys.Protector(oldKey).Protect(7, "token", Plaintext);

        var rotated = SecretsTestKeys.Protector(newKey, previousMasterKeys: oldKey);

        Assert.True(rotated.NeedsRotation(stored));
        Assert.Equal(Plaintext, rotated.Unprotect(7, "token", stored));
        var fresh = rotated.Protect(7, "token", Plaintext);
        Assert.NotEqual(stored.KeyId, fresh.KeyId);
        Assert.False(rotated.NeedsRotation(fresh));
        Assert.Throws<SecretDecryptionException>(() => SecretsTestKeys.Protector(oldKey).Unprotect(7, "token", fresh));
    }

    [Fact]
    public void No_error_message_contains_plaintext_ciphertext_or_key_material()
    {
        var protector = SecretsTestKeys.Protector(_key);
        var stored = protector.Protect(12, "password", Plaintext);
        var bytes = Convert.FromBase64String(stored.Ciphertext);
        bytes[^1] ^= 0xff;
        var attempts = new Action[]
        {
            () => protector.Unprotect(12, "token", stored),
            () => protector.Unprotect(12, "password", stored with { KeyId = "00000000" }),
            () => protector.Unprotect(12, "password", stored with { Ciphertext = Convert.ToBase64String(bytes) }),
            () => protector.Unprotect(12, "password", stored with { Ciphertext = stored.Ciphertext[..10] }),
            () => SecretsTestKeys.Protector(_key).Unprotect(12, "password", SecretsTestKeys.Protector(SecretsTestKeys.NewBase64Key()).Protect(12, "password", Plaintext)),
        };

        foreach (var attempt in attempts)
        {
            var error = Assert.Throws<SecretDecryptionException>(attempt);
            for (Exception? e = error; e is not null; e = e.InnerException)
            {
                Assert.DoesNotContain(Plaintext, e.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(stored.Ciphertext[..16], e.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(_key[..16], e.Message, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Is_safe_to_use_from_many_threads()
    {
        var protector = SecretsTestKeys.Protector(_key);

        await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                var plaintext = $"secret {worker}/{i}";
                Assert.Equal(plaintext, protector.Unprotect(worker, "password", protector.Protect(worker, "password", plaintext)));
            }
        }, TestContext.Current.CancellationToken)));
    }
}
