using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Sources;

/// <summary>The seed endpoint: PATCH /api/v1/sources/{id}/update-config/ and its merge semantics.</summary>
public sealed class UpdateConfigTests(CaravanApp app)
{
    private const string Postgres = """
        {"type": "postgres", "account_name": "Warehouse", "hostname": "db.example.com", "port": 5433,
         "username": "analyst", "password": "first-pass", "database_name": "sales", "selected_schemas": ["public"]}
        """;

    [Fact]
    public async Task Answers_id_account_name_and_type()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        var body = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 6543}""").Expect(HttpStatusCode.OK);

        Assert.Equal($$"""{"id":{{id}},"account_name":"Warehouse","type":"POSTGRES"}""", body.Compact());
    }

    [Fact]
    public async Task Works_without_the_trailing_slash()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config", """{"port": 6543}""").Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Changing_the_password_alone_keeps_every_other_field()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"password": "second-pass"}""").Expect(HttpStatusCode.OK);

        var stored = await app.StoredSourceAsync(id);
        Assert.Equal("db.example.com", stored.Settings["hostname"]!.GetValue<string>());
        Assert.Equal(5433, stored.Settings["port"]!.GetValue<int>());
        Assert.Equal("analyst", stored.Settings["username"]!.GetValue<string>());
        Assert.Equal("sales", stored.Settings["database_name"]!.GetValue<string>());
        Assert.Equal("""["public"]""", stored.Settings["selected_schemas"]!.ToJsonString());
        Assert.Equal("second-pass", await app.RevealAsync(id, "password"));
        Assert.True((await GetAsync(org, id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Omitted_fields_are_kept_and_given_ones_replaced()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        // Not the host: moving a source with its stored password kept is the rebind guard's (RebindGuardTests).
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/",
            """{"account_name": "  Renamed  ", "database_name": "sales2", "selected_schemas": ["a", "b"]}""").Expect(HttpStatusCode.OK);

        var stored = await app.StoredSourceAsync(id);
        Assert.Equal("Renamed", stored.AccountName);
        Assert.Equal("sales2", stored.Settings["database_name"]!.GetValue<string>());
        Assert.Equal("db.example.com", stored.Settings["hostname"]!.GetValue<string>());
        Assert.Equal(5433, stored.Settings["port"]!.GetValue<int>());
        Assert.Equal("""["a","b"]""", stored.Settings["selected_schemas"]!.ToJsonString());
        Assert.Equal("first-pass", await app.RevealAsync(id, "password"));
    }

    [Fact]
    public async Task Null_clears_an_optional_field_back_to_its_default()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": null, "selected_schemas": null}""")
            .Expect(HttpStatusCode.OK);

        var stored = await app.StoredSourceAsync(id);
        Assert.False(stored.Settings.ContainsKey("port"));
        Assert.False(stored.Settings.ContainsKey("selected_schemas"));
    }

    [Theory]
    [InlineData("hostname")]
    [InlineData("username")]
    [InlineData("password")]
    [InlineData("database_name")]
    public async Task Null_on_a_required_field_is_refused_and_nothing_changes(string field)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var before = await app.StoredSourceAsync(id);

        var body = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", $$"""{"port": 1, "{{field}}": null}""")
            .Expect(HttpStatusCode.BadRequest);

        Assert.Equal($$"""{"{{field}}":["This field is required for POSTGRES sources."]}""", body["errors"]!.Compact());
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task A_secret_can_be_cleared_when_the_type_does_not_need_it()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "snowflake", "account": "xy12345.us-east-1", "user": "bob", "password": "pw-one"}""");

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"warehouse": "WH", "password": null}""").Expect(HttpStatusCode.OK);

        var stored = await app.StoredSourceAsync(id);
        Assert.False(stored.Secrets.ContainsKey("password"));
        Assert.Equal("WH", stored.Settings["warehouse"]!.GetValue<string>());
        Assert.False((await GetAsync(org, id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Every_error_is_collected_and_nothing_is_written()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var before = await app.StoredSourceAsync(id);

        var body = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/",
            """{"account_name": "", "hostname": "https://db", "port": 70000, "password": "*****", "host": "x", "type": "mysql"}""")
            .Expect(HttpStatusCode.BadRequest);

        var errors = body["errors"]!.AsObject();
        Assert.Equal(["account_name", "host", "hostname", "password", "port", "type"], errors.Select(e => e.Key).Order(StringComparer.Ordinal));
        Assert.Equal("This field may not be blank.", errors["account_name"]![0]!.GetValue<string>());
        Assert.Equal("The type of a source cannot be changed.", errors["type"]![0]!.GetValue<string>());
        Assert.Equal("Ensure this value is less than or equal to 65535.", errors["port"]![0]!.GetValue<string>());
        Assert.Equal("Send the real secret, or omit the field to keep the stored one.", errors["password"]![0]!.GetValue<string>());
        Assert.Equal("Not a valid field for POSTGRES sources.", errors["host"]![0]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(body["error"]!.GetValue<string>()));
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task The_stored_type_may_be_repeated_in_any_case()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"type": "Postgres", "port": 5439}""").Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task An_empty_body_changes_nothing()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        var before = (await org.Http.GetAsync($"/api/v1/sources/{id}/")).Headers.ETag;
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"/api/v1/sources/{id}/update-config/");
        await org.Http.SendAsync(request).Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", "{}").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"type": "postgres"}""").Expect(HttpStatusCode.OK);

        // No new version (the ETag stays) and no revision besides the create.
        Assert.Equal(before, (await org.Http.GetAsync($"/api/v1/sources/{id}/")).Headers.ETag);
        var revisions = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/revisions/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(1, revisions!["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_legacy_source_becomes_fully_configured_once_its_fields_arrive()
    {
        var org = await app.NewOrganizationAsync();
        var created = await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"account_name": "Later", "type": "mysql"}""").Expect(HttpStatusCode.OK);
        var id = created["id"]!.GetValue<long>();
        Assert.False(created["is_fully_configured"]!.GetValue<bool>());

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"hostname": "mysql.internal", "username": "u"}""").Expect(HttpStatusCode.OK);
        Assert.False((await GetAsync(org, id))["is_fully_configured"]!.GetValue<bool>());

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"password": "pw", "database_name": "shop"}""").Expect(HttpStatusCode.OK);
        Assert.True((await GetAsync(org, id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Another_organizations_source_is_not_found_and_unchanged()
    {
        var owner = await app.NewOrganizationAsync();
        var stranger = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Postgres);
        var before = await app.StoredSourceAsync(id);

        var body = await stranger.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"password": "stolen"}""").Expect(HttpStatusCode.NotFound);

        Assert.Equal("""{"detail":"Not found."}""", body.Compact());
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("99999999999")]
    [InlineData("1.5")]
    public async Task Ids_that_are_not_live_positive_integers_are_not_found(string id)
    {
        var org = await app.NewOrganizationAsync();

        var body = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 1}""").Expect(HttpStatusCode.NotFound);

        Assert.Equal("""{"detail":"Not found."}""", body.Compact());
    }

    [Fact]
    public async Task A_deleted_source_is_not_found()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 1}""").Expect(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_connection_string_replaces_the_individual_fields_and_later_fields_change_only_their_part()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/",
            """{"connection_string": "postgresql://cs_user:cs-pass@cs.example.com/csdb?sslmode=require"}""").Expect(HttpStatusCode.OK);
        var stored = await app.StoredSourceAsync(id);
        Assert.Equal("cs.example.com", stored.Settings["hostname"]!.GetValue<string>());
        Assert.False(stored.Settings.ContainsKey("port"));
        Assert.Equal("cs_user", stored.Settings["username"]!.GetValue<string>());
        Assert.Equal("csdb", stored.Settings["database_name"]!.GetValue<string>());
        Assert.Equal("require", stored.Settings["options"]!["sslmode"]!.GetValue<string>());
        Assert.Equal("""["public"]""", stored.Settings["selected_schemas"]!.ToJsonString());
        Assert.Equal("cs-pass", await app.RevealAsync(id, "password"));

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"password": "new-pass"}""").Expect(HttpStatusCode.OK);
        stored = await app.StoredSourceAsync(id);
        Assert.Equal("cs.example.com", stored.Settings["hostname"]!.GetValue<string>());
        Assert.Equal("require", stored.Settings["options"]!["sslmode"]!.GetValue<string>());
        Assert.Equal("new-pass", await app.RevealAsync(id, "password"));
    }

    [Fact]
    public async Task Mixing_a_connection_string_with_fields_is_refused()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);
        var before = await app.StoredSourceAsync(id);

        var body = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/",
            """{"connection_string": "postgres://u:p@h/d", "password": "x1"}""").Expect(HttpStatusCode.BadRequest);

        Assert.NotNull(body["errors"]!["non_field_errors"]);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task A_bad_connection_string_is_refused_without_repeating_it()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres);

        using var response = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/",
            """{"connection_string": "mysql://leaky:Sup3rS3cretLeak@h:99999/d"}""");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("connection_string", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Sup3rS3cretLeak", text, StringComparison.Ordinal);
        Assert.DoesNotContain("leaky", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parallel_updates_of_different_fields_all_survive()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(
            """{"type": "snowflake", "account": "xy12345", "user": "bob", "password": "pw-0"}""");
        // Not "account": changing it while a password is stored is the rebind guard's (RebindGuardTests).
        string[] fields = ["warehouse", "database", "role", "user", "password"];

        // Eight rounds of all five fields at once; after the last round every field must hold round 7's value.
        for (var round = 0; round < 8; round++)
        {
            var r = round;
            await Task.WhenAll(fields.Select(field => org.Http.PatchJsonAsync(
                $"/api/v1/sources/{id}/update-config/", $$"""{"{{field}}": "{{field}}-{{r}}"}""").Expect(HttpStatusCode.OK)));
        }

        var stored = await app.StoredSourceAsync(id);
        foreach (var field in fields.Where(f => f != "password"))
        {
            Assert.Equal($"{field}-7", stored.Settings[field]!.GetValue<string>());
        }

        Assert.Equal("password-7", await app.RevealAsync(id, "password"));
    }

    private static async Task<JsonNode> GetAsync(OrgClient org, long id) =>
        await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.OK);
}
