namespace Caravan.Api.Connectors.Files;

/// <summary>FILE sources' services: settings, the store, the catalog, conversions, sessions, imports and routes.</summary>
public static class FilesSetup
{
    public static IServiceCollection AddFiles(this IServiceCollection services)
    {
        services.AddOptions<FilesOptions>().BindConfiguration(FilesOptions.Section)
            .Validate(o => o.MaxFileBytes > 0, "Caravan__Files__MaxFileBytes must be a positive number of bytes.")
            .Validate(o => o.MaxFilesPerSource > 0, "Caravan__Files__MaxFilesPerSource must be a positive number.")
            .Validate(o => o.ConversionTimeout > TimeSpan.Zero, "Caravan__Files__ConversionTimeout must be a positive time span, such as 02:00:00.")
            .Validate(o => new UrlAddresses(o.UrlAllow) is not null, "Caravan__Files__UrlAllow must list CIDR ranges.")
            .ValidateOnStart();
        services.AddFileStore();
        services.AddSingleton<FileCatalog>();
        services.AddSingleton<FileSessions>();
        services.AddSingleton<UrlImports>();
        services.AddSingleton<FileIngest>();
        services.AddHostedService(provider => provider.GetRequiredService<FileIngest>());
        services.AddSingleton<ISourceHoldings>(provider => provider.GetRequiredService<FileIngest>());
        services.AddSingleton<FileImports>();
        services.AddSingleton<UploadsApi>();
        services.AddSingleton<ISourceImporter>(provider => provider.GetRequiredService<UploadsApi>());
        services.AddSingleton(FileCatalog.KeyTable);
        return services;
    }

    public static IEndpointRouteBuilder MapFiles(this IEndpointRouteBuilder routes) => UploadsApi.MapUploads(routes);
}
