using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors;
using Caravan.Api.Connectors.MongoDb;
using static Caravan.Api.Tests.Connectivity.ConnectivityTestKit;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The tls group on MONGODB, without a server (none runs here): the driver settings it builds
/// over the user's own (TLS on or off, never insecure, the group's callback and client certificate
/// in memory), and a refusal by that callback mapped to tls_verify_failed.
/// </summary>
public sealed class MongoDbTlsTests
{
    private static JsonObject Body(JsonObject tls, string? connectionString = null)
    {
        var body = connectionString is null
            ? new JsonObject { ["hostname"] = "mongo.example.com", ["port"] = 27017, ["username"] = "reader", ["password"] = PathKeys.Password("db"), ["database_name"] = "orders" }
            : new JsonObject { ["connection_string"] = connectionString };
        body["tls"] = tls;
        return body;
    }

    [Fact]
    public void Verify_full_turns_tls_on_with_the_groups_callback_and_client_certificate()
    {
        using var authority = new PathKeys.Authority("Caravan Mongo test CA");
        using var other = new PathKeys.Authority("Some other CA");
        var (client, clientKey) = authority.Issue("reader", client: true);
        var connection = Connection("MONGODB", Body(new JsonObject
        {
            ["mode"] = "verify-full", ["ca_certificate"] = authority.CertificatePem, ["client_certificate"] = client, ["client_key"] = clientKey,
        }));

        var settings = MongoDbDriver.Settings(connection);

        Assert.True(settings.UseTls);
        Assert.False(settings.AllowInsecureTls);
        var presented = Assert.IsType<X509Certificate2>(Assert.Single(settings.SslSettings.ClientCertificates));
        Assert.True(presented.HasPrivateKey);
        Assert.Equal("CN=reader", presented.Subject);
        var callback = settings.SslSettings.ServerCertificateValidationCallback;
        using var server = Certificate(authority.Issue("mongo.example.com").CertificatePem);
        using var foreign = Certificate(other.Issue("mongo.example.com").CertificatePem);
        Assert.True(callback(this, server, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.Contains("is not signed by the CA in tls.ca_certificate",
            Assert.Throws<TlsVerificationException>(() => callback(this, foreign, null, SslPolicyErrors.RemoteCertificateChainErrors)).Message, StringComparison.Ordinal);
        Assert.Contains("does not name the host",
            Assert.Throws<TlsVerificationException>(() => callback(this, server, null, SslPolicyErrors.RemoteCertificateNameMismatch)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_group_wins_over_the_connection_strings_tls_options()
    {
        var insecure = Connection("MONGODB", Body(new JsonObject { ["mode"] = "require" },
            "mongodb://reader:pw@mongo.example.com:27017/orders?tls=false"));
        var required = MongoDbDriver.Settings(insecure);
        Assert.True(required.UseTls);
        Assert.False(required.AllowInsecureTls);
        using var anyone = new PathKeys.Authority("Anyone");
        using var anyCertificate = Certificate(anyone.CertificatePem);
        Assert.True(required.SslSettings.ServerCertificateValidationCallback(this, anyCertificate, null, SslPolicyErrors.RemoteCertificateChainErrors));

        var disabled = MongoDbDriver.Settings(Connection("MONGODB", Body(new JsonObject { ["mode"] = "disable" },
            "mongodb://reader:pw@mongo.example.com:27017/orders?tls=true&tlsInsecure=true")));
        Assert.False(disabled.UseTls);
        Assert.False(disabled.AllowInsecureTls);

        var verified = MongoDbDriver.Settings(Connection("MONGODB", Body(new JsonObject { ["mode"] = "verify-full" },
            "mongodb://reader:pw@mongo.example.com:27017/orders?tls=true&tlsInsecure=true")));
        Assert.True(verified.UseTls);
        Assert.False(verified.AllowInsecureTls);
    }

    [Fact]
    public void A_certificate_the_group_refused_is_tls_verify_failed_at_the_tls_step()
    {
        var failure = MongoDbDriver.Map(new TimeoutException("A timeout occurred after 30000ms selecting a server"), null,
            new IOException("The connection failed", new TlsVerificationException("the server's certificate (CN=x) does not name the host Caravan connected to.")));

        Assert.Equal(FailureCodes.TlsVerifyFailed, failure.Code);
        Assert.Equal(TestSteps.Tls, failure.Step);
        Assert.StartsWith("The server's certificate was refused: the server's certificate (CN=x)", failure.Message, StringComparison.Ordinal);
    }

    private static X509Certificate2 Certificate(string pem) => X509Certificate2.CreateFromPem(pem);
}
