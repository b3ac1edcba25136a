using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Hosting;
using Caravan.Api.Revisions;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Logging.Debug;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// The console logger that writes in batches from a background thread: same output as the built-in
/// one, nothing lost or torn, far fewer writes, warnings at once, and the app still logs through it.
/// </summary>
public sealed partial class BatchedConsoleLoggerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public void Every_entry_of_concurrent_loggers_arrives_once_whole_and_in_its_threads_order()
    {
        const int threads = 8;
        const int each = 5_000;
        using var rig = new ConsoleLogRig();
        var padding = new string('x', 200);
        var producers = Enumerable.Range(0, threads).Select(thread => new Thread(() =>
        {
            for (var number = 0; number < each; number++)
            {
                rig.Logger.LogInformation("t{Thread} n{Number} {Padding}", thread, number, padding);
            }
        })).ToList();

        producers.ForEach(p => p.Start());
        producers.ForEach(p => p.Join());
        rig.Provider.Dispose();

        var lines = rig.Output.Lines;
        Assert.Equal(threads * each, lines.Length);
        var next = new int[threads];
        foreach (var line in lines)
        {
            var entry = Entry().Match(line);
            Assert.True(entry.Success, $"Not one whole entry: {line}");
            var thread = int.Parse(entry.Groups["thread"].Value, CultureInfo.InvariantCulture);
            Assert.Equal(next[thread]++, int.Parse(entry.Groups["number"].Value, CultureInfo.InvariantCulture));
        }

        Assert.All(next, count => Assert.Equal(each, count));
    }

    [Fact]
    public void The_json_formatter_writes_one_parseable_line_per_entry_with_the_event_and_its_properties()
    {
        using var rig = new ConsoleLogRig(logging => logging.AddJsonConsole());
        using var factory = new LoggerFactory([rig.Provider]);

        new AuditLog(factory).Record(new Revision(41, 1, "acme", "key_1b4e", "update", 0, new JsonObject { ["port"] = 1, ["host"] = 2 }, 2));
        factory.CreateLogger("Test").LogWarning("Naïve \"quoted\" ✓ {Value}", 7);
        rig.Provider.Dispose();

        var lines = rig.Output.Lines;
        Assert.Equal(2, lines.Length);
        var audit = JsonNode.Parse(lines[0])!;
        Assert.Equal(7001, audit["EventId"]!.GetValue<int>());
        Assert.Equal("Information", audit["LogLevel"]!.GetValue<string>());
        Assert.Equal("Caravan.Audit", audit["Category"]!.GetValue<string>());
        Assert.Equal("Source 41 update by organization acme with key key_1b4e: revision 2, fields [port,host]", audit["Message"]!.GetValue<string>());
        var state = audit["State"]!;
        Assert.Equal(
            ("update", "acme", "key_1b4e", 41L, 2L, "port,host"),
            (state["Action"]!.GetValue<string>(), state["Organization"]!.GetValue<string>(), state["KeyId"]!.GetValue<string>(),
                state["SourceId"]!.GetValue<long>(), state["Revision"]!.GetValue<long>(), state["Fields"]!.GetValue<string>()));
        Assert.Equal("Naïve \"quoted\" ✓ 7", JsonNode.Parse(lines[1])!["Message"]!.GetValue<string>());
    }

    [Fact]
    public void Entries_at_or_above_the_error_threshold_go_to_standard_error()
    {
        using var rig = new ConsoleLogRig(logging => logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Warning));

        rig.Logger.LogDebug("debug");
        rig.Logger.LogInformation("information");
        rig.Logger.LogWarning("warning");
        rig.Logger.LogError("error");
        rig.Logger.LogCritical("critical");
        rig.Provider.Dispose();

        Assert.Equal(["debug", "information"], ConsoleLogRig.Messages(rig.Output));
        Assert.Equal(["warning", "error", "critical"], ConsoleLogRig.Messages(rig.Error));
    }

    [Fact]
    public void DropWrite_drops_what_does_not_fit_and_then_says_how_many()
    {
        // The writer is held in its write of entry 0: 10 more fill the queue, 5 do not fit.
        using var rig = ConsoleLogRig.HeldInAWrite(10, ConsoleLoggerQueueFullMode.DropWrite);
        for (var i = 1; i <= 15; i++)
        {
            rig.Logger.LogInformation("entry {Number}", i);
        }

        rig.Output.Release();
        rig.Provider.Dispose();

        Assert.Equal(Enumerable.Range(0, 11).Select(i => $"entry {i}"), ConsoleLogRig.Messages(rig.Output));
        Assert.StartsWith("5 message(s) dropped because of queue size limit.", rig.Error.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wait_blocks_the_logger_until_the_writer_makes_room_then_lets_it_on()
    {
        using var rig = ConsoleLogRig.HeldInAWrite(2, ConsoleLoggerQueueFullMode.Wait);
        rig.Logger.LogInformation("entry 1");
        rig.Logger.LogInformation("entry 2");

        var third = Task.Run(() => rig.Logger.LogInformation("entry 3"));
        await Task.WhenAny(third, Task.Delay(300));
        Assert.False(third.IsCompleted, "A logger went on past a full queue in Wait mode.");

        rig.Output.Release();
        await third.WaitAsync(Patience);
        rig.Provider.Dispose();
        Assert.Equal(["entry 0", "entry 1", "entry 2", "entry 3"], ConsoleLogRig.Messages(rig.Output));
    }

    [Fact]
    public void Disposing_writes_everything_still_queued()
    {
        using var rig = new ConsoleLogRig(batchInterval: TimeSpan.FromHours(1));
        rig.Logger.LogInformation("entry 0");
        Assert.True(SpinWait.SpinUntil(() => rig.Output.Lines.Length == 1, Patience));

        // The writer now pauses for an hour: these wait in the queue until the provider is disposed.
        for (var i = 1; i <= 1_000; i++)
        {
            rig.Logger.LogInformation("entry {Number}", i);
        }

        Assert.Single(rig.Output.Lines);
        rig.Provider.Dispose();
        Assert.Equal(Enumerable.Range(0, 1_001).Select(i => $"entry {i}"), ConsoleLogRig.Messages(rig.Output));
    }

    [Fact]
    public void A_warning_is_written_at_once_while_the_writer_pauses_between_batches()
    {
        using var rig = new ConsoleLogRig(batchInterval: TimeSpan.FromHours(1));
        rig.Logger.LogInformation("first");
        Assert.True(SpinWait.SpinUntil(() => rig.Output.Lines.Length == 1, Patience));

        // An hour's pause: an information entry waits for it, a warning does not (and takes it along).
        rig.Logger.LogInformation("second");
        Thread.Sleep(200);
        Assert.Single(rig.Output.Lines);
        var clock = Stopwatch.StartNew();
        rig.Logger.LogWarning("urgent");
        Assert.True(SpinWait.SpinUntil(() => rig.Output.Lines.Length == 3, TimeSpan.FromSeconds(5)), "The warning waited for the batch.");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal(["first", "second", "urgent"], ConsoleLogRig.Messages(rig.Output));
    }

    [Fact]
    public void A_burst_of_entries_takes_far_fewer_writes_and_wake_ups_than_entries()
    {
        using var rig = new ConsoleLogRig();

        for (var i = 0; i < 10_000; i++)
        {
            rig.Logger.LogInformation("entry {Number}", i);
        }

        var wakeUps = rig.Provider.Writer.WakeUps;
        rig.Provider.Dispose();
        Assert.Equal(10_000, rig.Output.Lines.Length);
        Assert.True(rig.Output.Writes < 1_000, $"{rig.Output.Writes} writes for 10,000 entries.");
        Assert.True(wakeUps < 1_000, $"The writer woke {wakeUps} times for 10,000 entries.");
    }

    [Fact]
    public void An_idle_writer_sleeps_until_the_next_entry()
    {
        using var rig = new ConsoleLogRig();
        rig.Logger.LogInformation("first");
        Assert.True(SpinWait.SpinUntil(() => rig.Output.Lines.Length == 1, Patience));

        // A writer that polled would wake every 20 ms and never be quiet for half a second.
        Assert.True(SpinWait.SpinUntil(() => QuietFor(rig.Provider.Writer, TimeSpan.FromMilliseconds(500)), Patience), "The idle writer keeps waking up.");

        rig.Logger.LogInformation("second");
        Assert.True(SpinWait.SpinUntil(() => rig.Output.Lines.Length == 2, Patience));
    }

    [Fact]
    public async Task A_failing_stream_neither_throws_at_nor_blocks_the_loggers()
    {
        using var rig = new ConsoleLogRig(
            logging => logging.Services.Configure<ConsoleLoggerOptions>(o => (o.MaxQueueLength, o.LogToStandardErrorThreshold) = (10, LogLevel.Error)),
            output: new RecordingStream { Failing = true });

        // Ten entries fill the queue: in Wait mode only writes that end (failed or not) make room.
        await Task.Run(() =>
        {
            for (var i = 0; i < 1_000; i++)
            {
                rig.Logger.LogInformation("entry {Number}", i);
            }
        }).WaitAsync(Patience);

        rig.Logger.LogError("to standard error, which still works");
        rig.Provider.Dispose();
        Assert.Empty(rig.Output.Lines);
        Assert.Equal(["to standard error, which still works"], ConsoleLogRig.Messages(rig.Error));
    }

    [Fact]
    public void Scopes_reach_the_formatter()
    {
        using var rig = new ConsoleLogRig(logging => logging.AddJsonConsole(json => json.IncludeScopes = true));
        using var factory = new LoggerFactory([rig.Provider]);
        var logger = factory.CreateLogger("Test");

        using (logger.BeginScope("request {RequestId}", "r-42"))
        {
            logger.LogInformation("inside");
        }

        logger.LogInformation("outside");
        rig.Provider.Dispose();

        var lines = rig.Output.Lines.Select(line => JsonNode.Parse(line)!).ToList();
        Assert.Equal("r-42", lines[0]["Scopes"]![0]!["RequestId"]!.GetValue<string>());
        Assert.DoesNotContain("r-42", lines[1].ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_formatter_follows_a_reload_of_the_options()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console:FormatterName"] = "simple" }).Build();
        using var rig = new ConsoleLogRig(logging => logging.AddConfiguration(configuration.GetSection("Logging")));

        rig.Logger.LogInformation("before");
        configuration["Logging:Console:FormatterName"] = "json";
        configuration.Reload();
        Assert.True(SpinWait.SpinUntil(() => rig.Provider.Current.Formatter.Name == ConsoleFormatterNames.Json, Patience));
        rig.Logger.LogInformation("after");
        rig.Provider.Dispose();

        var lines = rig.Output.Lines;
        Assert.Equal("info: Test[0] before", lines[0]);
        Assert.Equal("after", JsonNode.Parse(lines[1])!["Message"]!.GetValue<string>());
    }

    [Fact]
    public void AddBatchedConsole_replaces_only_the_built_in_console_provider_and_keeps_console_filters()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console:LogLevel:Default"] = "Warning" }).Build();
        using var services = new ServiceCollection().AddLogging(logging =>
        {
            logging.AddConfiguration(configuration.GetSection("Logging"));
            logging.AddConsole();
            logging.AddDebug();
            logging.AddBatchedConsole();
        }).BuildServiceProvider();

        var providers = services.GetServices<ILoggerProvider>().Select(p => p.GetType()).ToList();
        Assert.Equal([typeof(DebugLoggerProvider), typeof(BatchedConsoleLoggerProvider)], providers);

        // The Debug provider is off without a debugger: what is enabled is the console's, filtered as "Console".
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Test");
        Assert.False(logger.IsEnabled(LogLevel.Information));
        Assert.True(logger.IsEnabled(LogLevel.Warning));
    }

    [Fact]
    public async Task The_program_writes_its_logs_as_json_lines_with_the_audit_events_on_standard_output()
    {
        var directory = CaravanApp.NewDataDirectory();
        var key = Unique.ApiKey();
        var settings = TestStore.NewStoreSettings(directory);
        settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key");
        settings["Caravan:BootstrapApiKey"] = key;
        settings["Logging:Console:FormatterName"] = "json";
        var migrated = await CaravanProcess.RunAsync(settings, directory, "migrate");
        Assert.True(migrated.ExitCode == 0, migrated.Error);

        using var server = await CaravanProcess.Server.StartAsync(settings, directory);
        using var http = server.Client(key);
        var id = await http.CreateSourceAsync("""{"type": "mysql", "hostname": "db", "username": "u", "password": "p", "database_name": "d"}""");

        JsonNode? audit = null;
        Assert.True(
            SpinWait.SpinUntil(() => (audit = AuditEvent(server.Output, id)) is not null, Patience),
            "No audit event on standard output: " + string.Join('\n', server.Output));
        Assert.Equal(
            (7001, "Information", "create", "default"),
            (audit!["EventId"]!.GetValue<int>(), audit["LogLevel"]!.GetValue<string>(), audit["State"]!["Action"]!.GetValue<string>(),
                audit["State"]!["Organization"]!.GetValue<string>()));
        Assert.All(server.Output.Where(line => line.Length > 0), line => Assert.NotNull(JsonNode.Parse(line)!["Category"]));
    }

    [GeneratedRegex(@"^info: Test\[0\] t(?<thread>\d) n(?<number>\d+) x{200}$")]
    private static partial Regex Entry();

    private static bool QuietFor(ConsoleBatchWriter writer, TimeSpan span)
    {
        var before = writer.WakeUps;
        Thread.Sleep(span);
        return writer.WakeUps == before;
    }

    private static JsonNode? AuditEvent(IEnumerable<string> lines, long sourceId)
    {
        foreach (var line in lines.Where(l => l.Contains(AuditLog.Category, StringComparison.Ordinal)))
        {
            try
            {
                var entry = JsonNode.Parse(line)!;
                if (entry["Category"]?.GetValue<string>() == AuditLog.Category && entry["State"]?["SourceId"]?.GetValue<long>() == sourceId)
                {
                    return entry;
                }
            }
            catch (JsonException)
            {
                // Not a JSON line: the assertion on every line says so.
            }
        }

        return null;
    }
}
