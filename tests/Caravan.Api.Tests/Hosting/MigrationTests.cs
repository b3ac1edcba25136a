using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Npgsql;

namespace Caravan.Api.Tests.Hosting;

public sealed class MigrationTests
{
    [Fact]
    public void Both_providers_have_the_same_complete_set_of_migrations()
    {
        var sqlite = Migrator.For(StorageProvider.Sqlite);
        var postgres = Migrator.For(StorageProvider.Postgres);

        Assert.NotEmpty(sqlite);
        Assert.Equal(sqlite.Select(m => (m.Version, m.Name)), postgres.Select(m => (m.Version, m.Name)));
        // Numbers are handed out ahead of time to work done in parallel, so gaps are allowed; repeats are not.
        Assert.Equal(1, sqlite[0].Version);
        Assert.Equal(sqlite.Select(m => m.Version).Distinct().Order(), sqlite.Select(m => m.Version));
    }

    [Fact]
    public async Task Migrating_twice_applies_nothing_the_second_time()
    {
        var directory = CaravanApp.NewDataDirectory();
        var settings = TestStore.NewStoreSettings(directory);
        settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key");

        await CaravanProcess.RunAsync(settings, directory, "migrate");
        var second = await CaravanProcess.RunAsync(settings, directory, "migrate");

        Assert.Equal(0, second.ExitCode);
        Assert.Contains("The store is up to date.", second.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Starting_on_an_unmigrated_PostgreSQL_store_says_what_to_run()
    {
        Assert.SkipWhen(string.IsNullOrEmpty(TestStore.PostgresAdmin), "No PostgreSQL server configured (./test.sh provides one).");
        var name = Unique.Name("caravan_unmigrated_");
        await using (var admin = new NpgsqlConnection(TestStore.PostgresAdmin))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
            await create.ExecuteNonQueryAsync();
        }

        var directory = CaravanApp.NewDataDirectory();
        var settings = new Dictionary<string, string?>
        {
            ["Caravan:Storage:Provider"] = "Postgres",
            ["ConnectionStrings:Caravan"] = new NpgsqlConnectionStringBuilder(TestStore.PostgresAdmin) { Database = name }.ConnectionString,
            ["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key"),
        };

        var start = await CaravanProcess.RunAsync(settings, directory, "--urls", "http://127.0.0.1:0");

        Assert.NotEqual(0, start.ExitCode);
        Assert.Contains("migration(s) to apply", start.Output + start.Error, StringComparison.Ordinal);
        Assert.Contains("migrate", start.Output + start.Error, StringComparison.Ordinal);
    }
}
