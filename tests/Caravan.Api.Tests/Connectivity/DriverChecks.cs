using System.Diagnostics;
using System.Net;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// The checks that the tests of several drivers make alike, against a loopback port instead of their
/// server. <c>body(port, password)</c> is a create body of the driver's type for 127.0.0.1 at that port.
/// </summary>
internal static class DriverChecks
{
    /// <summary>A test and a discovery of a source at a closed port fail with port_closed (the test at connect), and its password is in no answer or log line.</summary>
    public static async Task AssertClosedPortIsPortClosedAsync(CaravanApp app, Func<int, string, string> body)
    {
        var org = await app.NewOrganizationAsync();
        var password = Unique.Secret("closed-");
        var source = body(Loopback.ClosedPort(), password);

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", source).Expect(HttpStatusCode.OK);
        var id = await org.Http.CreateSourceAsync(source);
        var discovery = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);

        Reports.AssertFailedAt(report, "connect", "port_closed");
        Assert.Equal("port_closed", discovery["code"]!.GetValue<string>());
        app.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], password);
    }

    /// <summary>
    /// Against a server that accepts and never answers, with a 3 s deadline, a stored source's test
    /// fails at authenticate with timeout and its discovery answers timeout, each within 5 s, and its
    /// password is in no answer or log line.
    /// </summary>
    public static async Task AssertSilentServerTimesOutAsync(Func<int, string, string> body)
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "3" });
        using var silent = LoopbackListener.Silent();
        var org = await own.NewOrganizationAsync();
        var password = Unique.Secret("silent-");
        var id = await org.Http.CreateSourceAsync(body(silent.Port, password));

        var clock = Stopwatch.StartNew();
        var report = await org.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var testTime = clock.Elapsed;
        clock.Restart();
        var discovery = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);
        var discoveryTime = clock.Elapsed;

        Reports.AssertFailedAt(report, "authenticate", "timeout");
        Assert.True(testTime < TimeSpan.FromSeconds(5), $"The test took {testTime}.");
        Assert.True(discovery["code"]!.GetValue<string>() == "timeout", discovery.ToJsonString());
        Assert.True(discoveryTime < TimeSpan.FromSeconds(5), $"Discovery took {discoveryTime}.");
        own.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], password);
    }
}
