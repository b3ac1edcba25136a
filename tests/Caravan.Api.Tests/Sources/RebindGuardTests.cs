using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// The rebind guard (contract section 8): update-config may not move a source to another host or
/// Snowflake account while keeping its stored secrets; the 400 names each secret to send again,
/// and nothing is written.
/// </summary>
public sealed class RebindGuardTests(CaravanApp app)
{
    private const string Postgres = """
        {"type": "postgres", "hostname": "db.example.com", "port": 5433, "username": "analyst", "password": "first-pass", "database_name": "sales"}
        """;

    [Fact]
    public async Task Changing_the_hostname_alone_is_refused_naming_the_password_and_nothing_is_written()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var before = await app.StoredSourceAsync(id);
        var (config, _, etag) = await ConfigReadbackTests.ReadAsync(org, id);

        var answer = await org.Http.SendAsync("PATCH", TypeCatalog.UpdateUrl(id), """{"hostname": "evil.example.com"}""");

        answer.AssertExactly(HttpStatusCode.BadRequest,
            """{"error":"Invalid value for password.","errors":{"password":["Changing hostname requires sending password again."]}}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        var (after, _, etagAfter) = await ConfigReadbackTests.ReadAsync(org, id);
        Assert.Equal(etag, etagAfter);
        Assert.Equal(config.Compact(), after.Compact());
        Assert.Equal("first-pass", await app.RevealAsync(id, "password"));
    }

    [Fact]
    public async Task The_refusal_is_collected_with_the_other_validation_errors()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var before = await app.StoredSourceAsync(id);

        var body = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "evil.example.com", "port": 0, "username": ""}""")
            .Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["password", "port", "username"], TypeCatalog.ErrorKeys(body));
        Assert.Equal(["Changing hostname requires sending password again."], TypeCatalog.Messages(body, "password"));
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Sending_the_password_with_the_new_hostname_is_accepted()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "new.example.com", "password": "new-pass"}""").Expect(HttpStatusCode.OK);

        Assert.Equal("new.example.com", (await app.StoredSourceAsync(id)).Settings["hostname"]!.GetValue<string>());
        Assert.Equal("new-pass", await app.RevealAsync(id, "password"));
    }

    [Fact]
    public async Task Changing_the_port_alone_is_free()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"port": 6432, "database_name": "other", "username": "other"}""").Expect(HttpStatusCode.OK);

        Assert.Equal(6432, (await app.StoredSourceAsync(id)).Settings["port"]!.GetValue<int>());
        Assert.Equal("first-pass", await app.RevealAsync(id, "password"));
    }

    [Theory]
    [InlineData("db.example.com", "db.example.com")]
    [InlineData("db.example.com", "DB.Example.COM")]
    [InlineData("db.example.com", "db.example.com.")]
    [InlineData("10.0.0.5", "10.0.0.5")]
    [InlineData("::1", "[::1]")]
    [InlineData("[2001:db8::1]", "2001:0db8:0:0:0:0:0:1")]
    public async Task Resending_the_same_host_is_not_a_change(string stored, string sent)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres.Replace("db.example.com", stored, StringComparison.Ordinal));

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), new JsonObject { ["hostname"] = sent, ["port"] = 6000 }.ToJsonString())
            .Expect(HttpStatusCode.OK);

        Assert.Equal("first-pass", await app.RevealAsync(id, "password"));
    }

    [Fact]
    public async Task A_source_with_no_stored_secret_is_never_blocked()
    {
        var org = await app.NewOrganizationAsync();
        var legacy = (await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"account_name": "Later", "type": "mysql", "hostname": "a.example.com"}""")
            .Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();
        var mongo = await org.Http.CreateSourceAsync("""{"type": "mongodb", "hostname": "a.example.com", "database_name": "orders"}""");

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(legacy), """{"hostname": "b.example.com"}""").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(mongo), """{"hostname": "b.example.com"}""").Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_host_set_for_the_first_time_next_to_a_stored_secret_is_a_change()
    {
        var org = await app.NewOrganizationAsync();
        var id = (await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"account_name": "Later", "type": "mysql", "password": "early-pass"}""")
            .Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();

        var body = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "a.example.com"}""").Expect(HttpStatusCode.BadRequest);

        Assert.Equal("""{"password":["Changing hostname requires sending password again."]}""", body["errors"]!.Compact());
    }

    [Theory]
    [InlineData("CLICKHOUSE", "host", "password")]
    [InlineData("DATABRICKS", "server_hostname", "access_token")]
    [InlineData("MYSQL", "hostname", "password")]
    [InlineData("SINGLESTORE", "hostname", "password")]
    [InlineData("MSSQL", "hostname", "password")]
    [InlineData("SUPABASE", "hostname", "password")]
    [InlineData("MONGODB", "hostname", "password")]
    public async Task Every_type_guards_its_host_field(string typeName, string field, string secret)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(TypeCatalog.Get(typeName).BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var refused = await org.Http.SendAsync("PATCH", TypeCatalog.UpdateUrl(id), new JsonObject { [field] = "elsewhere.example.net" }.ToJsonString());

        refused.AssertExactly(HttpStatusCode.BadRequest,
            $$$"""{"error":"Invalid value for {{{secret}}}.","errors":{"{{{secret}}}":["Changing {{{field}}} requires sending {{{secret}}} again."]}}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), new JsonObject { [field] = "elsewhere.example.net", [secret] = "fresh-secret" }.ToJsonString())
            .Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_snowflake_account_change_names_every_stored_secret_and_needs_all_of_them()
    {
        var org = await app.NewOrganizationAsync();
        var passphrase = "phrase-" + Guid.NewGuid().ToString("N");
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var privateKey = rsa.ExportEncryptedPkcs8PrivateKeyPem(passphrase, new System.Security.Cryptography.PbeParameters(
            System.Security.Cryptography.PbeEncryptionAlgorithm.Aes256Cbc, System.Security.Cryptography.HashAlgorithmName.SHA256, 10_000));
        var id = await org.Http.CreateSourceAsync(new JsonObject
        {
            ["type"] = "snowflake", ["account"] = "xy12345.us-east-1", ["user"] = "bob", ["password"] = "sf-pass",
            ["private_key"] = privateKey, ["private_key_passphrase"] = passphrase,
        }.ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var refused = await org.Http.SendAsync("PATCH", TypeCatalog.UpdateUrl(id), """{"account": "attacker-acct"}""");
        refused.AssertExactly(HttpStatusCode.BadRequest,
            """{"error":"Invalid values for password, private_key, private_key_passphrase.","errors":{"password":["Changing account requires sending password again."],"private_key":["Changing account requires sending private_key again."],"private_key_passphrase":["Changing account requires sending private_key_passphrase again."]}}""");

        var partly = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"account": "attacker-acct", "password": "sf-pass-2"}""")
            .Expect(HttpStatusCode.BadRequest);
        Assert.Equal(["private_key", "private_key_passphrase"], TypeCatalog.ErrorKeys(partly));
        Assert.Equal(before, await app.StoredSourceAsync(id));

        // Resending what is needed, or clearing it, moves the source; an unchanged account in another case is no move.
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"account": "XY12345.US-EAST-1"}""").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id),
            """{"account": "myorg-new", "password": "sf-pass-2", "private_key": null, "private_key_passphrase": null}""").Expect(HttpStatusCode.OK);
        Assert.Equal("myorg-new", (await app.StoredSourceAsync(id)).Settings["account"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_generated_snowflake_key_pair_is_guarded_too()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "snowflake", "account": "xy12345", "user": "bob"}""");

        var refused = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"account": "other-acct"}""").Expect(HttpStatusCode.BadRequest);

        Assert.Equal("""{"private_key":["Changing account requires sending private_key again."]}""", refused["errors"]!.Compact());
    }

    // ---- connection strings ----

    [Fact]
    public async Task A_new_connection_string_carries_its_own_credentials_and_is_never_blocked()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        // Another host and no password at all: accepted, and the stored password is cleared, not kept.
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"connection_string": "postgresql://analyst@elsewhere.example.net/sales"}""")
            .Expect(HttpStatusCode.OK);

        var (body, _, _) = await ConfigReadbackTests.ReadAsync(org, id);
        Assert.Equal("elsewhere.example.net", body["config"]!["hostname"]!.GetValue<string>());
        Assert.Equal("""{"set":false}""", body["secrets"]!["password"]!.Compact());

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"connection_string": "postgresql://analyst:third@third.example.net/sales"}""")
            .Expect(HttpStatusCode.OK);
        Assert.Equal("third", await app.RevealAsync(id, "password"));
    }

    [Fact]
    public async Task A_source_stored_from_a_connection_string_guards_its_parsed_host()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "postgres", "connection_string": "postgresql://analyst:cs-pass@Db.Example.com:5433/sales"}""");
        var before = await app.StoredSourceAsync(id);

        var refused = await org.Http.SendAsync("PATCH", TypeCatalog.UpdateUrl(id), """{"hostname": "evil.example.com"}""");

        refused.AssertExactly(HttpStatusCode.BadRequest,
            """{"error":"Invalid value for password.","errors":{"password":["Changing hostname requires sending password again."]}}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "db.example.com", "port": 5434}""").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "new.example.com", "password": "cs-pass-2"}""").Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Credential_options_of_a_connection_string_can_only_move_with_a_new_connection_string()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(
            """{"type": "postgres", "connection_string": "postgresql://analyst:cs-pass@db.example.com/sales?sslmode=verify-full&sslpassword=key-pass"}""");
        var before = await app.StoredSourceAsync(id);

        var refused = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "new.example.com", "password": "cs-pass-2"}""")
            .Expect(HttpStatusCode.BadRequest);

        Assert.Equal(
            """{"connection_string":["Changing hostname requires sending connection_string again: the stored connection options include credentials."]}""",
            refused["errors"]!.Compact());
        Assert.Equal(before, await app.StoredSourceAsync(id));
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"connection_string": "postgresql://analyst:cs-pass-2@new.example.com/sales?sslmode=verify-full"}""")
            .Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Sql_server_connection_strings_follow_the_same_rules()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "mssql", "connection_string": "Server=tcp:sql.example.com,1434;Database=erp;User ID=sa;Password=ms-pass"}""");

        var refused = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "SQL2.example.com"}""").Expect(HttpStatusCode.BadRequest);
        Assert.Equal("""{"password":["Changing hostname requires sending password again."]}""", refused["errors"]!.Compact());

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"connection_string": "Server=sql2.example.com;Database=erp;User ID=sa;Password=ms-pass-2"}""")
            .Expect(HttpStatusCode.OK);
        Assert.Equal("ms-pass-2", await app.RevealAsync(id, "password"));
    }

    [Fact]
    public async Task Mongodb_connection_strings_replace_the_stored_one_and_the_complete_older_form_replaces_it_too()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "mongodb", "connection_string": "mongodb://app:mg-pass@mongo.example.com/orders"}""");

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"connection_string": "mongodb+srv://app@cluster9.example.net/orders"}""")
            .Expect(HttpStatusCode.OK);

        // The older form replaces the string: nothing stored is kept, so nothing is refused.
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "single.example.com", "database_name": "orders"}""")
            .Expect(HttpStatusCode.OK);
        var (body, _, _) = await ConfigReadbackTests.ReadAsync(org, id);
        Assert.Equal("""{"connection_string":{"set":false},"password":{"set":false}}""", body["secrets"]!.Compact());

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"username": "app", "password": "mg-pass-2"}""").Expect(HttpStatusCode.OK);
        var refused = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "evil.example.com"}""").Expect(HttpStatusCode.BadRequest);
        Assert.Equal("""{"password":["Changing hostname requires sending password again."]}""", refused["errors"]!.Compact());
    }

    // ---- switched off ----

    [Fact]
    public async Task With_AllowSecretRebind_the_host_moves_and_the_secrets_stay_as_in_camelAI()
    {
        await using var permissive = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Security:AllowSecretRebind"] = "true" });
        var org = await permissive.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var snowflake = await org.Http.CreateSourceAsync("""{"type": "snowflake", "account": "xy12345", "user": "bob", "password": "sf-pass"}""");

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "elsewhere.example.net"}""").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(snowflake), """{"account": "other-acct"}""").Expect(HttpStatusCode.OK);

        Assert.Equal("elsewhere.example.net", (await permissive.StoredSourceAsync(id)).Settings["hostname"]!.GetValue<string>());
        Assert.Equal("first-pass", await permissive.RevealAsync(id, "password"));
        Assert.Equal("sf-pass", await permissive.RevealAsync(snowflake, "password"));
    }
}
