using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;
using Caravan.Api.Tests.Sources.Types;

namespace Caravan.Api.Tests.Revisions;

/// <summary>
/// Contract section 8, revisions: a source walked through its life, every revision checked whole —
/// number, action, actor, time and the exact changes — and no secret value anywhere in them.
/// </summary>
public sealed class RevisionHistoryTests(CaravanApp app)
{
    [Fact]
    public async Task A_snowflake_source_walked_from_create_to_delete_leaves_one_exact_revision_per_change()
    {
        var alice = await app.NewOrganizationAsync();
        var bob = await app.SecondKeyAsync(alice);
        long id = 0;
        using var key = RSA.Create(2048);
        const string passphrase = "Pw-passphrase-1f3e";
        var pem = key.ExportEncryptedPkcs8PrivateKeyPem(passphrase, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000));
        string[] secretValues = ["Pw-first-9c1d", "Pw-second-77ab", passphrase, .. pem.Split('\n').Where(l => l.Length == 64)];

        var window = await RevisionKit.TimedAsync(async () => id = await alice.Http.CreateSourceAsync(
            """{"type": "snowflake", "account": "xy12345.us-east-1", "user": "loader", "password": "Pw-first-9c1d", "warehouse": "WH"}"""));
        RevisionKit.AssertRevision(await alice.NewestAsync(id), 1, "create", alice, window, """
            {"account_name": {"old": null, "new": "Snowflake"}, "account": {"old": null, "new": "xy12345.us-east-1"},
             "user": {"old": null, "new": "loader"}, "password": "set", "warehouse": {"old": null, "new": "WH"}}
            """);

        window = await UpdateConfigAsync(bob, id, """{"warehouse": "WH2", "role": "ANALYST"}""");
        RevisionKit.AssertRevision(await bob.NewestAsync(id), 2, "update", bob, window, """
            {"warehouse": {"old": "WH", "new": "WH2"}, "role": {"old": null, "new": "ANALYST"}}
            """);

        window = await UpdateConfigAsync(alice, id, """{"selected_schemas": ["PUBLIC", "SALES"], "warehouse": null}""");
        RevisionKit.AssertRevision(await alice.NewestAsync(id), 3, "update", alice, window, """
            {"warehouse": {"old": "WH2", "new": null}, "selected_schemas": {"old": null, "new": ["PUBLIC", "SALES"]}}
            """);

        window = await RevisionKit.TimedAsync(() => bob.Http.PutJsonAsync($"/api/v1/sources/{id}/", """{"account_name": "Warehouse"}""").Expect(HttpStatusCode.OK));
        RevisionKit.AssertRevision(await bob.NewestAsync(id), 4, "update", bob, window, """
            {"account_name": {"old": "Snowflake", "new": "Warehouse"}}
            """);

        window = await RevisionKit.TimedAsync(() => alice.Http.PatchJsonAsync($"/api/v1/sources/{id}/", """{"account_name": "  Warehouse (prod) "}""").Expect(HttpStatusCode.OK));
        RevisionKit.AssertRevision(await alice.NewestAsync(id), 5, "update", alice, window, """
            {"account_name": {"old": "Warehouse", "new": "Warehouse (prod)"}}
            """);

        window = await UpdateConfigAsync(alice, id, """{"password": "Pw-second-77ab"}""");
        RevisionKit.AssertRevision(await alice.NewestAsync(id), 6, "update", alice, window, """{"password": "changed"}""");

        // The same password again changes nothing: not the revision, not the stored entry.
        var secretsBefore = (await app.StoredSourceAsync(id)).SecretsJson;
        window = await UpdateConfigAsync(bob, id, """{"password": "Pw-second-77ab"}""");
        RevisionKit.AssertRevision(await bob.NewestAsync(id), 7, "update", bob, window, "{}");
        Assert.Equal(secretsBefore, (await app.StoredSourceAsync(id)).SecretsJson);

        window = await UpdateConfigAsync(alice, id, new JsonObject { ["private_key"] = pem, ["private_key_passphrase"] = passphrase }.ToJsonString());
        var publicKey = (await app.StoredSourceAsync(id)).Settings["public_key"]!.GetValue<string>();
        Assert.Equal(Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()), publicKey);
        RevisionKit.AssertRevision(await alice.NewestAsync(id), 8, "update", alice, window, $$"""
            {"public_key": {"old": null, "new": "{{publicKey}}"}, "private_key": "set", "private_key_passphrase": "set"}
            """);

        // The password is optional once a private key is held: clearing it is recorded as such.
        window = await UpdateConfigAsync(bob, id, """{"password": null}""");
        RevisionKit.AssertRevision(await bob.NewestAsync(id), 9, "update", bob, window, """{"password": "cleared"}""");

        var history = await alice.ListAsync(id);
        Assert.Equal(9, history["count"]!.GetValue<long>());
        Assert.Equal([9L, 8, 7, 6, 5, 4, 3, 2, 1], history["results"]!.AsArray().Select(r => r!["number"]!.GetValue<long>()));
        AssertNoSecret(history.ToJsonString(), secretValues);

        window = await RevisionKit.TimedAsync(() => alice.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent));

        // Gone from the API, history included; the store keeps the delete revision for operators.
        (await alice.Http.GetRawAsync(RevisionKit.Url(id))).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        var stored = await app.StoredRevisionsAsync(id);
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7, 8, 9, 10], stored.Select(r => r.Number));
        var deleted = stored[^1];
        Assert.Equal("delete", deleted.Action);
        Assert.Equal(alice.KeyId, deleted.KeyId);
        Assert.InRange(DateTimeOffset.FromUnixTimeMilliseconds(deleted.At), window.From, window.To);
        Assert.Equal(
            JsonNode.Parse("""{"private_key": "cleared", "private_key_passphrase": "cleared"}""")!.Compact(),
            JsonNode.Parse(deleted.Changes)!.Compact());
        Assert.All(stored, r => Assert.Equal(stored[0].OrganizationId, r.OrganizationId));
        AssertNoSecret(string.Join("\n", stored.Select(r => r.Changes)), secretValues);

        // One audit event per change, after it committed, with names and no values.
        var audits = app.Logs.AuditEvents(id);
        Assert.Equal(10, audits.Count);
        (string Action, OrgClient Actor, string Fields)[] expected =
        [
            ("create", alice, "account_name,account,user,password,warehouse"),
            ("update", bob, "warehouse,role"),
            ("update", alice, "warehouse,selected_schemas"),
            ("update", bob, "account_name"),
            ("update", alice, "account_name"),
            ("update", alice, "password"),
            ("update", bob, string.Empty),
            ("update", alice, "public_key,private_key,private_key_passphrase"),
            ("update", bob, "password"),
            ("delete", alice, "private_key,private_key_passphrase"),
        ];
        for (var i = 0; i < expected.Length; i++)
        {
            RevisionKit.AssertAudit(audits[i], expected[i].Action, alice.Organization, expected[i].Actor.KeyId, id, i + 1, expected[i].Fields);
        }

        Assert.Equal(
            $"Source {id} create by organization {alice.Organization} with key {alice.KeyId}: revision 1, fields [account_name,account,user,password,warehouse]",
            audits[0].Message);
        var auditText = string.Join("\n", audits.Select(a => a.Message));
        AssertNoSecret(auditText, [.. secretValues, "xy12345", "loader", "Warehouse (prod)", "ANALYST", publicKey]);
    }

    [Fact]
    public async Task A_postgres_source_records_connection_string_changes_as_its_parts()
    {
        var org = await app.NewOrganizationAsync();
        long id = 0;
        var window = await RevisionKit.TimedAsync(async () => id = await org.Http.CreateSourceAsync(
            """{"type": "postgres", "hostname": "pg.example.com", "username": "u", "password": "Pw-pg-1a", "database_name": "d"}"""));
        RevisionKit.AssertRevision(await org.NewestAsync(id), 1, "create", org, window, """
            {"account_name": {"old": null, "new": "PostgreSQL"}, "hostname": {"old": null, "new": "pg.example.com"},
             "username": {"old": null, "new": "u"}, "password": "set", "database_name": {"old": null, "new": "d"}}
            """);

        // A connection string replaces everything; it is recorded as the parts it set, never as itself.
        window = await UpdateConfigAsync(org, id,
            """{"connection_string": "postgresql://report:Pw-pg-2b@pg2.example.com:5433/sales?sslmode=require&sslpassword=Pw-ssl-3c"}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 2, "update", org, window, """
            {"hostname": {"old": "pg.example.com", "new": "pg2.example.com"}, "port": {"old": null, "new": 5433},
             "username": {"old": "u", "new": "report"}, "password": "changed", "database_name": {"old": "d", "new": "sales"},
             "options": {"old": null, "new": {"sslmode": "require"}}, "secret_options": "set"}
            """);

        // One without a password or options clears them.
        window = await UpdateConfigAsync(org, id, """{"connection_string": "host=pg2.example.com port=5433 user=report dbname=sales"}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 3, "update", org, window, """
            {"password": "cleared", "options": {"old": {"sslmode": "require"}, "new": null}, "secret_options": "cleared"}
            """);

        window = await UpdateConfigAsync(org, id, """{"password": "Pw-pg-4d"}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 4, "update", org, window, """{"password": "set"}""");

        // Individual fields on top: the password sent again with the new host is not a change.
        window = await UpdateConfigAsync(org, id, """{"hostname": "pg3.example.com", "username": "u2", "password": "Pw-pg-4d", "port": null}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 5, "update", org, window, """
            {"hostname": {"old": "pg2.example.com", "new": "pg3.example.com"}, "port": {"old": 5433, "new": null}, "username": {"old": "report", "new": "u2"}}
            """);

        window = await RevisionKit.TimedAsync(() => org.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent));
        var deleted = (await app.StoredRevisionsAsync(id))[^1];
        Assert.Equal((6L, "delete", org.KeyId), (deleted.Number, deleted.Action, deleted.KeyId));
        Assert.Equal("""{"password":"cleared"}""", JsonNode.Parse(deleted.Changes)!.Compact());
        AssertNoSecret(string.Join("\n", (await app.StoredRevisionsAsync(id)).Select(r => r.Changes)), ["Pw-pg-1a", "Pw-pg-2b", "Pw-ssl-3c", "Pw-pg-4d"]);
        Assert.Equal(6, app.Logs.AuditEvents(id).Count);
    }

    [Fact]
    public async Task A_mongodb_connection_string_is_a_secret_in_its_revisions_too()
    {
        var org = await app.NewOrganizationAsync();
        long id = 0;
        var window = await RevisionKit.TimedAsync(async () => id = await org.Http.CreateSourceAsync(
            """{"type": "mongodb", "connection_string": "mongodb://app:Pw-mongo-1@m1.example.com:27017,m2.example.com:27017/app?replicaSet=rs0"}"""));
        RevisionKit.AssertRevision(await org.NewestAsync(id), 1, "create", org, window, """
            {"account_name": {"old": null, "new": "MongoDB"}, "connection_string": "set"}
            """);

        window = await UpdateConfigAsync(org, id, """{"connection_string": "mongodb+srv://app:Pw-mongo-2@cluster0.example.com/app"}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 2, "update", org, window, """{"connection_string": "changed"}""");

        window = await UpdateConfigAsync(org, id, """{"connection_string": "mongodb+srv://app:Pw-mongo-2@cluster0.example.com/app"}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 3, "update", org, window, "{}");

        // The older form replaces the string: the string is cleared, the parts are set.
        window = await UpdateConfigAsync(org, id, """{"hostname": "mongo.example.com", "database_name": "app", "username": "app", "password": "Pw-mongo-3"}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 4, "update", org, window, """
            {"connection_string": "cleared", "hostname": {"old": null, "new": "mongo.example.com"}, "username": {"old": null, "new": "app"},
             "password": "set", "database_name": {"old": null, "new": "app"}}
            """);

        window = await UpdateConfigAsync(org, id, """{"password": null, "username": null}""");
        RevisionKit.AssertRevision(await org.NewestAsync(id), 5, "update", org, window, """
            {"username": {"old": "app", "new": null}, "password": "cleared"}
            """);

        // Nothing secret is left to erase: the delete revision says so.
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        var deleted = (await app.StoredRevisionsAsync(id))[^1];
        Assert.Equal((6L, "delete", "{}"), (deleted.Number, deleted.Action, deleted.Changes));
        RevisionKit.AssertAudit(app.Logs.AuditEvents(id)[^1], "delete", org.Organization, org.KeyId, id, 6, string.Empty);
        AssertNoSecret(string.Join("\n", (await app.StoredRevisionsAsync(id)).Select(r => r.Changes)), ["Pw-mongo-1", "Pw-mongo-2", "Pw-mongo-3", "m1.example.com"]);
    }

    [Theory]
    [MemberData(nameof(AddRouteTypes))]
    public async Task Every_typed_create_route_writes_revision_1_with_each_secret_only_set(string type)
    {
        var org = await app.NewOrganizationAsync();
        var body = JsonNode.Parse(TypeCatalog.ForRoute(type).ValidBody)!.AsObject();

        var id = await org.Http.CreateSourceAsync(body.ToJsonString(), $"/api/v1/sources/add/{type}/");

        var history = await org.ListAsync(id);
        Assert.Equal(1, history["count"]!.GetValue<long>());
        var revision = history["results"]![0]!;
        Assert.Equal((1L, "create"), (revision["number"]!.GetValue<long>(), revision["action"]!.GetValue<string>()));
        var changes = revision["changes"]!.AsObject();
        Assert.Equal(TypeCatalog.ForRoute(type).DisplayName, changes["account_name"]!["new"]!.GetValue<string>());
        var stored = await app.StoredSourceAsync(id);
        foreach (var (field, _) in stored.Secrets)
        {
            Assert.Equal("set", changes[field]!.GetValue<string>());
        }

        foreach (var (field, value) in stored.Settings.Where(s => !s.Key.StartsWith('_')))
        {
            Assert.Equal(new JsonObject { ["old"] = null, ["new"] = value!.DeepClone() }.Compact(), changes[field]!.Compact());
        }

        Assert.Equal(1 + stored.Secrets.Count + stored.Settings.Count(s => !s.Key.StartsWith('_')), changes.Count);
        // The test bodies' short secrets ("p") would be found anywhere; the longer ones must not be.
        foreach (var (field, value) in body.Where(f => stored.Secrets.ContainsKey(f.Key)))
        {
            var secret = value is JsonValue text ? text.GetValue<string>() : value!.ToJsonString();
            if (secret.Length >= 6)
            {
                Assert.DoesNotContain(secret, history.ToJsonString(), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task The_unified_and_the_legacy_create_routes_write_revision_1()
    {
        var org = await app.NewOrganizationAsync();

        var unified = await org.Http.CreateSourceAsync(Wire.Postgres);
        var legacy = await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"account_name": "Legacy", "type": "mysql", "hostname": "my.example.com"}""")
            .Expect(HttpStatusCode.OK);
        var legacyId = legacy["id"]!.GetValue<long>();

        Assert.Equal("create", (await org.NewestAsync(unified))["action"]!.GetValue<string>());
        Assert.Equal(
            """{"account_name":{"old":null,"new":"Legacy"},"hostname":{"old":null,"new":"my.example.com"}}""",
            (await org.NewestAsync(legacyId))["changes"]!.Compact());
    }

    public static TheoryData<string> AddRouteTypes() => TypeCatalog.AddRoutes();

    private static Task<(DateTimeOffset From, DateTimeOffset To)> UpdateConfigAsync(OrgClient org, long id, string body) =>
        RevisionKit.TimedAsync(() => org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", body).Expect(HttpStatusCode.OK));

    private static void AssertNoSecret(string text, IEnumerable<string> values)
    {
        foreach (var value in values)
        {
            Assert.DoesNotContain(value, text, StringComparison.Ordinal);
        }
    }
}
