using Caravan.Api.Secrets;

namespace Caravan.Api.Tests.Secrets;

public class MasterKeyFileTests
{
    [Fact]
    public void AddNewKey_appends_the_newest_key_and_keeps_the_old_ones_and_mode_0600()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        var original = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });
        var stored = new SecretProtector(original).Protect(3, "password", "s3cret");
        if (!OperatingSystem.IsWindows())
        {
            // A file the operator loosened by hand comes back owner-only.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        }

        var newId = MasterKeyFile.AddNewKey(path);
        var rotated = MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path });

        Assert.Equal(newId, rotated.Current.KeyId);
        Assert.Equal([original.Current.KeyId, newId], rotated.Keys.Select(k => k.KeyId));
        Assert.StartsWith("# Caravan master keys", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Equal("s3cret", new SecretProtector(rotated).Unprotect(3, "password", stored));
        Assert.Equal(["master.key"], Directory.GetFiles(temp.Path).Select(Path.GetFileName));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.False(rotated.KeyFileModeTooOpen);
        }
    }

    [Fact]
    public void AddNewKey_handles_a_last_line_without_newline()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        File.WriteAllText(path, SecretsTestKeys.Sequential);

        var newId = MasterKeyFile.AddNewKey(path);

        Assert.Equal(
            [SecretsTestKeys.SequentialId, newId],
            MasterKeyRing.Load(new SecretsOptions { MasterKeyFile = path }).Keys.Select(k => k.KeyId));
    }

    [Fact]
    public void AddNewKey_refuses_a_missing_file()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");

        var error = Assert.Throws<SecretsConfigurationException>(() => MasterKeyFile.AddNewKey(path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void AddNewKey_refuses_a_file_that_cannot_be_loaded()
    {
        using var temp = new TempDirectory();
        var path = temp.File("master.key");
        File.WriteAllText(path, "garbage\n");

        Assert.Throws<SecretsConfigurationException>(() => MasterKeyFile.AddNewKey(path));

        Assert.Equal("garbage\n", File.ReadAllText(path));
    }
}
