using Microsoft.Extensions.Options;

namespace Caravan.Api.Secrets;

public static class SecretsServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="MasterKeyRing"/> (loaded on first use) and <see cref="SecretProtector"/> as
    /// singletons. Resolve <see cref="SecretProtector"/> once at startup to surface key problems early.
    /// </summary>
    public static IServiceCollection AddSecrets(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<SecretsOptions>(configuration.GetSection(SecretsOptions.Section));
        services.AddSingleton(provider =>
        {
            var ring = MasterKeyRing.Load(provider.GetRequiredService<IOptions<SecretsOptions>>().Value);
            var logger = provider.GetRequiredService<ILogger<MasterKeyRing>>();
            if (ring.KeyFileCreated)
            {
                logger.LogWarning("Created the master key file {Path} with a new key. Back it up: without it the stored secrets cannot be decrypted.", ring.KeyFilePath);
            }

            if (ring.KeyFileModeTooOpen)
            {
                logger.LogWarning("The master key file {Path} is accessible to other users; restrict it to its owner with chmod 600.", ring.KeyFilePath);
            }

            return ring;
        });
        services.AddSingleton<SecretProtector>();
        services.AddSingleton<SecretRotation>();
        services.AddSingleton<RequestMacs>();
        services.AddSingleton<ServerKeys>();
        services.AddOptions<SecurityOptions>().BindConfiguration(SecurityOptions.Section).ValidateOnStart();
        return services;
    }
}
