using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text.Json.Serialization.Metadata;
using Caravan.Api.Auth;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

[assembly: AssemblyFixture(typeof(Caravan.Api.Tests.Infrastructure.CaravanApp))]

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>
/// A real Caravan on a real SQLite file in its own temporary directory, with every log line at
/// every level captured. Shared by the test classes; each test makes its own organization and key,
/// so tests never see each other's data and run in parallel.
/// </summary>
public class CaravanApp : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    public CaravanApp()
        : this(NewDataDirectory(), new Dictionary<string, string?>())
    {
    }

    protected CaravanApp(string dataDirectory, IDictionary<string, string?> settings)
    {
        DataDirectory = dataDirectory;
        // A settings dictionary that names a store keeps it (a restart on the same store);
        // otherwise the app gets a fresh store of this run's kind.
        _settings = settings.ContainsKey("ConnectionStrings:Caravan") ? [] : TestStore.NewStoreSettings(dataDirectory);
        _settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(dataDirectory, "master.key");
        _settings["Caravan:Files:Directory"] = Path.Combine(dataDirectory, "files");

        // The suite makes many requests with one key; tests about rate limits turn them back on.
        _settings[RateLimitsEnabled] = "false";
        foreach (var (key, value) in settings)
        {
            _settings[key] = value;
        }
    }

    public const string RateLimitsEnabled = "Caravan:RateLimits:Enabled";

    public string DataDirectory { get; }

    /// <summary>The settings this instance runs with, to start another on the same store.</summary>
    public IReadOnlyDictionary<string, string?> Settings => _settings;

    public LogSink Logs { get; } = new();

    public static string NewDataDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "caravan-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return directory;
    }

    /// <summary>A new organization with one key, and a client that sends it.</summary>
    public async Task<OrgClient> NewOrganizationAsync(string? name = null)
    {
        var organization = name ?? Unique.Name("org-");
        var (id, key) = await Services.GetRequiredService<ApiKeys>().CreateAsync(organization);
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return new OrgClient(organization, id, key, client);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging =>
        {
            logging.SetMinimumLevel(LogLevel.Trace);
            logging.AddProvider(Logs);
        });

        // Reflection off for the service's serializer settings: what it answers with must come from
        // its source-generated context (Hosting/ApiJson.cs), or the request fails and so does a test.
        // The process-wide switch (JsonSerializerIsReflectionEnabledByDefault) would do this for all
        // of the service, but Playwright, in this process too, serializes its messages by reflection.
        builder.ConfigureServices(services => services.PostConfigure<JsonOptions>(options =>
        {
            var chain = options.SerializerOptions.TypeInfoResolverChain;
            foreach (var reflection in chain.OfType<DefaultJsonTypeInfoResolver>().ToList())
            {
                chain.Remove(reflection);
            }
        }));
    }
}

/// <summary>A Caravan of a test's own, for tests that restart it or change its settings.</summary>
public sealed class OwnCaravan(string dataDirectory, IDictionary<string, string?> settings) : CaravanApp(dataDirectory, settings)
{
    public OwnCaravan(IDictionary<string, string?>? settings = null)
        : this(NewDataDirectory(), settings ?? new Dictionary<string, string?>())
    {
    }

    /// <summary>
    /// Starts a Caravan with settings it must refuse, and returns what reaches the operator: the
    /// messages of the start-up failure and the log of the failed start. Fails the test if it starts.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RefusedStartTextsAsync(IDictionary<string, string?> settings)
    {
        var app = new OwnCaravan(settings);
        Exception? failure = null;
        try
        {
            using var client = app.CreateClient();
        }
        catch (Exception exception) when (exception is not Xunit.Sdk.XunitException)
        {
            failure = exception;
        }
        finally
        {
            try
            {
                await app.DisposeAsync();
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                // A host that never started may complain on the way down; the start-up failure is what is tested.
            }
        }

        Assert.NotNull(failure);
        return [.. Flatten(failure).Select(e => e.Message).Concat(app.Logs.Lines)];
    }

    private static IEnumerable<Exception> Flatten(Exception exception)
    {
        yield return exception;
        var inner = exception is AggregateException aggregate ? aggregate.InnerExceptions : (IEnumerable<Exception>)(exception.InnerException is null ? [] : [exception.InnerException]);
        foreach (var child in inner.SelectMany(Flatten))
        {
            yield return child;
        }
    }
}

public sealed record OrgClient(string Organization, string KeyId, string Key, HttpClient Http);

/// <summary>One log event as it was written: its category, id, message and structured properties.</summary>
public sealed record LogEvent(string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, object?> Properties);

/// <summary>Keeps every log line, message and exception text, so tests can search them for secrets.</summary>
public sealed class LogSink : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<LogEvent> _events = new();

    public IReadOnlyCollection<string> Lines => _lines;

    /// <summary>The same events with their structured properties, for tests of what a log event carries.</summary>
    public IReadOnlyCollection<LogEvent> Events => _events;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines, _events);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines, ConcurrentQueue<LogEvent> events) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull
        {
            lines.Enqueue($"scope {category}: {state}");
            return null;
        }

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            lines.Enqueue($"{logLevel} {category}: {message} {state} {exception}");
            var properties = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in state as IEnumerable<KeyValuePair<string, object?>> ?? [])
            {
                properties[key] = value;
            }

            events.Enqueue(new LogEvent(category, logLevel, eventId, message, properties));
        }
    }
}
