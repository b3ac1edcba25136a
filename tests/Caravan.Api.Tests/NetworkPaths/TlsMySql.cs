using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using MySqlConnector;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The MariaDB that ./test.sh starts, with TLS: its certificate, signed by a private CA
/// (<c>CARAVAN_TEST_MYSQL_TLS_CA</c>, its key in <c>_CA_KEY</c>), names 127.0.0.1 and not
/// 127.0.0.2, where the server listens too. Each instance is a user of the test's own, with a
/// database, that may have to log in with TLS (<c>REQUIRE SSL</c>) or a client certificate for its name (<c>REQUIRE SUBJECT</c>).
/// </summary>
internal sealed class TlsMySql : ITlsServer, IAsyncDisposable
{
    public const string NoServer = "No MariaDB with a CA-signed certificate: set CARAVAN_TEST_MYSQL and CARAVAN_TEST_MYSQL_TLS_CA(_KEY) (./test.sh does).";

    private static readonly string? Admin = Environment.GetEnvironmentVariable("CARAVAN_TEST_MYSQL");

    private TlsMySql()
    {
    }

    public static bool Missing => string.IsNullOrEmpty(Admin) || string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CARAVAN_TEST_MYSQL_TLS_CA"));

    /// <summary>The private CA's certificate, PEM.</summary>
    public static string AuthorityPem => File.ReadAllText(Environment.GetEnvironmentVariable("CARAVAN_TEST_MYSQL_TLS_CA")!);

    string ITlsServer.AuthorityPem => AuthorityPem;

    public int Port { get; } = (int)new MySqlConnectionStringBuilder(Admin!).Port;

    public string User { get; } = Unique.Name("cvtls");

    public string Password { get; } = Unique.Secret("pw-");

    public string Database => User + "_db";

    /// <summary>A user with its own database; <paramref name="subject"/> makes it show a client certificate for its name, <paramref name="ssl"/> TLS.</summary>
    public static async Task<TlsMySql> CreateAsync(bool ssl = false, bool subject = false)
    {
        var server = new TlsMySql();
        var require = subject ? $" REQUIRE SUBJECT '/CN={server.User}'" : ssl ? " REQUIRE SSL" : string.Empty;
        await ExecuteAsync(
            $"CREATE USER '{server.User}'@'127.0.0.1' IDENTIFIED BY '{server.Password}'{require}",
            $"CREATE DATABASE `{server.Database}`",
            $"GRANT SELECT ON `{server.Database}`.* TO '{server.User}'@'127.0.0.1'");
        return server;
    }

    /// <summary>A create body for this user on <paramref name="host"/> with <paramref name="tls"/>.</summary>
    public string Body(string host, JsonObject? tls, string type = "mysql") => new JsonObject
    {
        ["type"] = type, ["hostname"] = host, ["port"] = Port, ["username"] = User, ["password"] = Password, ["database_name"] = Database,
        ["tls"] = tls,
    }.ToJsonString();

    string ITlsServer.Body(string host, JsonObject? tls) => Body(host, tls);

    /// <summary>A client certificate for this user signed by the server's CA, and its key (PEM).</summary>
    public (string CertificatePem, string KeyPem) ClientCertificate() => PathKeys.ClientCertificate("CARAVAN_TEST_MYSQL_TLS", User);

    public async ValueTask DisposeAsync() =>
        await ExecuteAsync($"DROP USER IF EXISTS '{User}'@'127.0.0.1'", $"DROP DATABASE IF EXISTS `{Database}`");

    private static async Task ExecuteAsync(params string[] statements)
    {
        await using var connection = new MySqlConnection(new MySqlConnectionStringBuilder(Admin!) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        foreach (var sql in statements)
        {
            await using var command = new MySqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
    }
}
