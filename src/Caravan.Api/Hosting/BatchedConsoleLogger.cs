using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Hosting;

public static class BatchedConsoleLogging
{
    /// <summary>
    /// Console logging through <see cref="BatchedConsoleLoggerProvider"/> instead of the built-in
    /// provider, which wakes its writer thread and makes one write per entry: a fifth of the CPU of
    /// a query, whose audit event is logged on every request. The built-in options (section
    /// <c>Logging:Console</c>) and formatters stay registered and apply as before.
    /// </summary>
    public static ILoggingBuilder AddBatchedConsole(this ILoggingBuilder logging, Action<ConsoleLoggerOptions>? configure = null)
    {
        logging.AddConsole();
        foreach (var builtIn in logging.Services.Where(IsBuiltInConsoleProvider).ToList())
        {
            logging.Services.Remove(builtIn);
        }

        logging.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoggerProvider, BatchedConsoleLoggerProvider>());
        if (configure is not null)
        {
            logging.Services.Configure(configure);
        }

        return logging;
    }

    private static bool IsBuiltInConsoleProvider(ServiceDescriptor service) =>
        service.ServiceType == typeof(ILoggerProvider) && !service.IsKeyedService && service.ImplementationType == typeof(ConsoleLoggerProvider);
}

/// <summary>
/// A console logger provider that formats on the logging thread, with the registered
/// <see cref="ConsoleFormatter"/>s exactly as the built-in one does, and hands the text to a
/// <see cref="ConsoleBatchWriter"/>. The alias keeps <c>Logging:Console:LogLevel</c> filters applying.
/// </summary>
[ProviderAlias("Console")]
internal sealed class BatchedConsoleLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    // Opened once per process: the streams duplicate the console's descriptors, and logs written
    // after a provider is disposed still need somewhere to go.
    private static readonly Lazy<Stream> StandardOutput = new(Console.OpenStandardOutput);
    private static readonly Lazy<Stream> StandardError = new(Console.OpenStandardError);

    private readonly ConcurrentDictionary<string, BatchedConsoleLogger> _loggers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ConsoleFormatter> _formatters;
    private readonly IDisposable? _reload;
    private readonly bool _flushOnExit;
    private volatile Settings _settings = null!;

    public BatchedConsoleLoggerProvider(IOptionsMonitor<ConsoleLoggerOptions> options, IEnumerable<ConsoleFormatter> formatters)
        : this(options, formatters, StandardOutput.Value, StandardError.Value, ConsoleBatchWriter.BatchInterval)
    {
        // A command returns from Main without disposing the host; what it logged must still appear.
        _flushOnExit = true;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    /// <summary>For tests: writes to the given streams, pausing <paramref name="batchInterval"/> between batches.</summary>
    internal BatchedConsoleLoggerProvider(
        IOptionsMonitor<ConsoleLoggerOptions> options, IEnumerable<ConsoleFormatter> formatters, Stream output, Stream error, TimeSpan batchInterval)
    {
        _formatters = formatters.ToDictionary(f => f.Name, StringComparer.OrdinalIgnoreCase);
        Writer = new ConsoleBatchWriter(output, error, batchInterval);
        Apply(options.CurrentValue);
        _reload = options.OnChange(Apply);
    }

    internal ConsoleBatchWriter Writer { get; }

    internal IExternalScopeProvider? Scopes { get; private set; }

    /// <summary>The formatter and the standard error threshold, as the options say now.</summary>
    internal Settings Current => _settings;

    public ILogger CreateLogger(string categoryName) => _loggers.GetOrAdd(categoryName, name => new BatchedConsoleLogger(name, this));

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => Scopes = scopeProvider;

    public void Dispose()
    {
        _reload?.Dispose();
        if (_flushOnExit)
        {
            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        }

        Writer.Dispose();
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private void Apply(ConsoleLoggerOptions options)
    {
        // As the built-in provider: no name, or one that is not registered, means the simple formatter.
        var formatter = options.FormatterName is { } name && _formatters.TryGetValue(name, out var named)
            ? named
            : _formatters[ConsoleFormatterNames.Simple];
        _settings = new Settings(formatter, options.LogToStandardErrorThreshold);
        Writer.Configure(options.MaxQueueLength, options.QueueFullMode);
    }

    internal sealed record Settings(ConsoleFormatter Formatter, LogLevel ErrorThreshold);
}

internal sealed class BatchedConsoleLogger(string category, BatchedConsoleLoggerProvider provider) : ILogger
{
    // Each thread formats into its own writer, reused, so formatting allocates only the final text.
    [ThreadStatic]
    private static StringWriter? t_text;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => provider.Scopes?.Push(state);

    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        var settings = provider.Current;
        var text = t_text ??= new StringWriter(CultureInfo.InvariantCulture);
        var entry = new LogEntry<TState>(logLevel, category, eventId, state, exception, formatter);
        settings.Formatter.Write(in entry, provider.Scopes, text);

        var builder = text.GetStringBuilder();
        if (builder.Length == 0)
        {
            return;
        }

        var line = builder.ToString();
        builder.Clear();
        if (builder.Capacity > 1024)
        {
            // One huge entry should not pin a huge buffer to the thread for good.
            builder.Capacity = 1024;
        }

        // Warnings and errors are written at once; the rest waits for the writer's next batch.
        provider.Writer.Enqueue(line, toError: logLevel >= settings.ErrorThreshold, urgent: logLevel >= LogLevel.Warning);
    }
}
