namespace Caravan.Api.Sources;

public static class SourcesSetup
{
    /// <summary>The sources feature: reads of stored sources, the writer, keyed reads and idempotency keys.</summary>
    public static IServiceCollection AddSources(this IServiceCollection services)
    {
        services.AddSingleton<SourceConnections>();
        services.AddSingleton<SourceWriter>();
        services.AddSingleton<KeyedReads>();
        services.AddSingleton<IdempotencyKeys>();
        return services;
    }
}
