using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Npgsql;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The PostgreSQL cluster with TLS that <c>tests/servers/pg-tls.sh</c> starts (./test.sh does):
/// its server certificate, signed by a private CA, names 127.0.0.1 and not 127.0.0.2, where the
/// cluster listens too; members of <c>caravan_certified</c> need a client certificate for their name.
/// </summary>
internal sealed class TlsPostgres : ITlsServer, IAsyncDisposable
{
    public const string NoServer = "No PostgreSQL with TLS: run tests/servers/pg-tls.sh and set the variables it writes (./test.sh does).";

    private static readonly string? Admin = Environment.GetEnvironmentVariable("CARAVAN_TEST_POSTGRES_TLS");

    public static bool Missing => string.IsNullOrEmpty(Admin);

    /// <summary>The private CA's certificate, PEM.</summary>
    public static string AuthorityPem => File.ReadAllText(Environment.GetEnvironmentVariable("CARAVAN_TEST_POSTGRES_TLS_CA")!);

    string ITlsServer.AuthorityPem => AuthorityPem;

    private TlsPostgres(string role, string password, string database)
    {
        Role = role;
        Password = password;
        Database = database;
    }

    public int Port { get; } = new NpgsqlConnectionStringBuilder(Admin).Port;

    public string Role { get; }

    public string Password { get; }

    public string Database { get; }

    /// <summary>A login role with its own database; with <paramref name="certified"/>, one that must show a client certificate.</summary>
    public static async Task<TlsPostgres> CreateAsync(bool certified = false)
    {
        var server = new TlsPostgres(Unique.Name("caravan_tls_"), Unique.Secret("pw-"), Unique.Name("caravan_tls_db_"));
        await ExecuteAsync($"CREATE ROLE {server.Role} LOGIN PASSWORD '{server.Password}'{(certified ? " IN ROLE caravan_certified" : string.Empty)}");
        await ExecuteAsync($"CREATE DATABASE {server.Database}");
        return server;
    }

    /// <summary>A create body for this role on <paramref name="host"/> with <paramref name="tls"/>.</summary>
    public string Body(string host, JsonObject? tls) => new JsonObject
    {
        ["type"] = "postgres", ["hostname"] = host, ["port"] = Port, ["username"] = Role, ["password"] = Password, ["database_name"] = Database,
        ["tls"] = tls,
    }.ToJsonString();

    /// <summary>A client certificate for this role signed by the cluster's CA, and its key (PEM).</summary>
    public (string CertificatePem, string KeyPem) ClientCertificate() => PathKeys.ClientCertificate("CARAVAN_TEST_POSTGRES_TLS", Role);

    public async ValueTask DisposeAsync()
    {
        await ExecuteAsync($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
        await ExecuteAsync($"DROP ROLE IF EXISTS {Role}");
    }

    private static async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(Admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
