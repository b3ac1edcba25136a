using Caravan.Api.Data;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>
/// Which store this run of the suite tests against. <c>./test.sh</c> runs the suite twice: with
/// <c>CARAVAN_TEST_STORE=Sqlite</c> and with <c>CARAVAN_TEST_STORE=Postgres</c> plus
/// <c>CARAVAN_TEST_POSTGRES</c>, the admin connection string of a throwaway server it started.
/// </summary>
public static class TestStore
{
    public static StorageProvider Provider { get; } =
        string.Equals(Environment.GetEnvironmentVariable("CARAVAN_TEST_STORE"), "Postgres", StringComparison.OrdinalIgnoreCase)
            ? StorageProvider.Postgres
            : StorageProvider.Sqlite;

    public static bool IsPostgres => Provider == StorageProvider.Postgres;

    public static string? PostgresAdmin { get; } = Environment.GetEnvironmentVariable("CARAVAN_TEST_POSTGRES");

    /// <summary>The settings that point a Caravan at a fresh, migrated store of this run's kind.</summary>
    public static Dictionary<string, string?> NewStoreSettings(string dataDirectory)
    {
        if (!IsPostgres)
        {
            return new() { ["ConnectionStrings:Caravan"] = $"Data Source={Path.Combine(dataDirectory, "caravan.db")}" };
        }

        var connectionString = CreatePostgresDatabase();
        return new()
        {
            ["Caravan:Storage:Provider"] = "Postgres",
            ["ConnectionStrings:Caravan"] = connectionString,
        };
    }

    /// <summary>A new, migrated database on the test server; its connection string.</summary>
    public static string CreatePostgresDatabase()
    {
        var connectionString = CreateEmptyPostgresDatabase();
        var database = new Database(Options.Create(new StorageOptions { Provider = StorageProvider.Postgres, ConnectionString = connectionString }));
        new Migrator(database, NullLogger<Migrator>.Instance).MigrateAsync().GetAwaiter().GetResult();
        database.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return connectionString;
    }

    /// <summary>A new database on the test server with no tables; its connection string.</summary>
    public static string CreateEmptyPostgresDatabase()
    {
        if (string.IsNullOrEmpty(PostgresAdmin))
        {
            throw new InvalidOperationException("CARAVAN_TEST_STORE=Postgres needs CARAVAN_TEST_POSTGRES (./test.sh sets both).");
        }

        var name = Unique.Name("caravan_");
        using (var admin = new NpgsqlConnection(PostgresAdmin))
        {
            admin.Open();
            using var create = admin.CreateCommand();
            create.CommandText = $"CREATE DATABASE {name}";
            create.ExecuteNonQuery();
        }

        return new NpgsqlConnectionStringBuilder(PostgresAdmin) { Database = name, MaxPoolSize = 20 }.ConnectionString;
    }
}
