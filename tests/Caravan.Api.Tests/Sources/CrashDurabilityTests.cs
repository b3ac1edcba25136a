using System.Globalization;
using System.Net;
using Caravan.Api.Tests.Files;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// A 200 means committed to disk, group commit or not: writers update-config with increasing
/// values, Caravan (its own process) is killed with SIGKILL in the middle of the load and
/// restarted on the same files, and every value answered 200 before the kill is there, or a later
/// one. Five crashes in a row on one store, whichever store the run uses.
/// </summary>
public sealed class CrashDurabilityTests
{
    private const int Writers = 8;
    private const int Crashes = 5;

    [Fact]
    public async Task Every_update_answered_200_before_a_SIGKILL_survives_the_restart()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "SIGKILL of a process: Unix only.");
        var directory = CaravanApp.NewDataDirectory();
        var (settings, key) = FileStreamingTests.Settings(directory);
        var ids = new long[Writers];
        var answered = new long[Writers];
        using (var server = await CaravanProcess.Server.StartAsync(settings, directory))
        {
            using var http = server.Client(key);
            for (var i = 0; i < Writers; i++)
            {
                ids[i] = await http.CreateSourceAsync(
                    """{"type": "postgres", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "v0"}""");
            }

            await server.StopAsync();
        }

        for (var crash = 1; crash <= Crashes; crash++)
        {
            using (var server = await CaravanProcess.Server.StartAsync(settings, directory))
            {
                await AssertSurvivedAsync(server, key, ids, answered, crash - 1);
                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, Writers).Select(i => WriteAsync(server, key, ids[i], answered, i, stop.Token)).ToArray();

                // Mid-load: every writer has had answers, and all are still sending.
                var started = answered.ToArray();
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                while (Enumerable.Range(0, Writers).Any(i => Volatile.Read(ref answered[i]) < started[i] + 20))
                {
                    await Task.Delay(10, limit.Token);
                }

                await server.KillAsync();
                await stop.CancelAsync();
                await Task.WhenAll(writers);
            }
        }

        using (var server = await CaravanProcess.Server.StartAsync(settings, directory))
        {
            await AssertSurvivedAsync(server, key, ids, answered, Crashes);
            await server.StopAsync();
        }
    }

    /// <summary>One writer: update-config of its source with 1, 2, 3, … until the server is gone; the last value answered 200.</summary>
    private static async Task WriteAsync(CaravanProcess.Server server, string key, long id, long[] answered, int writer, CancellationToken stop)
    {
        using var http = server.Client(key);
        var value = Volatile.Read(ref answered[writer]);
        while (!stop.IsCancellationRequested)
        {
            value++;
            try
            {
                using var response = await http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), $$"""{"database_name": "v{{value}}"}""");
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    Assert.Fail($"update-config answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(stop)}");
                }

                Volatile.Write(ref answered[writer], value);
            }
            catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException or IOException)
            {
                // The server is gone (killed): what it answered before is what must survive.
                return;
            }
        }
    }

    private static async Task AssertSurvivedAsync(CaravanProcess.Server server, string key, long[] ids, long[] answered, int crashes)
    {
        using var http = server.Client(key);
        for (var i = 0; i < ids.Length; i++)
        {
            var config = await http.GetAsync(new Uri(SourceRoutes.Url(ids[i], "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
            var stored = long.Parse(config["config"]!["database_name"]!.GetValue<string>()[1..], CultureInfo.InvariantCulture);
            Assert.True(
                stored >= answered[i],
                $"After {crashes} crash(es), source {ids[i]} holds v{stored}, but v{answered[i]} had been answered 200 before the kill.");
        }
    }
}
