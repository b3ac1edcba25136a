using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Npgsql;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>The test PostgreSQL server (<c>CARAVAN_TEST_POSTGRES</c>), and create bodies for PostgreSQL sources.</summary>
internal static class Pg
{
    public const string NoServer = "No PostgreSQL server configured: set CARAVAN_TEST_POSTGRES (./test.sh provides one).";

    public static bool Missing => string.IsNullOrEmpty(TestStore.PostgresAdmin);

    public static NpgsqlConnectionStringBuilder Admin => new(TestStore.PostgresAdmin);

    /// <summary>Runs statements as the server's administrator, in <paramref name="database"/> or the default one.</summary>
    public static async Task ExecuteAsync(string sql, string? database = null)
    {
        await using var connection = await OpenAsync(database);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>One value read as the server's administrator, in <paramref name="database"/> or the default one.</summary>
    public static async Task<object?> ScalarAsync(string sql, string? database = null)
    {
        await using var connection = await OpenAsync(database);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    /// <summary>
    /// A create body in the fields form for a server at <paramref name="host"/>:<paramref name="port"/>
    /// (by default one that has no such role: a probe of the network path); <paramref name="change"/> adjusts it.
    /// </summary>
    public static string Body(
        string host, int port, string password = "not-the-password", Action<JsonObject>? change = null,
        string username = "caravan_probe", string database = "probe", string accountName = "Probe")
    {
        var body = new JsonObject
        {
            ["type"] = "postgres",
            ["account_name"] = accountName,
            ["hostname"] = host,
            ["port"] = port,
            ["username"] = username,
            ["password"] = password,
            ["database_name"] = database,
        };
        change?.Invoke(body);
        return body.ToJsonString();
    }

    /// <summary>A fresh (unpooled) connection of the administrator's.</summary>
    private static async Task<NpgsqlConnection> OpenAsync(string? database)
    {
        var builder = Admin;
        if (database is not null)
        {
            builder.Database = database;
        }

        builder.Pooling = false;
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}

/// <summary>
/// A login role with a password and a database of its own on the test server, with schemas the
/// role may use; dropped when disposed. The role has no other privilege: PostgreSQL grants CONNECT
/// on a new database to PUBLIC, and each schema grants USAGE to the role.
/// </summary>
internal sealed class ScratchDatabase : IAsyncDisposable
{
    private ScratchDatabase(string role, string password, string database, IReadOnlyList<string> schemas)
    {
        Role = role;
        Password = password;
        Database = database;
        Schemas = schemas;
    }

    public string Host { get; } = Pg.Admin.Host!;

    public int Port { get; } = Pg.Admin.Port;

    public string Role { get; }

    public string Password { get; }

    public string Database { get; }

    public IReadOnlyList<string> Schemas { get; }

    public static async Task<ScratchDatabase> CreateAsync(int schemaCount = 0, string? password = null)
    {
        var role = Unique.Name("caravan_role_");
        var database = Unique.Name("caravan_db_");
        var schemas = Enumerable.Range(0, schemaCount).Select(i => Unique.Name($"s{i}_")).ToList();
        var scratch = new ScratchDatabase(role, password ?? Unique.Secret("pw-"), database, schemas);
        await Pg.ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD '{scratch.Password.Replace("'", "''", StringComparison.Ordinal)}'");
        await Pg.ExecuteAsync($"CREATE DATABASE {database}");
        foreach (var schema in schemas)
        {
            await Pg.ExecuteAsync($"CREATE SCHEMA {schema}; GRANT USAGE ON SCHEMA {schema} TO {role}", database);
        }

        return scratch;
    }

    /// <summary>A create body in the fields form; <paramref name="change"/> adjusts it.</summary>
    public string Body(Action<JsonObject>? change = null) =>
        Pg.Body(Host, Port, Password, change, Role, Database, "Scratch " + Database);

    public async ValueTask DisposeAsync()
    {
        await Pg.ExecuteAsync($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
        await Pg.ExecuteAsync($"DROP ROLE IF EXISTS {Role}");
    }
}
