using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// A Caravan killed with SIGKILL in the middle of writes (no shutdown, nothing flushed on the way
/// out) loses nothing it acknowledged: after each of three kills it starts again on the same store
/// and master key, every create that was answered is there, and every source holds the last change
/// that was answered or the one in flight when the process died — never an older one, never a mix
/// of two, and its secret still decrypts to the value sent with that change.
/// </summary>
public sealed class CrashTests
{
    private const int Writers = 6;

    [Fact]
    public async Task Three_kill_9_runs_in_the_middle_of_writes_lose_nothing_that_was_answered()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "SIGKILL of a process: Unix only.");
        var directory = CaravanApp.NewDataDirectory();
        var key = Unique.ApiKey();
        var settings = TestStore.NewStoreSettings(directory);
        settings["Caravan:BootstrapApiKey"] = key;
        settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key");
        settings["Caravan:RateLimits:Enabled"] = "false";
        var sources = new Dictionary<long, Acknowledged>();

        for (var run = 0; run < 3; run++)
        {
            using var server = await CaravanProcess.Server.StartAsync(settings, directory);
            using var http = server.Client(key);
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, Writers).Select(w => WriteUntilKilledAsync(http, w, run, stop.Token)).ToList();

            // Let the writes get going, then kill the process where it stands.
            await Task.Delay(TimeSpan.FromMilliseconds(600 + (run * 400)), TestContext.Current.CancellationToken);
            using (var kill = Process.Start("kill", ["-KILL", server.ProcessId.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            await stop.CancelAsync();
            foreach (var written in await Task.WhenAll(writers))
            {
                foreach (var (id, acknowledged) in written)
                {
                    sources[id] = acknowledged;
                }
            }
        }

        Assert.True(sources.Values.Sum(s => s.Change) >= Writers, $"Too few writes were answered before the kills to test anything: {sources.Count} sources.");

        // Started again on the same store: everything answered is there, as answered or one change later.
        var verify = new Dictionary<string, string?>(settings);
        verify.Remove("Caravan:BootstrapApiKey");
        await using var app = new OwnCaravan(directory, verify);
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        foreach (var (id, acknowledged) in sources)
        {
            var config = await client.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative), TestContext.Current.CancellationToken)
                .Expect(HttpStatusCode.OK);
            var host = config["config"]!["hostname"]!.GetValue<string>();
            var change = int.Parse(host.Split('.')[0].Split('-')[^1], CultureInfo.InvariantCulture);
            Assert.True(change == acknowledged.Change || change == acknowledged.Change + 1,
                $"Source {id}: the last answered change was {acknowledged.Change}, the store holds {change}.");
            Assert.Equal(Password(acknowledged.Writer, acknowledged.Run, change), await app.RevealAsync(id, "password"));
        }
    }

    private sealed record Acknowledged(int Writer, int Run, int Change);

    private static string Host(int writer, int run, int change) => $"w{writer}r{run}-{change}.example.com";

    private static string Password(int writer, int run, int change) => $"crash-secret-{writer}-{run}-{change}";

    /// <summary>One source per writer and run: created, then changed (host and password together) until the process dies.</summary>
    private static async Task<Dictionary<long, Acknowledged>> WriteUntilKilledAsync(HttpClient http, int writer, int run, CancellationToken stop)
    {
        var answered = new Dictionary<long, Acknowledged>();
        try
        {
            var created = await http.PostAsync(new Uri("/api/v1/sources/", UriKind.Relative), Json(new JsonObject
            {
                ["type"] = "postgres", ["hostname"] = Host(writer, run, 0), ["username"] = "u", ["password"] = Password(writer, run, 0), ["database_name"] = "d",
            }), stop);
            if (created.StatusCode != HttpStatusCode.OK)
            {
                return answered;
            }

            var id = (await created.JsonAsync())["id"]!.GetValue<long>();
            answered[id] = new Acknowledged(writer, run, 0);
            for (var change = 1; !stop.IsCancellationRequested; change++)
            {
                using var updated = await http.PatchAsync(new Uri(SourceRoutes.Url(id, "update-config"), UriKind.Relative), Json(new JsonObject
                {
                    ["hostname"] = Host(writer, run, change), ["password"] = Password(writer, run, change),
                }), stop);
                if (updated.StatusCode != HttpStatusCode.OK)
                {
                    break;
                }

                answered[id] = new Acknowledged(writer, run, change);
            }
        }
        catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException or IOException)
        {
            // The process was killed: what was answered before is what counts.
        }

        return answered;
    }

    private static StringContent Json(JsonObject body) => new(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
}
