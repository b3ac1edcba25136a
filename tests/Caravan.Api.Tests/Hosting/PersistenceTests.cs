using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Secrets;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Secrets;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// Restarts (contract section 7): sources, keys and secrets outlive the process, with the master key
/// from its file or from configuration, and the bootstrap API key is made valid idempotently.
/// </summary>
public sealed class PersistenceTests
{
    private const string SourcesUrl = "/api/v1/sources/";

    [Fact]
    public async Task Sources_keys_and_secrets_survive_a_restart_with_the_key_file()
    {
        var directory = CaravanApp.NewDataDirectory();
        var settings = new Dictionary<string, string?>();
        var keyFile = Path.Combine(directory, "master.key");

        var before = await SeedAsync(directory, settings);
        var keyFileContents = await File.ReadAllTextAsync(keyFile, TestContext.Current.CancellationToken);

        await AssertSeedAsync(directory, before);
        await AssertSeedAsync(directory, before);

        Assert.Equal(keyFileContents, await File.ReadAllTextAsync(keyFile, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Sources_keys_and_secrets_survive_a_restart_with_the_master_key_setting()
    {
        var directory = CaravanApp.NewDataDirectory();
        var settings = new Dictionary<string, string?> { ["Caravan:Secrets:MasterKey"] = SecretsTestKeys.NewBase64Key() };

        var before = await SeedAsync(directory, settings);
        Assert.False(File.Exists(Path.Combine(directory, "master.key")), "no key file is created when the key is configured");

        await AssertSeedAsync(directory, before);
        Assert.False(File.Exists(Path.Combine(directory, "master.key")), "no key file is created when the key is configured");
        Assert.All(Directory.GetFiles(directory, "*", SearchOption.AllDirectories), file => Assert.StartsWith("caravan.db", Path.GetFileName(file), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Secrets_stored_under_one_master_key_do_not_decrypt_under_another()
    {
        var directory = CaravanApp.NewDataDirectory();
        var before = await SeedAsync(directory, new Dictionary<string, string?> { ["Caravan:Secrets:MasterKey"] = SecretsTestKeys.NewBase64Key() });

        var otherKey = new Dictionary<string, string?>(before.Store) { ["Caravan:Secrets:MasterKey"] = SecretsTestKeys.NewBase64Key() };
        await using var app = new OwnCaravan(directory, otherKey);
        var failure = await Assert.ThrowsAsync<SecretDecryptionException>(() => app.RevealAsync(before.PostgresId, "password"));
        Assert.Equal(SecretDecryptionFailure.UnknownKey, failure.Failure);

        // The non-secret side still works: the key and the sources are there.
        using var http = Client(app, before.Key);
        await http.GetAsync(new Uri($"{SourcesUrl}{before.PostgresId}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_bootstrap_key_authenticates_for_the_default_organization_and_is_created_once()
    {
        var directory = CaravanApp.NewDataDirectory();
        var bootstrapKey = Unique.ApiKey();
        Assert.True(bootstrapKey.Length >= 40);
        var settings = new Dictionary<string, string?> { ["Caravan:BootstrapApiKey"] = bootstrapKey };

        long id;
        await using (var app = new OwnCaravan(directory, settings))
        {
            settings = SameStore(app);
            var caller = await app.Services.GetRequiredService<ApiKeys>().AuthenticateAsync(bootstrapKey, TestContext.Current.CancellationToken);
            Assert.NotNull(caller);
            Assert.Equal("default", caller.OrganizationName);

            using var http = Client(app, bootstrapKey);
            id = await http.CreateSourceAsync("""{"type": "motherduck", "database_name": "db", "token": "md-bootstrap-token"}""");
            await AssertOneKeyAsync(app, bootstrapKey);
        }

        for (var restart = 0; restart < 2; restart++)
        {
            await using var app = new OwnCaravan(directory, settings);
            using var http = Client(app, bootstrapKey);
            var list = await http.GetAsync(new Uri(SourcesUrl, UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
            Assert.Equal(1, list["count"]!.GetValue<int>());
            Assert.Equal(id, list["results"]![0]!["id"]!.GetValue<long>());
            using var viaHeader = app.CreateClient();
            viaHeader.DefaultRequestHeaders.Add("X-API-Key", bootstrapKey);
            await viaHeader.GetAsync(new Uri($"{SourcesUrl}{id}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
            await AssertOneKeyAsync(app, bootstrapKey);
            Assert.Equal("md-bootstrap-token", await app.RevealAsync(id, "token"));
        }
    }

    [Fact]
    public async Task A_bootstrap_key_can_join_an_existing_default_organization()
    {
        var directory = CaravanApp.NewDataDirectory();
        string otherKey;
        Dictionary<string, string?> store;
        await using (var first = new OwnCaravan(directory, new Dictionary<string, string?>()))
        {
            (_, otherKey) = await first.Services.GetRequiredService<ApiKeys>().CreateAsync("default", TestContext.Current.CancellationToken);
            store = SameStore(first);
        }

        var bootstrapKey = Unique.ApiKey();
        store["Caravan:BootstrapApiKey"] = bootstrapKey;
        await using var app = new OwnCaravan(directory, store);
        var keys = await app.Services.GetRequiredService<ApiKeys>().ListAsync("default", TestContext.Current.CancellationToken);
        Assert.Equal(2, keys.Count);
        using var bootstrap = Client(app, bootstrapKey);
        using var other = Client(app, otherKey);
        var id = await bootstrap.CreateSourceAsync("""{"type": "motherduck", "database_name": "db", "token": "md-shared"}""");
        await other.GetAsync(new Uri($"{SourcesUrl}{id}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("short-key-123")]
    [InlineData("cvn_0123456789abcdef0123456789")]
    [InlineData("cvn_0123456789abcdef 0123456789abcdef0123456789")]
    public async Task A_bad_bootstrap_key_stops_the_start_with_a_message_naming_the_setting(string bootstrapKey)
    {
        // The reason reaches the operator: in the failure itself or in the log of the failed start.
        var texts = await OwnCaravan.RefusedStartTextsAsync(new Dictionary<string, string?> { ["Caravan:BootstrapApiKey"] = bootstrapKey });
        Assert.Contains(texts, t => t.Contains("Caravan__BootstrapApiKey", StringComparison.Ordinal));
        Assert.DoesNotContain(texts, t => t.Contains(bootstrapKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_too_short_bootstrap_key_stops_the_program_with_the_setting_named_on_standard_error()
    {
        var directory = CaravanApp.NewDataDirectory();
        var settings = new Dictionary<string, string?>
        {
            ["Caravan:Storage:Provider"] = "Sqlite",
            ["ConnectionStrings:Caravan"] = $"Data Source={Path.Combine(directory, "caravan.db")}",
            ["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key"),
            ["Caravan:BootstrapApiKey"] = "cvn_too-short",
        };

        var result = await CaravanProcess.RunAsync(settings, directory, "--urls", "http://127.0.0.1:0");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Caravan__BootstrapApiKey", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("cvn_too-short", result.Output + result.Error, StringComparison.Ordinal);
    }

    private sealed record Seed(
        Dictionary<string, string?> Store, string Key, string KeyId, long PostgresId, Dictionary<long, string> Gets, string List,
        Dictionary<(long Id, string Field), string> Secrets);

    /// <summary>Starts a Caravan on <paramref name="directory"/>, makes a key and sources of several types, and stops it.</summary>
    private static async Task<Seed> SeedAsync(string directory, Dictionary<string, string?> settings)
    {
        await using var app = new OwnCaravan(directory, settings);
        var org = await app.NewOrganizationAsync();
        var secrets = new Dictionary<(long, string), string>();
        var postgresPassword = Unique.Secret("pg-");
        var postgres = await org.Http.CreateSourceAsync($$"""
            {"type": "postgres", "account_name": "Warehouse", "hostname": "db.example.com", "port": 5433, "username": "analyst",
             "password": "{{postgresPassword}}", "database_name": "sales", "selected_schemas": ["public", "sales"]}
            """);
        secrets[(postgres, "password")] = postgresPassword;

        var mssqlPassword = Unique.Secret("ms-");
        var mssql = await org.Http.CreateSourceAsync($$"""
            {"type": "mssql", "connection_string": "Server=sql.example.com,1444;Database=erp;User ID=sa;Password={{mssqlPassword}};Encrypt=True"}
            """);
        secrets[(mssql, "password")] = mssqlPassword;

        var mongo = "mongodb+srv://app:" + Unique.Secret("mg-") + "@cluster0.example.com/app";
        var mongoId = await org.Http.CreateSourceAsync($$"""{"type": "mongodb", "connection_string": "{{mongo}}"}""");
        secrets[(mongoId, "connection_string")] = mongo;

        var snowflake = await org.Http.PostJsonAsync(SourcesUrl, """{"type": "snowflake", "account": "xy12345.us-east-1", "user": "keyed"}""")
            .Expect(HttpStatusCode.OK);
        var snowflakeId = snowflake["id"]!.GetValue<long>();
        secrets[(snowflakeId, "private_key")] = await app.RevealAsync(snowflakeId, "private_key");

        var token = Unique.Secret("md-");
        var motherDuck = await org.Http.CreateSourceAsync($$"""{"token": "{{token}}", "database_name": "my_db"}""", SourcesUrl + "add/motherduck/");
        secrets[(motherDuck, "token")] = token;
        var newToken = Unique.Secret("md2-");
        await org.Http.PatchJsonAsync($"{SourcesUrl}{motherDuck}/update-config/", $$"""{"token": "{{newToken}}"}""").Expect(HttpStatusCode.OK);
        secrets[(motherDuck, "token")] = newToken;

        var legacy = (await org.Http.PostJsonAsync(SourcesUrl + "add/", """{"account_name": "Later", "type": "CLICKHOUSE"}""").Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();

        var deleted = await org.Http.CreateSourceAsync("""{"type": "databricks", "server_hostname": "adb-1.azuredatabricks.net", "http_path": "/sql/1.0/warehouses/a", "access_token": "dapi-gone"}""");
        await org.Http.DeleteAsync(new Uri($"{SourcesUrl}{deleted}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.NoContent);

        var gets = new Dictionary<long, string>();
        foreach (var id in new[] { postgres, mssql, mongoId, snowflakeId, motherDuck, legacy })
        {
            gets[id] = (await org.Http.GetAsync(new Uri($"{SourcesUrl}{id}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK)).Compact();
        }

        gets[deleted] = string.Empty;
        var list = (await org.Http.GetAsync(new Uri(SourcesUrl, UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK)).Compact();
        Assert.Equal(6, JsonNode.Parse(list)!["count"]!.GetValue<int>());
        return new Seed(SameStore(app), org.Key, org.KeyId, postgres, gets, list, secrets);
    }

    /// <summary>Starts a new Caravan on the same directory and checks that everything is as it was left.</summary>
    private static async Task AssertSeedAsync(string directory, Seed seed)
    {
        await using var app = new OwnCaravan(directory, seed.Store);
        using var http = Client(app, seed.Key);

        foreach (var (id, expected) in seed.Gets)
        {
            var url = new Uri($"{SourcesUrl}{id}/", UriKind.Relative);
            if (expected.Length == 0)
            {
                var gone = await http.GetAsync(url, TestContext.Current.CancellationToken).Expect(HttpStatusCode.NotFound);
                Assert.Equal("""{"detail":"Not found."}""", gone.Compact());
            }
            else
            {
                Assert.Equal(expected, (await http.GetAsync(url, TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK)).Compact());
            }
        }

        Assert.Equal(seed.List, (await http.GetAsync(new Uri(SourcesUrl, UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK)).Compact());

        foreach (var ((id, field), value) in seed.Secrets)
        {
            Assert.Equal(value, await app.RevealAsync(id, field));
        }

        var keys = await app.Services.GetRequiredService<ApiKeys>().ListAsync(null, TestContext.Current.CancellationToken);
        Assert.Contains(keys, k => k.Id == seed.KeyId && !k.Revoked);

        // Writing still works after the restart: a change that needs no stored secret, and one that does.
        await http.PatchJsonAsync($"{SourcesUrl}{seed.PostgresId}/update-config/", """{"port": 5433}""").Expect(HttpStatusCode.OK);
        var snowflake = seed.Secrets.Keys.Single(k => k.Field == "private_key").Id;
        using (var rsa = RSA.Create())
        {
            rsa.ImportFromPem(seed.Secrets[(snowflake, "private_key")]);
            await http.PatchJsonAsync($"{SourcesUrl}{snowflake}/update-config/", new JsonObject { ["public_key"] = rsa.ExportSubjectPublicKeyInfoPem() }.ToJsonString())
                .Expect(HttpStatusCode.OK);
        }
    }

    private static async Task AssertOneKeyAsync(CaravanApp app, string key)
    {
        var keys = await app.Services.GetRequiredService<ApiKeys>().ListAsync("default", TestContext.Current.CancellationToken);
        var only = Assert.Single(keys);
        Assert.Equal(key[..8], only.Prefix);
        Assert.False(only.Revoked);
    }

    private static HttpClient Client(CaravanApp app, string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>The settings of <paramref name="app"/>, to start another Caravan on the same store (SQLite file or PostgreSQL database).</summary>
    private static Dictionary<string, string?> SameStore(CaravanApp app) => new(app.Settings);

}
