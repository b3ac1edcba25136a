using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The tls group on CLICKHOUSE, against ClickHouse 18.16's HTTPS port with a certificate from a
/// private CA (<see cref="TlsClickHouse"/>): the group makes requests HTTPS whatever <c>secure</c>
/// says, the certificate is checked by the group's callback on the HTTP handler, and each distinct
/// group has a client of its own.
/// </summary>
public sealed class ClickHouseTlsTests(CaravanApp app)
{
    private readonly TlsClickHouse _server = new();

    [Fact]
    public async Task Verify_full_with_the_private_ca_passes_every_step_and_queries_run_over_it()
    {
        Assert.SkipWhen(TlsClickHouse.Missing, TlsClickHouse.NoServer);
        var org = await app.NewOrganizationAsync();
        // Not a port secure defaults to true on: the group alone asks for HTTPS.
        var id = await org.Http.CreateSourceAsync(_server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full", ["ca_certificate"] = _server.AuthorityPem }));

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
        Assert.Equal("The connection is encrypted; the server's certificate is signed by the CA and names the host.",
            Reports.Step(report, "tls")["message"]!.GetValue<string>());
        var answer = await org.Http.QueryAsync(id, "SELECT 41 + 1", HttpStatusCode.OK);
        Assert.Equal(42, QueryKit.Rows(answer)[0]![0]!.GetValue<int>());
        await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Verify_full_without_the_ca_fails_at_tls_with_the_reason_everywhere()
    {
        Assert.SkipWhen(TlsClickHouse.Missing, TlsClickHouse.NoServer);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(_server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full" }));

        // The CA's name is not compared: the test server's password ("caravan-ch-...") shares
        // letters with it, and the scrubber masks any run of a secret's characters in a message.
        await TlsCases.AssertRefusedEverywhereAsync(org.Http, id, "The server's certificate was refused: the server's certificate (CN=127.0.0.1, issued by CN=");
        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);
        Assert.Contains(") is not signed by a CA this system trusts (set tls.ca_certificate)", Reports.Step(report, "tls")["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_full_refuses_an_address_the_certificate_does_not_name_and_verify_ca_accepts_it()
    {
        Assert.SkipWhen(TlsClickHouse.Missing, TlsClickHouse.NoServer);
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertNameCheckedAsync(org.Http, _server);
    }

    [Fact]
    public async Task A_ca_other_than_the_servers_is_refused()
    {
        Assert.SkipWhen(TlsClickHouse.Missing, TlsClickHouse.NoServer);
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertOtherCaRefusedAsync(org.Http, _server);
    }

    [Fact]
    public async Task Sources_with_different_tls_groups_never_share_a_client()
    {
        Assert.SkipWhen(TlsClickHouse.Missing, TlsClickHouse.NoServer);
        var org = await app.NewOrganizationAsync();
        var unverified = await org.Http.CreateSourceAsync(_server.Body("127.0.0.1", new JsonObject { ["mode"] = "require" }));
        var verified = await org.Http.CreateSourceAsync(_server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full" }));

        // The first source's client holds a TLS connection the second source's settings would refuse.
        await org.Http.QueryAsync(unverified, "SELECT 1", HttpStatusCode.OK);
        var query = await org.Http.QueryAsync(verified, "SELECT 1", HttpStatusCode.BadGateway);
        var plain = await org.Http.PostJsonAsync("/api/v1/sources/test/", _server.Body("127.0.0.1", new JsonObject { ["mode"] = "disable" })).Expect(HttpStatusCode.OK);

        Assert.Equal("tls_verify_failed", query["code"]!.GetValue<string>());
        // disable is plain HTTP, which the HTTPS port does not answer.
        Assert.Equal("skipped", Reports.Status(plain, "tls"));
        Assert.Equal("authenticate", Reports.Failed(plain));
    }
}
