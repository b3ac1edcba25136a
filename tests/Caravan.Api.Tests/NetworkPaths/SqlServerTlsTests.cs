using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors;
using Caravan.Api.Connectors.SqlServer;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;
using Caravan.Api.Tests.Sources.Types;
using Microsoft.Data.SqlClient;
using static Caravan.Api.Tests.Connectivity.ConnectivityTestKit;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The tls group on MSSQL, without a server (none runs here): the SqlClient settings each mode
/// builds, the pinned server certificate's private file and its removal, the combinations
/// SqlClient cannot honour refused on write, and a certificate refusal mapped to tls_verify_failed.
/// </summary>
public sealed class SqlServerTlsTests(CaravanApp app)
{
    private static JsonObject Body(JsonObject tls, string? connectionString = null)
    {
        var body = connectionString is null
            ? new JsonObject { ["hostname"] = "sql.example.com", ["port"] = 1433, ["username"] = "reporter", ["password"] = PathKeys.Password("db"), ["database_name"] = "sales" }
            : new JsonObject { ["connection_string"] = connectionString };
        body["tls"] = tls;
        return body;
    }

    [Theory]
    [InlineData("disable", "Optional", false, "sql.example.com")]
    [InlineData("require", "Mandatory", true, "sql.example.com")]
    [InlineData("verify-full", "Mandatory", false, "sql.example.com")]
    public void Each_mode_sets_encryption_over_what_the_connection_string_said(string mode, string encrypt, bool trust, string certificateName)
    {
        var connection = Connection("MSSQL", Body(new JsonObject { ["mode"] = mode },
            "Server=tcp:sql.example.com,1433;Database=sales;User ID=reporter;Password=pw;Encrypt=Strict;TrustServerCertificate=" + (!trust)));

        var builder = SqlServerDriver.Build(connection, DatabaseEndpoint.Direct("sql.example.com", IPAddress.Parse("10.1.2.3"), connection.Port), TimeSpan.FromSeconds(5));

        Assert.Equal(SqlConnectionEncryptOption.Parse(encrypt), builder.Encrypt);
        Assert.Equal(trust, builder.TrustServerCertificate);
        Assert.Equal(certificateName, builder.HostNameInCertificate);
        Assert.True(string.IsNullOrEmpty(builder.ServerCertificate));
        Assert.Null(SqlServerTls.Pin(builder, connection));
    }

    [Fact]
    public void A_pinned_server_certificate_goes_to_a_private_file_that_dispose_removes()
    {
        using var authority = new PathKeys.Authority("Caravan SQL test CA");
        var (server, serverKey) = authority.Issue("sql.example.com");
        var connection = Connection("MSSQL", Body(new JsonObject { ["mode"] = "verify-full", ["ca_certificate"] = server }));
        var builder = SqlServerDriver.Build(connection, DatabaseEndpoint.Direct("sql.example.com", IPAddress.Parse("10.1.2.3"), connection.Port), TimeSpan.FromSeconds(5));

        var pinned = SqlServerTls.Pin(builder, connection);

        Assert.NotNull(pinned);
        Assert.Equal(pinned.Path, builder.ServerCertificate);
        Assert.Equal(server, File.ReadAllText(pinned.Path));
        Assert.DoesNotContain("PRIVATE KEY", File.ReadAllText(pinned.Path), StringComparison.Ordinal);
        Assert.DoesNotContain(PathKeys.KeyLines(serverKey).First(), builder.ConnectionString, StringComparison.Ordinal);
        var directory = Path.GetDirectoryName(pinned.Path)!;
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(pinned.Path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
        }

        pinned.Dispose();

        Assert.False(Directory.Exists(directory));
        pinned.Dispose();
    }

    [Fact]
    public async Task What_sqlclient_cannot_honour_is_refused_on_write_on_its_member_and_nothing_is_stored()
    {
        using var authority = new PathKeys.Authority("Caravan SQL test CA");
        var (server, _) = authority.Issue("sql.example.com");
        var (client, clientKey) = authority.Issue("reporter", client: true);
        var org = await app.NewOrganizationAsync();

        async Task<JsonNode> RefusedAsync(JsonObject tls)
        {
            var body = Body(tls);
            body["type"] = "MSSQL";
            return await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        }

        var withClient = await RefusedAsync(new JsonObject
        {
            ["mode"] = "verify-full", ["ca_certificate"] = server, ["client_certificate"] = client, ["client_key"] = clientKey,
        });
        Assert.Equal(["tls.client_certificate"], TypeCatalog.ErrorKeys(withClient));
        Assert.StartsWith("SQL Server does not log users in by TLS client certificate", TypeCatalog.Messages(withClient, "tls.client_certificate").Single(), StringComparison.Ordinal);
        Assert.DoesNotContain(PathKeys.KeyLines(clientKey).First(), withClient.ToJsonString(), StringComparison.Ordinal);

        var withCa = await RefusedAsync(new JsonObject { ["mode"] = "verify-full", ["ca_certificate"] = authority.CertificatePem });
        Assert.Equal(["tls.ca_certificate"], TypeCatalog.ErrorKeys(withCa));
        Assert.StartsWith("SQL Server's client cannot trust a private CA", TypeCatalog.Messages(withCa, "tls.ca_certificate").Single(), StringComparison.Ordinal);

        var verifyCa = await RefusedAsync(new JsonObject { ["mode"] = "verify-ca" });
        Assert.Equal(["tls.mode"], TypeCatalog.ErrorKeys(verifyCa));

        Assert.Equal(0, (await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());

        // The server's own certificate is taken (pinned), with verify-ca as with verify-full, and read
        // back as any certificate; a tunnel beside it as on every type with a host and port.
        var pinnedBody = Body(new JsonObject { ["mode"] = "verify-ca", ["ca_certificate"] = server });
        pinnedBody["type"] = "MSSQL";
        var tunnelPassword = PathKeys.Password("tunnel");
        pinnedBody["ssh_tunnel"] = new JsonObject { ["host"] = "bastion.example.com", ["username"] = "jump", ["password"] = tunnelPassword };
        var id = await org.Http.CreateSourceAsync(pinnedBody.ToJsonString());
        var (read, text, _) = await ConfigReadbackTests.ReadAsync(org, id);
        Assert.Equal("CN=sql.example.com", read["config"]!["tls"]!["ca_certificate"]![0]!["subject"]!.GetValue<string>());
        Assert.Equal("bastion.example.com", read["config"]!["ssh_tunnel"]!["host"]!.GetValue<string>());
        Assert.True(read["secrets"]!["ssh_tunnel"]!["password"]!["set"]!.GetValue<bool>());
        Assert.DoesNotContain(tunnelPassword, text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_certificate_sqlclient_refused_is_tls_verify_failed_when_the_group_asks_for_checks()
    {
        var handshake = SqlServerDriver.Map([new SqlServerError(0, 20,
            "A connection was successfully established with the server, but then an error occurred during the pre-login handshake. (provider: SSL Provider, error: 0 - The certificate chain was issued by an authority that is not trusted.)")],
            new InvalidOperationException("outer"));
        Assert.Equal(FailureCodes.TlsFailed, handshake.Code);

        var verified = SqlServerTls.Refusal(handshake, Connection("MSSQL", Body(new JsonObject { ["mode"] = "verify-full" })));
        Assert.Equal(FailureCodes.TlsVerifyFailed, verified.Code);
        Assert.Equal(TestSteps.Tls, verified.Step);
        Assert.StartsWith("The server's certificate was refused: The TLS handshake failed (", verified.Message, StringComparison.Ordinal);
        Assert.Contains("not trusted", verified.Message, StringComparison.Ordinal);

        // require checks nothing: a TLS failure there is not a refusal of the certificate.
        Assert.Same(handshake, SqlServerTls.Refusal(handshake, Connection("MSSQL", Body(new JsonObject { ["mode"] = "require" }))));
        var login = SqlServerDriver.Map([new SqlServerError(18456, 14, "Login failed")], new InvalidOperationException("outer"));
        Assert.Same(login, SqlServerTls.Refusal(login, Connection("MSSQL", Body(new JsonObject { ["mode"] = "verify-full" }))));
    }
}
