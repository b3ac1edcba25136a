using Caravan.Api.Connectors.Files;
using Caravan.Api.Connectors.Mcp;
using Caravan.Api.Connectors.MotherDuck;
using Caravan.Api.Connectors.Postgres;

namespace Caravan.Api.Connectors;

/// <summary>
/// The connection types' services: every driver and query engine of the families under
/// <c>Connectors/</c> (found like the types themselves, so a new family's folder is all a new type
/// needs), and the settings that belong to one family.
/// </summary>
public static class ConnectorsSetup
{
    public static IServiceCollection AddConnectors(this IServiceCollection services)
    {
        services.AddOptions<RowSecurityOptions>().BindConfiguration(RowSecurityOptions.Section)
            .Validate(o => RowSecurityOptions.IsValidUidSetting(o.UidSetting),
                "Caravan__Query__UidSetting must be a custom setting name of the form prefix.name (letters, digits, underscores), such as caravan.uid.")
            .ValidateOnStart();
        services.AddOptions<LocalFileOptions>().BindConfiguration(LocalFileOptions.Section);
        services.AddFiles();
        services.AddOptions<RemoteMcpOptions>().BindConfiguration(RemoteMcpOptions.Section)
            .Validate(o => o.RemoteCallTimeoutSeconds is >= 1 and <= 600, "Caravan__Mcp__RemoteCallTimeoutSeconds must be from 1 to 600.")
            .Validate(o => o.MaxRemoteResultBytes is >= 1024 and <= 64 * 1024 * 1024, "Caravan__Mcp__MaxRemoteResultBytes must be from 1024 to 67108864 (64 MiB).")
            .Validate(o => o.ToolListCacheSeconds is >= 0 and <= 3600, "Caravan__Mcp__ToolListCacheSeconds must be from 0 to 3600.")
            .ValidateOnStart();
        services.AddSingleton<McpConnector>();
        foreach (var implementation in typeof(IDriver).Assembly.GetTypes().Where(t => t.IsClass && !t.IsAbstract))
        {
            if (typeof(IDriver).IsAssignableFrom(implementation))
            {
                services.AddSingleton(typeof(IDriver), implementation);
            }

            if (typeof(IQueryEngine).IsAssignableFrom(implementation))
            {
                services.AddSingleton(typeof(IQueryEngine), implementation);
            }

            if (typeof(IToolSource).IsAssignableFrom(implementation))
            {
                services.AddSingleton(typeof(IToolSource), implementation);
            }
        }

        return services;
    }
}
