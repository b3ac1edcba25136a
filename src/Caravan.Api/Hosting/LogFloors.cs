using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Hosting;

/// <summary>
/// Log categories that write request or message content at their verbose levels, and with it keys
/// and secrets, are held at a floor that no configuration can lower: not <c>Logging__LogLevel__*</c>,
/// nor a more specific category, a wildcard, or a provider's own rules (<c>Logging__Console__LogLevel__*</c>).
/// </summary>
public static class LogFloors
{
    /// <summary>
    /// The framework's categories that can log a key or a secret below the given level. Kestrel
    /// quotes a malformed request line or header (the API key with it) at Debug, and logs HTTP/2
    /// and HTTP/3 frames at Trace; HttpClient's logging (should a client be made through
    /// IHttpClientFactory) writes request URLs at Information and headers at Trace.
    /// </summary>
    public static ILoggingBuilder AddFrameworkFloors(this ILoggingBuilder logging) => logging
        .AddFloor("Microsoft.AspNetCore.Server.Kestrel", LogLevel.Information)
        .AddFloor("System.Net.Http.HttpClient", LogLevel.Warning);

    /// <summary>Keeps <paramref name="category"/> and every category under it at <paramref name="floor"/> or above.</summary>
    public static ILoggingBuilder AddFloor(this ILoggingBuilder logging, string category, LogLevel floor)
    {
        logging.Services.AddSingleton(new LogFloor(category, floor));
        logging.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<LoggerFilterOptions>, FloorRules>());
        return logging;
    }

    /// <summary>
    /// Runs after every configuration of the filter rules (and again on each reload). Whichever rule
    /// the framework picks for a logger, its filter now also asks the floors, so a floor raises the
    /// level a rule gives and never lowers one; a last general rule at the minimum level covers the
    /// loggers no other rule applies to.
    /// </summary>
    private sealed class FloorRules(IEnumerable<LogFloor> floors) : IPostConfigureOptions<LoggerFilterOptions>
    {
        private readonly LogFloor[] _floors = [.. floors];

        public void PostConfigure(string? name, LoggerFilterOptions options)
        {
            var rules = options.Rules;
            for (var i = 0; i < rules.Count; i++)
            {
                var rule = rules[i];
                rules[i] = new LoggerFilterRule(rule.ProviderName, rule.CategoryName, rule.LogLevel, AboveFloor(rule.Filter));
            }

            if (!rules.Any(r => r.ProviderName is null && r.CategoryName is null))
            {
                rules.Add(new LoggerFilterRule(null, null, options.MinLevel, AboveFloor(null)));
            }
        }

        private Func<string?, string?, LogLevel, bool> AboveFloor(Func<string?, string?, LogLevel, bool>? filter) =>
            (provider, category, level) => level >= FloorOf(category) && (filter is null || filter(provider, category, level));

        private LogLevel FloorOf(string? category)
        {
            var floor = LogLevel.Trace;
            foreach (var candidate in _floors)
            {
                if (candidate.Level > floor && category is not null && category.StartsWith(candidate.Category, StringComparison.OrdinalIgnoreCase))
                {
                    floor = candidate.Level;
                }
            }

            return floor;
        }
    }
}

/// <summary>The lowest level at which <see cref="Category"/> and the categories under it may log.</summary>
public sealed record LogFloor(string Category, LogLevel Level);
