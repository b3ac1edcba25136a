using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The tls group on MYSQL and SINGLESTORE, against a real MariaDB whose certificate a private CA
/// signed (<see cref="TlsMySql"/>): MySqlConnector is asked to encrypt, the group's callback checks
/// the certificate against the CA held in memory and the host name the user gave, the client
/// certificate is handed over in memory, and a refused certificate is <c>tls_verify_failed</c>
/// with the reason in the test, discovery and the query route alike.
/// </summary>
public sealed class MySqlTlsTests(CaravanApp app)
{
    private const string CipherQuery = "SHOW SESSION STATUS LIKE 'Ssl_cipher'";

    [Theory]
    [InlineData("mysql")]
    [InlineData("singlestore")]
    public async Task Verify_full_with_the_private_ca_passes_every_step_and_queries_run_over_it(string type)
    {
        Assert.SkipWhen(TlsMySql.Missing, TlsMySql.NoServer);
        await using var server = await TlsMySql.CreateAsync(ssl: true);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full", ["ca_certificate"] = TlsMySql.AuthorityPem }, type));

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
        var message = Reports.Step(report, "tls")["message"]!.GetValue<string>();
        Assert.StartsWith("The connection is encrypted (TLS", message, StringComparison.Ordinal);
        Assert.EndsWith("); the server's certificate is signed by the CA and names the host.", message, StringComparison.Ordinal);
        var answer = await org.Http.QueryAsync(id, CipherQuery, HttpStatusCode.OK);
        Assert.NotEqual("", QueryKit.Rows(answer)[0]![1]!.GetValue<string>());
        var schemas = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Contains(server.Database, schemas.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_full_without_the_ca_fails_at_tls_with_the_reason_everywhere()
    {
        Assert.SkipWhen(TlsMySql.Missing, TlsMySql.NoServer);
        await using var server = await TlsMySql.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full" }));

        await TlsCases.AssertRefusedEverywhereAsync(org.Http, id,
            "The server's certificate was refused: the server's certificate (CN=127.0.0.1, issued by CN=Caravan test CA) is not signed by a CA this system trusts");
    }

    [Fact]
    public async Task Verify_full_refuses_an_address_the_certificate_does_not_name_and_verify_ca_accepts_it()
    {
        Assert.SkipWhen(TlsMySql.Missing, TlsMySql.NoServer);
        await using var server = await TlsMySql.CreateAsync();
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertNameCheckedAsync(org.Http, server);
    }

    [Fact]
    public async Task A_ca_other_than_the_servers_is_refused()
    {
        Assert.SkipWhen(TlsMySql.Missing, TlsMySql.NoServer);
        await using var server = await TlsMySql.CreateAsync();
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertOtherCaRefusedAsync(org.Http, server);
    }

    [Fact]
    public async Task Client_certificate_authentication_passes_with_the_key_and_fails_without()
    {
        Assert.SkipWhen(TlsMySql.Missing, TlsMySql.NoServer);
        await using var server = await TlsMySql.CreateAsync(subject: true);
        var org = await app.NewOrganizationAsync();

        await TlsCases.AssertClientCertificateAsync(app, org.Http, server, server.ClientCertificate(), server.Password);
    }

    [Fact]
    public async Task Disable_does_not_encrypt_so_a_user_that_requires_ssl_is_refused_and_require_encrypts_without_checks()
    {
        Assert.SkipWhen(TlsMySql.Missing, TlsMySql.NoServer);
        await using var server = await TlsMySql.CreateAsync(ssl: true);
        var org = await app.NewOrganizationAsync();

        var disabled = await org.Http.PostJsonAsync("/api/v1/sources/test/",
            server.Body("127.0.0.1", new JsonObject { ["mode"] = "disable" })).Expect(HttpStatusCode.OK);
        Assert.Equal("authenticate", Reports.Failed(disabled));
        Assert.Equal("auth_failed", Reports.Code(disabled, "authenticate"));

        // require checks nothing: the server's certificate, from a CA Caravan was not given, is accepted.
        var required = await org.Http.PostJsonAsync("/api/v1/sources/test/",
            server.Body("127.0.0.2", new JsonObject { ["mode"] = "require" })).Expect(HttpStatusCode.OK);
        Reports.AssertPassed(required);
        Assert.StartsWith("The connection is encrypted (TLS", Reports.Step(required, "tls")["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sources_that_differ_only_in_tls_never_share_a_pooled_session()
    {
        Assert.SkipWhen(TlsMySql.Missing, TlsMySql.NoServer);
        await using var server = await TlsMySql.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var unverified = await org.Http.CreateSourceAsync(server.Body("127.0.0.1", new JsonObject { ["mode"] = "require" }));
        var verified = await org.Http.CreateSourceAsync(server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-full" }));

        // The first source's pool holds an encrypted session the second source's settings would refuse.
        await org.Http.QueryAsync(unverified, "SELECT 1", HttpStatusCode.OK);
        var query = await org.Http.QueryAsync(verified, "SELECT 1", HttpStatusCode.BadGateway);

        Assert.Equal("tls_verify_failed", query["code"]!.GetValue<string>());
    }
}
