using Caravan.Api.Hosting;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// A log floor holds a category and those under it at a level that no logging configuration can
/// lower (general, more specific, wildcard or provider rules), and never lowers a level itself.
/// </summary>
public sealed class LogFloorTests
{
    private const string Held = "Vendor.Server";

    [Theory]
    [InlineData("Logging:LogLevel:Default")]
    [InlineData("Logging:LogLevel:Vendor")]
    [InlineData("Logging:LogLevel:Vendor.Server")]
    [InlineData("Logging:LogLevel:Vendor.Server.BadRequests")]
    [InlineData("Logging:LogLevel:*.BadRequests")]
    [InlineData("Logging:LogLevel:Vendor.Server.*")]
    [InlineData("Logging:LogLevel:vendor.server.badrequests")]
    [InlineData("Logging:Caravan.Api.Tests.Infrastructure.LogSink:LogLevel:Default")]
    [InlineData("Logging:Caravan.Api.Tests.Infrastructure.LogSink:LogLevel:Vendor.Server.BadRequests")]
    public void No_setting_lowers_a_floor(string setting)
    {
        var written = Log(new() { [setting] = "Trace" }, "Vendor.Server.BadRequests", "Vendor.Server", "Vendor.Other", "Other");

        Assert.DoesNotContain("Vendor.Server.BadRequests Debug", written);
        Assert.DoesNotContain("Vendor.Server Trace", written);
        Assert.Contains("Vendor.Server.BadRequests Information", written);
        Assert.Contains("Vendor.Server Information", written);
    }

    [Fact]
    public void Other_categories_keep_the_levels_they_are_given()
    {
        var written = Log(new() { ["Logging:LogLevel:Default"] = "Trace" }, "Vendor.Other", "Other", "Vendor.ServerX");

        Assert.Contains("Vendor.Other Trace", written);
        Assert.Contains("Other Trace", written);
    }

    [Fact]
    public void A_floor_never_lowers_a_level_the_configuration_raised()
    {
        var written = Log(new() { ["Logging:LogLevel:Default"] = "Trace", ["Logging:LogLevel:Vendor.Server"] = "Error" }, "Vendor.Server.BadRequests");
        var quiet = Log(minimum: LogLevel.Warning, settings: [], categories: ["Vendor.Server", "Other"]);

        Assert.Equal(["Vendor.Server.BadRequests Error", "Vendor.Server.BadRequests Critical"], written);
        Assert.Equal(["Vendor.Server Warning", "Vendor.Server Error", "Vendor.Server Critical", "Other Warning", "Other Error", "Other Critical"], quiet);
    }

    /// <summary>Logs at every level in each category, with the given settings and a floor at Information on <see cref="Held"/>; what was written.</summary>
    private static List<string> Log(Dictionary<string, string?> settings, params string[] categories) => Log(null, settings, categories);

    private static List<string> Log(LogLevel? minimum, Dictionary<string, string?> settings, string[] categories)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var sink = new LogSink();
        using var services = new ServiceCollection()
            .AddLogging(logging =>
            {
                logging.AddConfiguration(configuration.GetSection("Logging"));
                if (minimum is { } level)
                {
                    logging.SetMinimumLevel(level);
                }

                logging.AddProvider(sink);
                logging.AddFloor(Held, LogLevel.Information);
            })
            .BuildServiceProvider();
        var loggers = services.GetRequiredService<ILoggerFactory>();
        foreach (var category in categories)
        {
            var logger = loggers.CreateLogger(category);
            foreach (var level in Enum.GetValues<LogLevel>().Where(l => l != LogLevel.None))
            {
                logger.Log(level, "entry");
            }
        }

        return [.. sink.Events.Select(e => $"{e.Category} {e.Level}")];
    }
}
