using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Secrets;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// Secret fingerprints in the config readback: they change when, and only when, the secret does;
/// they survive a master key rotation with the old key retired; they do not correlate equal
/// secrets of two sources; and they are an HMAC under a key the server keeps, not a plain hash.
/// </summary>
public sealed class FingerprintTests(CaravanApp app)
{
    private const string Postgres = """
        {"type": "postgres", "hostname": "db.example.com", "port": 5433, "username": "analyst", "password": "first-pass", "database_name": "sales"}
        """;

    [Fact]
    public async Task A_fingerprint_changes_when_and_only_when_the_secret_changes()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var first = await PasswordStateAsync(org, id);

        await Update(org, id, """{"port": 6543, "selected_schemas": ["public"], "account_name": "Renamed"}""");
        var afterSettings = await PasswordStateAsync(org, id);
        Assert.Equal(first.Compact(), afterSettings.Compact());

        await Update(org, id, """{"password": "first-pass"}""");
        Assert.Equal(Fingerprint(first), Fingerprint(await PasswordStateAsync(org, id)));

        await Update(org, id, """{"password": "second-pass"}""");
        var changed = await PasswordStateAsync(org, id);
        Assert.NotEqual(Fingerprint(first), Fingerprint(changed));

        // Back to the first value: back to the first fingerprint (it is a function of the value).
        await Update(org, id, """{"password": "first-pass"}""");
        Assert.Equal(Fingerprint(first), Fingerprint(await PasswordStateAsync(org, id)));
    }

    [Fact]
    public async Task A_cleared_secret_reads_set_false_and_nothing_else()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "snowflake", "account": "xy12345", "user": "bob", "password": "sf-pass"}""");
        Assert.True((await PasswordStateAsync(org, id))["set"]!.GetValue<bool>());

        await Update(org, id, """{"password": null}""");

        Assert.Equal("""{"set":false}""", (await PasswordStateAsync(org, id)).Compact());
    }

    [Fact]
    public async Task A_new_secret_gets_a_new_updated_at_and_other_writes_keep_it()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var created = (await PasswordStateAsync(org, id))["updated_at"]!.GetValue<string>();

        await Task.Delay(1100);
        await Update(org, id, """{"port": 6543}""");
        Assert.Equal(created, (await PasswordStateAsync(org, id))["updated_at"]!.GetValue<string>());

        await Update(org, id, """{"password": "second-pass"}""");
        Assert.True(
            string.CompareOrdinal((await PasswordStateAsync(org, id))["updated_at"]!.GetValue<string>(), created) > 0,
            "the timestamp of a rewritten secret moves forward");
    }

    [Fact]
    public async Task Equal_secrets_on_two_sources_or_two_fields_have_different_fingerprints()
    {
        var org = await app.NewOrganizationAsync();
        var one = await org.Http.CreateSourceAsync(Postgres);
        var two = await org.Http.CreateSourceAsync(Postgres);
        var snowflake = await org.Http.CreateSourceAsync(
            """{"type": "snowflake", "account": "xy12345", "user": "bob", "password": "same-value", "private_key_passphrase": "same-value"}""");

        Assert.NotEqual(Fingerprint(await PasswordStateAsync(org, one)), Fingerprint(await PasswordStateAsync(org, two)));
        var (body, _, _) = await ConfigReadbackTests.ReadAsync(org, snowflake);
        Assert.NotEqual(Fingerprint(body["secrets"]!["password"]!), Fingerprint(body["secrets"]!["private_key_passphrase"]!));
    }

    [Fact]
    public async Task A_fingerprint_is_not_a_plain_hash_of_the_value()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var fingerprint = Fingerprint(await PasswordStateAsync(org, id));

        foreach (var input in new[] { "first-pass", $"{id}:password:first-pass", $"caravan:fingerprint:v1:{id}:password:first-pass" })
        {
            var bytes = Encoding.UTF8.GetBytes(input);
            Assert.NotEqual(Convert.ToHexStringLower(SHA256.HashData(bytes))[..8], fingerprint);
            Assert.NotEqual(Convert.ToHexStringLower(SHA512.HashData(bytes))[..8], fingerprint);
        }

        // It is keyed by the server's fingerprint key, which is random and kept encrypted in the store.
        var key = await app.Services.GetRequiredService<ServerKeys>().FingerprintKeyAsync(CancellationToken.None);
        Assert.Equal(32, key.Length);
        Assert.Equal(fingerprint, SecretFingerprint.Compute(key.Span, id, "password", "first-pass"));
        var stored = await StoredServerKeysAsync(app);
        var row = Assert.Single(stored, k => k.Name == ServerKeys.FingerprintKeyName);
        Assert.DoesNotContain(Convert.ToBase64String(key.Span), row.Ciphertext, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replicas_starting_together_create_one_fingerprint_key_and_agree()
    {
        await using var first = new OwnCaravan();
        await using var second = new OwnCaravan(first.DataDirectory, new Dictionary<string, string?>(first.Settings));
        var org = await first.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        using var other = second.CreateClient();
        other.DefaultRequestHeaders.Authorization = org.Http.DefaultRequestHeaders.Authorization;
        var sameOrg = org with { Http = other };

        // Neither has a key yet: both ask the store for one at once.
        var reads = await Task.WhenAll(
            Enumerable.Range(0, 8).Select(i => PasswordStateAsync(i % 2 == 0 ? org : sameOrg, id)));

        Assert.Single(reads.Select(Fingerprint).Distinct());
        Assert.Single(await StoredServerKeysAsync(first));
    }

    [Fact]
    public async Task Fingerprints_survive_a_rotation_and_the_retirement_of_the_old_master_key()
    {
        Dictionary<string, string?> settings;
        string directory;
        long postgresId, snowflakeId;
        string[] before;
        OrgClient org;
        await using (var running = new OwnCaravan())
        {
            org = await running.NewOrganizationAsync();
            postgresId = await org.Http.CreateSourceAsync(Postgres);
            snowflakeId = await org.Http.CreateSourceAsync("""{"type": "snowflake", "account": "xy12345", "user": "bob"}""");
            before = await FingerprintsAsync(org, postgresId, snowflakeId);
            var oldKey = running.Services.GetRequiredService<SecretProtector>().CurrentKeyId;

            var rotation = running.Services.GetRequiredService<SecretRotation>();
            var report = await rotation.RotateAsync();

            Assert.NotNull(report.AddedKeyId);
            Assert.Equal(1, report.ServerKeys);
            var counts = await rotation.CountByKeyAsync();
            Assert.Equal(0, counts.GetValueOrDefault(oldKey));
            Assert.All(await StoredServerKeysAsync(running), k => Assert.Equal(report.CurrentKeyId, k.KeyId));
            Assert.Equal(before, await FingerprintsAsync(org, postgresId, snowflakeId));

            settings = new(running.Settings);
            directory = running.DataDirectory;
        }

        // Retire the old key: only the newest line stays in the key file.
        var keyFile = settings["Caravan:Secrets:MasterKeyFile"]!;
        var lines = (await File.ReadAllLinesAsync(keyFile)).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal(2, lines.Count);
        await File.WriteAllLinesAsync(keyFile, [lines[^1]]);

        await using var restarted = new OwnCaravan(directory, settings);
        using var client = restarted.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", org.Key);
        Assert.Equal(before, await FingerprintsAsync(org with { Http = client }, postgresId, snowflakeId));
    }

    private static async Task<string[]> FingerprintsAsync(OrgClient org, long postgresId, long snowflakeId)
    {
        var postgres = await PasswordStateAsync(org, postgresId);
        var (snowflake, _, _) = await ConfigReadbackTests.ReadAsync(org, snowflakeId);
        return [Fingerprint(postgres), Fingerprint(snowflake["secrets"]!["private_key"]!)];
    }

    private static async Task<JsonNode> PasswordStateAsync(OrgClient org, long id)
    {
        var (body, _, _) = await ConfigReadbackTests.ReadAsync(org, id);
        return body["secrets"]!["password"]!;
    }

    private static string Fingerprint(JsonNode state) => state["fingerprint"]!.GetValue<string>();

    private static Task Update(OrgClient org, long id, string json) =>
        org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), json).Expect(HttpStatusCode.OK);

    private static async Task<List<(string Name, string KeyId, string Ciphertext)>> StoredServerKeysAsync(CaravanApp app)
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, key_id, ciphertext FROM server_keys";
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(string, string, string)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }

        return rows;
    }
}
