using Caravan.Api.Auth;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Data;

internal static class StorageSetup
{
    public static IServiceCollection AddStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>()
            .BindConfiguration(StorageOptions.Section)
            .Configure(options => options.ConnectionString = configuration.GetConnectionString("Caravan") ?? string.Empty)
            .Validate(
                options => options.Provider == StorageProvider.Sqlite || !string.IsNullOrWhiteSpace(options.ConnectionString),
                "Caravan__Storage__Provider=Postgres needs ConnectionStrings__Caravan, e.g. \"Host=db;Database=caravan;Username=caravan;Password=...\".")
            .ValidateOnStart();
        services.AddSingleton<Database>();
        services.AddSingleton<Migrator>();
        services.AddHostedService<StoreStartup>();
        return services;
    }
}

/// <summary>
/// Readies the store before the first request: the embedded SQLite store is migrated in place so
/// a first run needs no set-up; then the bootstrap API key, if configured, is made valid.
/// </summary>
internal sealed class StoreStartup(Database database, Migrator migrator, ApiKeys keys, IConfiguration configuration, ILogger<StoreStartup> logger)
    : IHostedService
{
    public const string BootstrapKeySetting = "Caravan:BootstrapApiKey";
    public const string BootstrapOrganization = "default";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (database.Provider == StorageProvider.Sqlite)
        {
            await migrator.MigrateAsync(cancellationToken);
        }
        else if (await migrator.PendingAsync(cancellationToken) is { Count: > 0 } pending)
        {
            throw new Hosting.StartupFailureException(
                $"The PostgreSQL store has {pending.Count} migration(s) to apply. Run `dotnet Caravan.Api.dll migrate` (or `dotnet run --project src/Caravan.Api -- migrate`) with the same configuration, then start again.");
        }

        if (configuration[BootstrapKeySetting] is { Length: > 0 } bootstrapKey)
        {
            // A value shaped like a token would be read as one (Tokens.TokenAuthentication.IsToken), never as this key.
            if (bootstrapKey.Length < 32 || bootstrapKey.Any(c => c is < '!' or > '~') || Tokens.TokenAuthentication.IsToken(bootstrapKey))
            {
                throw new Hosting.StartupFailureException(
                    "Caravan__BootstrapApiKey must be at least 32 printable characters without spaces, e.g. cvn_ followed by `openssl rand -hex 32`.");
            }

            await keys.EnsureAsync(BootstrapOrganization, bootstrapKey, cancellationToken);
            logger.LogInformation("The bootstrap API key is active for organization {Organization}", BootstrapOrganization);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

internal static class OptionsExtensions
{
    public static IServiceCollection AddLimits(this IServiceCollection services)
    {
        services.AddOptions<Hosting.LimitsOptions>()
            .BindConfiguration(Hosting.LimitsOptions.Section)
            .Validate(o => o.MaxBodyBytes is >= 1024 and <= 64 * 1024 * 1024, "Caravan__Limits__MaxBodyBytes must be between 1024 and 67108864.")
            .ValidateOnStart();
        return services;
    }

    public static T Value<T>(this IServiceProvider services)
        where T : class => services.GetRequiredService<IOptions<T>>().Value;
}
