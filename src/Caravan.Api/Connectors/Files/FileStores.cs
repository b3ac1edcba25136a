using Caravan.Api.Hosting;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectors.Files;

/// <summary>Picks the store <c>Caravan__Files__Store</c> names, and refuses to start without the settings it needs.</summary>
public static class FileStores
{
    public static IServiceCollection AddFileStore(this IServiceCollection services)
    {
        services.AddSingleton(provider => Create(provider.GetRequiredService<IOptions<FilesOptions>>(), provider.GetRequiredService<ILoggerFactory>()));
        services.AddHostedService<FileStoreStartup>();
        return services;
    }

    public static IFileStore Create(IOptions<FilesOptions> options, ILoggerFactory loggers)
    {
        var files = options.Value;
        if (string.Equals(files.Store, "Local", StringComparison.OrdinalIgnoreCase))
        {
            return new LocalFileStore(options);
        }

        if (!string.Equals(files.Store, "S3", StringComparison.OrdinalIgnoreCase))
        {
            throw new StartupFailureException($"Caravan__Files__Store must be Local or S3, not \"{files.Store}\".");
        }

        var s3 = files.S3;
        var missing = new[] { ("Bucket", s3.Bucket), ("AccessKey", s3.AccessKey), ("SecretKey", s3.SecretKey), ("Region", s3.Region) }
            .Where(setting => string.IsNullOrWhiteSpace(setting.Item2)).Select(setting => S3Setting(setting.Item1)).ToList();
        if (missing.Count > 0)
        {
            throw new StartupFailureException($"Caravan__Files__Store=S3 needs {string.Join(", ", missing)}.");
        }

        if (!string.IsNullOrWhiteSpace(s3.Endpoint)
            && !(Uri.TryCreate(s3.Endpoint, UriKind.Absolute, out var endpoint) && endpoint.Scheme is "http" or "https"))
        {
            throw new StartupFailureException($"{S3Setting("Endpoint")} must be an http or https URL such as https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000.");
        }

        return new S3FileStore(options, loggers.CreateLogger<S3FileStore>());
    }

    internal static string S3Setting(string name) => "Caravan__Files__S3__" + name;

    /// <summary>Makes the store now, so a missing setting stops the start with its message instead of failing the first upload.</summary>
    private sealed class FileStoreStartup(IFileStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            GC.KeepAlive(store);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
