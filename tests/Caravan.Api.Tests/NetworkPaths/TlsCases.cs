using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>A test server with TLS whose certificate, signed by a private CA, names 127.0.0.1 and not 127.0.0.2, where it listens too.</summary>
internal interface ITlsServer
{
    /// <summary>The private CA's certificate, PEM.</summary>
    string AuthorityPem { get; }

    /// <summary>A create body for the test's own login on <paramref name="host"/> with <paramref name="tls"/>.</summary>
    string Body(string host, JsonObject? tls);
}

/// <summary>What the tls group does on every type that applies it, checked against the type's test server.</summary>
internal static class TlsCases
{
    /// <summary>A source whose server's certificate is refused fails at <c>tls</c> with <paramref name="reason"/>, and its queries and discovery too.</summary>
    public static async Task AssertRefusedEverywhereAsync(HttpClient http, long id, string reason)
    {
        var report = await http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Assert.Equal("tls", Reports.Failed(report));
        Assert.Equal("tls_verify_failed", Reports.Code(report, "tls"));
        Assert.StartsWith(reason, Reports.Step(report, "tls")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("skipped", Reports.Status(report, "query"));

        var query = await http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal("tls_verify_failed", query["code"]!.GetValue<string>());
        var discovery = await http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        Assert.Equal("tls_verify_failed", discovery["code"]!.GetValue<string>());
    }

    /// <summary>verify-full refuses 127.0.0.2, which the certificate does not name; verify-ca accepts it.</summary>
    public static async Task AssertNameCheckedAsync(HttpClient http, ITlsServer server)
    {
        var full = new JsonObject { ["mode"] = "verify-full", ["ca_certificate"] = server.AuthorityPem };

        var report = await http.PostJsonAsync("/api/v1/sources/test/", server.Body("127.0.0.2", full)).Expect(HttpStatusCode.OK);

        Assert.Equal("tls", Reports.Failed(report));
        Assert.Equal("tls_verify_failed", Reports.Code(report, "tls"));
        Assert.Contains("does not name the host", Reports.Step(report, "tls")["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var ca = new JsonObject { ["mode"] = "verify-ca", ["ca_certificate"] = server.AuthorityPem };
        Reports.AssertPassed(await http.PostJsonAsync("/api/v1/sources/test/", server.Body("127.0.0.2", ca)).Expect(HttpStatusCode.OK));
    }

    /// <summary>A CA other than the one that signed the server's certificate is refused.</summary>
    public static async Task AssertOtherCaRefusedAsync(HttpClient http, ITlsServer server)
    {
        using var other = new PathKeys.Authority("Some other CA");

        var report = await http.PostJsonAsync("/api/v1/sources/test/",
            server.Body("127.0.0.1", new JsonObject { ["mode"] = "verify-ca", ["ca_certificate"] = other.CertificatePem })).Expect(HttpStatusCode.OK);

        Assert.Equal("tls_verify_failed", Reports.Code(report, "tls"));
        Assert.Contains("is not signed by the CA in tls.ca_certificate", Reports.Step(report, "tls")["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    /// <summary>
    /// A login that needs a client certificate passes the test and runs a query with the certificate
    /// and its key, and is refused (<c>auth_failed</c>) once they are removed; neither the key nor
    /// <paramref name="password"/> is in any answer.
    /// </summary>
    public static async Task AssertClientCertificateAsync(CaravanApp app, HttpClient http, ITlsServer server, (string Certificate, string Key) client, string password)
    {
        var withCertificate = new JsonObject
        {
            ["mode"] = "verify-full", ["ca_certificate"] = server.AuthorityPem, ["client_certificate"] = client.Certificate, ["client_key"] = client.Key,
        };

        var id = await http.CreateSourceAsync(server.Body("127.0.0.1", withCertificate));
        var passed = await http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);
        Reports.AssertPassed(passed);
        await http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);

        // The same source without its client certificate: the server refuses the login.
        await http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"tls": {"client_certificate": null, "client_key": null}}""")
            .Expect(HttpStatusCode.OK);
        var refused = await http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);
        Assert.Equal("authenticate", Reports.Failed(refused));
        Assert.Equal("auth_failed", Reports.Code(refused, "authenticate"));
        var query = await http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal("auth_failed", query["code"]!.GetValue<string>());
        app.AssertNoSecrets([passed.ToJsonString(), refused.ToJsonString(), query.ToJsonString()], [.. PathKeys.KeyLines(client.Key), password]);
    }
}
