using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Caravan.Api.Secrets;

namespace Caravan.Api.Tests.Secrets;

public class MasterKeyRingTests
{
    private const string InvalidMasterKeyMessage =
        "Caravan:Secrets:MasterKey must be the base64 encoding of exactly 32 bytes (generate one with: openssl rand -base64 32).";

    [Fact]
    public void Key_id_is_the_first_four_bytes_of_the_tagged_sha256_of_the_key()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var expected = Convert.ToHexStringLower(SHA256.HashData([.. Encoding.ASCII.GetBytes("caravan-master-key-id:"), .. key])[..4]);

        var ring = MasterKeyRing.Load(new SecretsOptions { MasterKey = Convert.ToBase64String(key) });

        Assert.Equal(expected, ring.Current.KeyId);
        Assert.Equal(SecretsTestKeys.SequentialId, MasterKeyRing.Load(new SecretsOptions { MasterKey = SecretsTestKeys.Sequential }).Current.KeyId);
    }

    [Fact]
    public void Key_id_is_the_same_from_configuration_and_from_the_key_file()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        File.WriteAllText(path, $"# comment\n\n  {SecretsTestKeys.Sequential}  \r\n");

        var fromFile = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });
        var fromConfiguration = MasterKeyRing.Load(new SecretsOptions { MasterKey = SecretsTestKeys.Sequential });

        Assert.Equal(SecretsTestKeys.SequentialId, fromFile.Current.KeyId);
        Assert.Equal(SecretsTestKeys.SequentialId, fromConfiguration.Current.KeyId);
    }

    [Fact]
    public void Configuration_keys_are_previous_then_current_and_the_file_is_left_alone()
    {
        using var temp = new TempDirectory();
        var previous = new[] { SecretsTestKeys.NewBase64Key(), SecretsTestKeys.NewBase64Key() };
        var current = SecretsTestKeys.NewBase64Key();

        var ring = MasterKeyRing.Load(new SecretsOptions
        {
            MasterKey = current,
            PreviousMasterKeys = $" {previous[0]} ,, {previous[1]},",
            MasterKeyFile = temp.File("master.key"),
        });

        Assert.Equal(3, ring.Keys.Count);
        Assert.Same(ring.Current, ring.Keys[^1]);
        Assert.Equal(IdOf(current), ring.Current.KeyId);
        Assert.True(ring.TryGet(IdOf(previous[0]), out var found));
        Assert.Equal(IdOf(previous[0]), found.KeyId);
        Assert.False(ring.TryGet("00000000", out _));
        Assert.Null(ring.KeyFilePath);
        Assert.False(File.Exists(temp.File("master.key")));
    }

    [Fact]
    public void A_key_listed_twice_counts_once_at_its_newest_position()
    {
        var key = SecretsTestKeys.NewBase64Key();
        var other = SecretsTestKeys.NewBase64Key();

        var ring = MasterKeyRing.Load(new SecretsOptions { MasterKey = key, PreviousMasterKeys = $"{key},{other}" });

        Assert.Equal([IdOf(other), IdOf(key)], ring.Keys.Select(k => k.KeyId));
    }

    [Theory]
    [InlineData("not base64 at all!")]
    [InlineData("AAECAwQFBgcICQoLDA0ODw==")]
    [InlineData("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g")]
    [InlineData("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")]
    public void An_invalid_master_key_gives_an_actionable_message_without_the_key(string masterKey)
    {
        var error = Assert.Throws<SecretsConfigurationException>(() => MasterKeyRing.Load(new SecretsOptions { MasterKey = masterKey }));

        Assert.IsAssignableFrom<InvalidOperationException>(error);
        Assert.Equal(InvalidMasterKeyMessage, error.Message);
    }

    [Fact]
    public void An_invalid_previous_key_names_its_position_without_the_key()
    {
        var sixteenBytes = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var options = new SecretsOptions
        {
            MasterKey = SecretsTestKeys.NewBase64Key(),
            PreviousMasterKeys = $"{SecretsTestKeys.NewBase64Key()},{sixteenBytes}",
        };

        var error = Assert.Throws<SecretsConfigurationException>(() => MasterKeyRing.Load(options));

        Assert.StartsWith("Entry 2 of Caravan:Secrets:PreviousMasterKeys must be the base64 encoding of exactly 32 bytes", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(sixteenBytes, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(options.MasterKey, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Previous_keys_without_a_master_key_are_rejected()
    {
        using var temp = new TempDirectory();

        var error = Assert.Throws<SecretsConfigurationException>(() => MasterKeyRing.Load(new SecretsOptions
        {
            PreviousMasterKeys = SecretsTestKeys.NewBase64Key(),
            MasterKeyFile = temp.File("master.key"),
        }));

        Assert.Contains("only used together with Caravan:Secrets:MasterKey", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("master.key")));
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public void A_missing_key_file_is_created_with_mode_0600_and_reused()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix file modes only.");
        using var temp = new TempDirectory();
        var path = temp.File("nested/dir/master.key");

        var created = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });
        var reloaded = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });

        Assert.True(created.KeyFileCreated);
        Assert.False(created.KeyFileModeTooOpen);
        Assert.Equal(path, created.KeyFilePath);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Single(created.Keys);
        Assert.False(reloaded.KeyFileCreated);
        Assert.False(reloaded.KeyFileModeTooOpen);
        Assert.Equal(created.Current.KeyId, reloaded.Current.KeyId);
    }

    [Fact]
    public async Task Concurrent_first_loads_agree_on_one_key()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");

        var rings = await Task.WhenAll(Enumerable.Range(0, 16).Select(
            _ => Task.Run(() => MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path }), TestContext.Current.CancellationToken)));

        Assert.Single(rings.Select(r => r.Current.KeyId).Distinct());
        Assert.Single(rings, r => r.KeyFileCreated);
    }

    [Fact]
    public void The_key_file_lists_keys_oldest_first_and_ignores_comments_and_blank_lines()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        var oldest = SecretsTestKeys.NewBase64Key();
        var newest = SecretsTestKeys.NewBase64Key();
        File.WriteAllText(path, $"# keys\r\n{oldest}\r\n\r\n   # {SecretsTestKeys.NewBase64Key()}\r\n{newest}");

        var ring = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });

        Assert.Equal([IdOf(oldest), IdOf(newest)], ring.Keys.Select(k => k.KeyId));
        Assert.Equal(IdOf(newest), ring.Current.KeyId);
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public void A_loose_key_file_mode_is_reported_but_allowed()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix file modes only.");
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        File.WriteAllText(path, SecretsTestKeys.NewBase64Key());
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var ring = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });

        Assert.True(ring.KeyFileModeTooOpen);
        Assert.False(ring.KeyFileCreated);
    }

    [Fact]
    public void An_invalid_line_in_the_key_file_is_named_without_its_content()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        var good = SecretsTestKeys.NewBase64Key();
        var bad = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        File.WriteAllText(path, $"# keys\n{good}\n{bad}\n");

        var error = Assert.Throws<SecretsConfigurationException>(() => MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path }));

        Assert.StartsWith($"Line 3 of the master key file '{path}' must be the base64 encoding of exactly 32 bytes", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(bad, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(good, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_file_without_keys_is_rejected()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        File.WriteAllText(path, "# nothing here\n\n");

        var error = Assert.Throws<SecretsConfigurationException>(() => MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path }));

        Assert.StartsWith($"The master key file '{path}' contains no key", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_relative_key_file_path_is_resolved_to_a_full_path()
    {
        using var temp = new TempDirectory();
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), temp.File("master.key"));

        var ring = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = relative });

        Assert.Equal(temp.File("master.key"), ring.KeyFilePath);
    }

    private static string IdOf(string base64Key) =>
        MasterKeyRing.Load(new SecretsOptions { MasterKey = base64Key }).Current.KeyId;
}
