using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The tls group on PostgreSQL, against a real cluster with <c>ssl = on</c> and a private CA
/// (<see cref="TlsPostgres"/>): the CA and the client certificate are handed to Npgsql in memory,
/// verify-full checks the chain and the host name, and a refused certificate is
/// <c>tls_verify_failed</c> with the reason, in the test, discovery and the query route alike.
/// </summary>
public sealed class PostgresTlsTests(CaravanApp app)
{
    [Fact]
    public async Task Verify_full_with_the_private_ca_passes_every_step_and_queries_run_over_it()
    {
        Assert.SkipWhen(TlsPostgres.Missing, TlsPostgres.NoServer);
        await using var server = await TlsPostgres.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full", ["ca_certificate"] = TlsPostgres.AuthorityPem }));

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
        Assert.Equal("The connection is encrypted; the server's certificate is signed by the CA and names the host.",
            Reports.Step(report, "tls")["message"]!.GetValue<string>());
        var answer = await org.Http.QueryAsync(id, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", HttpStatusCode.OK);
        Assert.True(QueryKit.Rows(answer)[0]![0]!.GetValue<bool>());
        await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Verify_full_without_the_ca_fails_at_tls_with_the_reason_everywhere()
    {
        Assert.SkipWhen(TlsPostgres.Missing, TlsPostgres.NoServer);
        await using var server = await TlsPostgres.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full" }));

        await TlsCases.AssertRefusedEverywhereAsync(org.Http, id,
            "The server's certificate was refused: the server's certificate (CN=127.0.0.1, issued by CN=Caravan test CA) is not signed by a CA this system trusts");
    }

    [Fact]
    public async Task Verify_full_refuses_a_host_the_certificate_does_not_name_and_verify_ca_accepts_it()
    {
        Assert.SkipWhen(TlsPostgres.Missing, TlsPostgres.NoServer);
        await using var server = await TlsPostgres.CreateAsync();
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertNameCheckedAsync(org.Http, server);
    }

    [Fact]
    public async Task A_ca_other_than_the_servers_is_refused()
    {
        Assert.SkipWhen(TlsPostgres.Missing, TlsPostgres.NoServer);
        await using var server = await TlsPostgres.CreateAsync();
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertOtherCaRefusedAsync(org.Http, server);
    }

    [Fact]
    public async Task Client_certificate_authentication_passes_with_the_key_and_fails_without()
    {
        Assert.SkipWhen(TlsPostgres.Missing, TlsPostgres.NoServer);
        await using var server = await TlsPostgres.CreateAsync(certified: true);
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertClientCertificateAsync(app, org.Http, server, server.ClientCertificate(), server.Password);
    }
}
