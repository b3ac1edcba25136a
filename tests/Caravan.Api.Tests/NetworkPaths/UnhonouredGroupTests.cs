using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// A source that holds a group is never reached around it: with a bastion that cannot be reached,
/// the test fails at <c>ssh_connect</c>, discovery and queries answer 502, and nothing connects to
/// the database directly, which is a real server that would otherwise accept the credentials. (A
/// group a driver does not honour is refused the same way, before any connection.)
/// </summary>
public sealed class UnhonouredGroupTests(CaravanApp app)
{
    [Fact]
    public async Task A_tunnelled_source_is_not_reached_directly_by_the_test_discovery_or_a_query()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var closed = ClosedPort();
        var body = db.Body(b => b["ssh_tunnel"] = new JsonObject
        {
            ["host"] = "127.0.0.1", ["port"] = closed, ["username"] = "jump", ["password"] = PathKeys.Password("b"),
            ["host_key"] = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
        });

        var unsaved = await org.Http.PostJsonAsync("/api/v1/sources/test/", body).Expect(HttpStatusCode.OK);
        var id = await org.Http.CreateSourceAsync(body);
        var stored = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);
        foreach (var report in new[] { unsaved, stored })
        {
            Assert.False(report["ok"]!.GetValue<bool>());
            Assert.Equal("ssh_connect", Reports.Failed(report));
            Assert.Equal("port_closed", Reports.Code(report, "ssh_connect"));
            Assert.Equal("skipped", Reports.Status(report, "authenticate"));
            Assert.DoesNotContain(report["steps"]!.AsArray(), s => s!["name"]!.GetValue<string>() == "connect");
        }

        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        Assert.Equal("port_closed", discovery["code"]!.GetValue<string>());
        var query = await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal("port_closed", query["code"]!.GetValue<string>());

        // Without the tunnel the same source connects (removing a tunnel moves nothing the user did not choose).
        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"ssh_tunnel": null}""").Expect(HttpStatusCode.OK);
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);
    }

    /// <summary>A loopback port nothing listens on (bound, then released).</summary>
    private static int ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
