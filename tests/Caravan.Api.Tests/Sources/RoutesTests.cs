using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;

namespace Caravan.Api.Tests.Sources;

/// <summary>Section 4, route by route: the success shapes, renames, deletes and trailing slashes.</summary>
public sealed class RoutesTests(CaravanApp app)
{
    private static readonly string[] ConnectionKeys = ["account_name", "created_at", "id", "is_fully_configured", "type"];

    // ---- creates ----

    [Fact]
    public async Task Create_answers_200_with_only_the_id()
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", "/api/v1/sources/", Wire.Postgres);

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        Assert.Matches(@"^\{""id"":[1-9][0-9]*\}$", answer.Body);
        Assert.Equal([answer.Json["id"]!.GetValue<long>()], await org.ListedIdsAsync());
    }

    [Theory]
    [MemberData(nameof(AddRouteTypes))]
    public async Task Create_on_the_typed_route_answers_200_with_the_id_and_type_may_be_omitted(string type)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", $"/api/v1/sources/add/{type}/", TypeCatalog.ForRoute(type).ValidBody);

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Matches(@"^\{""id"":[1-9][0-9]*\}$", answer.Body);
        var id = answer.Json["id"]!.GetValue<long>();
        var connection = await GetAsync(org, id);
        Assert.Equal(type.ToUpperInvariant(), connection["type"]!.GetValue<string>());
        Assert.Equal(TypeCatalog.ForRoute(type).DisplayName, connection["account_name"]!.GetValue<string>());
        Assert.True(connection["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [MemberData(nameof(AddRouteTypes))]
    public async Task Create_on_the_typed_route_accepts_its_own_type_in_any_case(string type)
    {
        var org = await app.NewOrganizationAsync();
        var body = JsonNode.Parse(TypeCatalog.ForRoute(type).ValidBody)!.AsObject();
        body["type"] = char.ToUpperInvariant(type[0]) + type[1..];

        var id = await org.Http.CreateSourceAsync(body.ToJsonString(), $"/api/v1/sources/add/{type}/");

        Assert.Equal(type.ToUpperInvariant(), (await GetAsync(org, id))["type"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(AddRouteTypes))]
    public async Task Create_on_the_typed_route_refuses_another_type(string type)
    {
        var org = await app.NewOrganizationAsync();
        var body = JsonNode.Parse(TypeCatalog.ForRoute(type).ValidBody)!.AsObject();
        body["type"] = type == "mysql" ? "postgres" : "mysql";

        var answer = await org.Http.SendAsync("POST", $"/api/v1/sources/add/{type}/", body.ToJsonString());

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.NotNull(answer.Json["errors"]!["type"]);
        Assert.Equal(0, await org.CountAsync());
    }

    [Fact]
    public async Task Legacy_add_answers_200_with_the_whole_connection_not_fully_configured()
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", "/api/v1/sources/add/", """{"account_name": "  Later  ", "type": "Mysql"}""");

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        var body = answer.Json.AsObject();
        AssertConnectionShape(body);
        Assert.Equal("Later", body["account_name"]!.GetValue<string>());
        Assert.Equal("MYSQL", body["type"]!.GetValue<string>());
        Assert.False(body["is_fully_configured"]!.GetValue<bool>());
        var id = body["id"]!.GetValue<long>();
        Assert.Equal(body.Compact(), (await GetAsync(org, id)).Compact());
    }

    [Fact]
    public async Task Legacy_add_with_complete_fields_still_answers_the_connection_object()
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", "/api/v1/sources/add/",
            """{"account_name": "Full", "type": "postgres", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""");

        answer.AssertStatus(HttpStatusCode.OK);
        AssertConnectionShape(answer.Json.AsObject());
    }

    [Theory]
    [InlineData("""{"type": "mysql"}""", "account_name")]
    [InlineData("""{"account_name": "Later"}""", "type")]
    public async Task Legacy_add_needs_account_name_and_type(string json, string missing)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", "/api/v1/sources/add/", json);

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal("""["This field is required."]""", answer.Json["errors"]![missing]!.Compact());
        Assert.Equal(0, await org.CountAsync());
    }

    // ---- GET ----

    [Fact]
    public async Task Get_answers_exactly_the_five_connection_keys()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(
            """{"type": "Postgres", "account_name": "Main", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""");

        var answer = await org.Http.GetRawAsync($"/api/v1/sources/{id}/");

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        var body = answer.Json.AsObject();
        AssertConnectionShape(body);
        Assert.Equal(id, body["id"]!.GetValue<long>());
        Assert.Equal("Main", body["account_name"]!.GetValue<string>());
        Assert.Equal("POSTGRES", body["type"]!.GetValue<string>());
        Assert.True(body["is_fully_configured"]!.GetValue<bool>());
        var createdAt = DateTimeOffset.Parse(body["created_at"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(createdAt, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.DoesNotContain("db.example.com", answer.Body, StringComparison.Ordinal);
    }

    // ---- PUT and PATCH ----

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    public async Task Rename_answers_the_connection_with_the_trimmed_name(string method)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await GetAsync(org, id);

        var answer = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/", """{"account_name": "  Renamed warehouse \t"}""");

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        var body = answer.Json.AsObject();
        AssertConnectionShape(body);
        Assert.Equal("Renamed warehouse", body["account_name"]!.GetValue<string>());
        Assert.Equal(id, body["id"]!.GetValue<long>());
        Assert.Equal("POSTGRES", body["type"]!.GetValue<string>());
        Assert.Equal(before["created_at"]!.GetValue<string>(), body["created_at"]!.GetValue<string>());
        Assert.True(body["is_fully_configured"]!.GetValue<bool>());
        Assert.Equal("Renamed warehouse", (await app.StoredSourceAsync(id)).AccountName);
        Assert.Equal(body.Compact(), (await GetAsync(org, id)).Compact());
    }

    [Fact]
    public async Task Put_without_account_name_is_refused_and_nothing_changes()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync("PUT", $"/api/v1/sources/{id}/", "{}");

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        Assert.Equal("""{"account_name":["This field is required."]}""", answer.Json["errors"]!.Compact());
        Assert.False(string.IsNullOrWhiteSpace(answer.Json["error"]!.GetValue<string>()));
        Assert.Equal(["error", "errors"], answer.Json.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Patch_without_account_name_keeps_the_name()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "mysql", "account_name": "Shop", "hostname": "h.example.com", "username": "u", "password": "p", "database_name": "d"}""");

        var answer = await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/", "{}");

        answer.AssertStatus(HttpStatusCode.OK);
        AssertConnectionShape(answer.Json.AsObject());
        Assert.Equal("Shop", answer.Json["account_name"]!.GetValue<string>());
        Assert.Equal("Shop", (await app.StoredSourceAsync(id)).AccountName);
    }

    [Theory]
    [InlineData("PUT", "hostname", "\"other.example.com\"")]
    [InlineData("PUT", "password", "\"new-pass\"")]
    [InlineData("PUT", "port", "6543")]
    [InlineData("PUT", "selected_schemas", "[\"a\"]")]
    [InlineData("PUT", "nonsense", "1")]
    [InlineData("PATCH", "hostname", "\"other.example.com\"")]
    [InlineData("PATCH", "password", "\"new-pass\"")]
    [InlineData("PATCH", "port", "6543")]
    [InlineData("PATCH", "connection_string", "\"postgres://u:p@h/d\"")]
    [InlineData("PATCH", "nonsense", "null")]
    public async Task Rename_refuses_any_other_field_and_writes_nothing(string method, string field, string value)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/", $$"""{"account_name": "New name", "{{field}}": {{value}}}""");

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal($$"""{"{{field}}":["{{Wire.ReadOnlyFieldMessage}}"]}""", answer.Json["errors"]!.Compact());
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    public async Task Rename_ignores_the_read_only_connection_fields_sent_back(string method)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var other = await org.Http.CreateSourceAsync(Wire.Postgres);
        var connection = (await GetAsync(org, id)).AsObject();

        // The client's copy, name edited, echoed back whole: the read-only fields are ignored, even when they lie.
        connection["account_name"] = "Edited";
        var echoed = connection.Compact();
        var lying = $$"""{"id": {{other}}, "account_name": "Lied", "type": "MYSQL", "created_at": "2001-01-01T00:00:00Z", "is_fully_configured": false}""";

        var first = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/", echoed);
        first.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(echoed, first.Json.Compact());

        var second = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/", lying);
        second.AssertStatus(HttpStatusCode.OK);
        var body = second.Json;
        Assert.Equal(id, body["id"]!.GetValue<long>());
        Assert.Equal("Lied", body["account_name"]!.GetValue<string>());
        Assert.Equal("POSTGRES", body["type"]!.GetValue<string>());
        Assert.Equal(connection["created_at"]!.GetValue<string>(), body["created_at"]!.GetValue<string>());
        Assert.True(body["is_fully_configured"]!.GetValue<bool>());
        Assert.Equal(TypeCatalog.ForRoute("postgres").DisplayName, (await GetAsync(org, other))["account_name"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(BadAccountNames))]
    public async Task Rename_refuses_a_bad_account_name(string method, string value)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/", $$"""{"account_name": {{value}}}""");

        answer.AssertStatus(HttpStatusCode.BadRequest);
        var errors = answer.Json["errors"]!.AsObject();
        Assert.Equal(["account_name"], errors.Select(e => e.Key));
        Assert.NotEmpty(errors["account_name"]!.AsArray());
        Assert.All(errors["account_name"]!.AsArray(), m => Assert.False(string.IsNullOrWhiteSpace(m!.GetValue<string>())));
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("PUT", "\"\"", "This field may not be blank.")]
    [InlineData("PATCH", "\"   \"", "This field may not be blank.")]
    [InlineData("PUT", "null", "This field may not be null.")]
    public async Task Rename_names_the_problem_with_the_account_name(string method, string value, string message)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);

        var answer = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/", $$"""{"account_name": {{value}}}""");

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal($$"""{"account_name":["{{message}}"]}""", answer.Json["errors"]!.Compact());
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    public async Task Rename_accepts_255_characters_after_trimming(string method)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var name = new string('n', 255);

        var answer = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/", $$"""{"account_name": "  {{name}}  "}""");

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(name, (await app.StoredSourceAsync(id)).AccountName);
    }

    // ---- DELETE ----

    [Fact]
    public async Task Delete_answers_204_with_an_empty_body_and_erases_the_secrets()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        Assert.NotEqual("{}", (await app.StoredSourceAsync(id)).SecretsJson);

        using var response = await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.True(response.Content.Headers.ContentLength is null or 0);
        var stored = await app.StoredSourceAsync(id);
        Assert.Equal("{}", stored.SecretsJson);
        Assert.NotNull(stored.DeletedAt);
    }

    [Fact]
    public async Task A_deleted_source_is_gone_from_every_route()
    {
        var org = await app.NewOrganizationAsync();
        var keep = await org.Http.CreateSourceAsync(Wire.Postgres);
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        var afterDelete = await app.StoredSourceAsync(id);

        (await org.Http.SendAsync("GET", $"/api/v1/sources/{id}/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        (await org.Http.SendAsync("PUT", $"/api/v1/sources/{id}/", """{"account_name": "Back"}""")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/", """{"account_name": "Back"}""")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"password": "again"}""")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        (await org.Http.SendAsync("DELETE", $"/api/v1/sources/{id}/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);

        Assert.Equal([keep], await org.ListedIdsAsync());
        Assert.Equal(1, await org.CountAsync());
        Assert.Equal(afterDelete, await app.StoredSourceAsync(id));
    }

    // ---- trailing slashes ----

    [Theory]
    [MemberData(nameof(AllRoutesBothWays))]
    public async Task Every_route_answers_directly_with_and_without_the_trailing_slash(
        string method, string url, string? body, HttpStatusCode status, bool trailingSlash)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var client = Wire.NoRedirectClient(app, org);
        var path = url.WithId(id);
        path = trailingSlash ? path : path.TrimEnd('/');

        var answer = await client.SendAsync(method, path, body);

        answer.AssertStatus(status);
        Assert.Null(answer.Location);
        if (status == HttpStatusCode.NoContent)
        {
            Assert.Empty(answer.Body);
            Assert.Equal("{}", (await app.StoredSourceAsync(id)).SecretsJson);
        }
        else
        {
            Assert.Equal(Wire.JsonContentType, answer.ContentType);
            Assert.NotNull(answer.Json);
        }
    }

    public static TheoryData<string> AddRouteTypes() => TypeCatalog.AddRoutes();

    public static TheoryData<string, string> BadAccountNames()
    {
        var data = new TheoryData<string, string>();
        string[] values =
        [
            "\"\"",
            "\"   \"",
            "\"\\t\\n\"",
            JsonText.Quote(new string('x', 256)),
            JsonText.Quote(" " + new string('x', 256) + " "),
            "123",
            "true",
            "[\"a\"]",
            "{\"name\": \"a\"}",
        ];
        foreach (var method in new[] { "PUT", "PATCH" })
        {
            foreach (var value in values)
            {
                data.Add(method, value);
            }
        }

        data.Add("PATCH", "null");
        return data;
    }

    public static TheoryData<string, string, string?, HttpStatusCode, bool> AllRoutesBothWays()
    {
        var data = new TheoryData<string, string, string?, HttpStatusCode, bool>();
        foreach (var (method, url, body, status) in Wire.AllRoutes())
        {
            data.Add(method, url, body, status, true);
            data.Add(method, url, body, status, false);
        }

        return data;
    }

    private static void AssertConnectionShape(JsonObject body)
    {
        Assert.Equal(ConnectionKeys, body.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(JsonValueKind.Number, body["id"]!.GetValueKind());
        Assert.True(body["id"]!.GetValue<long>() > 0);
        Assert.Equal(JsonValueKind.String, body["account_name"]!.GetValueKind());
        Assert.Matches("^[A-Z]+$", body["type"]!.GetValue<string>());
        Assert.Matches(new Regex(Wire.RfcSecondsPattern), body["created_at"]!.GetValue<string>());
        Assert.True(body["is_fully_configured"]!.GetValueKind() is JsonValueKind.True or JsonValueKind.False);
    }

    private static async Task<JsonNode> GetAsync(OrgClient org, long id) =>
        await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.OK);
}
