using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// A source that holds a group its driver does not honour (yet) is never reached around it: the
/// test fails at <c>connect</c>, discovery and queries answer 502, and nothing connects to the
/// database, which is a real server that would otherwise accept the credentials.
/// </summary>
public sealed class UnhonouredGroupTests(CaravanApp app)
{
    private const string Message = "Caravan cannot use ssh_tunnel with PostgreSQL sources yet, and does not connect without it. Remove ssh_tunnel to connect directly.";

    [Fact]
    public async Task A_tunnelled_source_is_not_reached_directly_by_the_test_discovery_or_a_query()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var body = db.Body(b => b["ssh_tunnel"] = new JsonObject
        {
            ["host"] = "bastion.example.com", ["username"] = "jump", ["password"] = PathKeys.Password("b"),
        });

        var unsaved = await org.Http.PostJsonAsync("/api/v1/sources/test/", body).Expect(HttpStatusCode.OK);
        var id = await org.Http.CreateSourceAsync(body);
        var stored = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);
        foreach (var report in new[] { unsaved, stored })
        {
            Assert.False(report["ok"]!.GetValue<bool>());
            Assert.Equal("connect", Reports.Failed(report));
            Assert.Equal(Message, Reports.Step(report, "connect")["message"]!.GetValue<string>());
            Assert.Equal("skipped", Reports.Status(report, "authenticate"));
        }

        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        Assert.Equal(Message, discovery["detail"]!.GetValue<string>());
        var query = await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal(Message, query["detail"]!.GetValue<string>());

        // Without the tunnel the same source connects (removing a tunnel moves nothing the user did not choose).
        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"ssh_tunnel": null}""").Expect(HttpStatusCode.OK);
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);
    }
}
