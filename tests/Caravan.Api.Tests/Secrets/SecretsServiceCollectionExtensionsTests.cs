using Caravan.Api.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Secrets;

public class SecretsServiceCollectionExtensionsTests
{
    [Fact]
    public void AddSecrets_binds_the_section_and_registers_singletons()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Caravan:Secrets:MasterKey"] = SecretsTestKeys.Sequential })
            .Build();
        using var provider = new ServiceCollection().AddLogging().AddSecrets(configuration).BuildServiceProvider();

        var protector = provider.GetRequiredService<SecretProtector>();

        Assert.Same(protector, provider.GetRequiredService<SecretProtector>());
        Assert.Same(provider.GetRequiredService<MasterKeyRing>(), provider.GetRequiredService<MasterKeyRing>());
        Assert.Equal(SecretsTestKeys.SequentialId, protector.CurrentKeyId);
    }

    [Fact]
    public void AddSecrets_uses_the_configured_key_file()
    {
        using var temp = new TempDirectory();
        var path = temp.File("keys/master.key");
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Caravan:Secrets:MasterKeyFile"] = path })
            .Build();
        using var provider = new ServiceCollection().AddLogging().AddSecrets(configuration).BuildServiceProvider();

        var ring = provider.GetRequiredService<MasterKeyRing>();

        Assert.True(ring.KeyFileCreated);
        Assert.Equal(path, ring.KeyFilePath);
    }
}
