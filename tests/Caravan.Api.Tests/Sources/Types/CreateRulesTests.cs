using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// Creating a source of every type through both create routes (contract sections 4 and 5): the
/// answer, the defaults, the required fields, the <c>type</c> rules and the routes themselves.
/// </summary>
public sealed class CreateRulesTests(CaravanApp app)
{
    /// <summary>Rows of (type, create URL): the unified route and the type's own one where it has one.</summary>
    public static TheoryData<string, string> Routes() => [.. RouteList()];

    private static IEnumerable<(string Type, string Url)> RouteList()
    {
        foreach (var type in All)
        {
            yield return (type.Name, "/api/v1/sources/");
            if (type.Slug is not null)
            {
                yield return (type.Name, $"/api/v1/sources/add/{type.Slug}/");
            }
        }
    }

    /// <summary>Rows of (type, required field, create URL).</summary>
    public static TheoryData<string, string, string> RequiredFields()
    {
        var rows = new TheoryData<string, string, string>();
        foreach (var (typeName, url) in RouteList())
        {
            foreach (var field in Get(typeName).Required)
            {
                rows.Add(typeName, field, url);
            }
        }

        return rows;
    }

    [Fact]
    public void The_catalogue_has_a_case_for_every_type_of_the_service_with_its_route()
    {
        Assert.Equal(
            FieldTypes.Select(t => (t.Name, t.AddRoute)).Order(),
            All.Select(t => (t.Name, t.Slug)).Order());

        // A new type made of something other than fields needs tests of its own, as FILE has.
        Assert.Equal(["FILE"], SourceTypes.All.Except(FieldTypes).Select(t => t.Name));
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task A_valid_create_answers_the_id_only_and_the_source_is_fully_configured_under_the_display_name(string typeName, string url)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var body = type.BodyFor();
        if (url != "/api/v1/sources/")
        {
            body.Remove("type");
        }

        var answer = await org.Http.PostJsonAsync(url, body.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal(["id"], answer.AsObject().Select(p => p.Key));
        var id = answer["id"]!.GetValue<long>();
        Assert.True(id > 0);
        var source = await org.GetSourceAsync(id);
        Assert.Equal(typeName, source["type"]!.GetValue<string>());
        Assert.Equal(type.DisplayName, source["account_name"]!.GetValue<string>());
        Assert.True(source["is_fully_configured"]!.GetValue<bool>());
        Assert.True((await app.StoredSourceAsync(id)).IsFullyConfigured);
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithTwoForms), MemberType = typeof(TypeCatalog))]
    public async Task The_connection_string_form_creates_a_fully_configured_source(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", type.BodyFor("connection_string").ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal(["id"], answer.AsObject().Select(p => p.Key));
        var source = await org.GetSourceAsync(answer["id"]!.GetValue<long>());
        Assert.Equal(type.DisplayName, source["account_name"]!.GetValue<string>());
        Assert.True(source["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task A_given_account_name_is_stored_trimmed(string typeName, string url)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get(typeName).BodyFor();
        body["account_name"] = "  Team warehouse  ";

        var id = await org.Http.CreateSourceAsync(body.ToJsonString(), url);

        Assert.Equal("Team warehouse", (await org.GetSourceAsync(id))["account_name"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(RequiredFields))]
    public async Task A_missing_required_field_is_named(string typeName, string field, string url)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get(typeName).BodyFor();
        body.Remove(field);

        var answer = await org.Http.PostJsonAsync(url, body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, field, TypeCatalog.Required);
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithOneForm), MemberType = typeof(TypeCatalog))]
    public async Task A_create_with_no_fields_names_every_required_field_at_once(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", $$"""{"type": "{{typeName}}"}""").Expect(HttpStatusCode.BadRequest);

        Assert.Equal(type.Required.Order(StringComparer.Ordinal), ErrorKeys(answer));
        Assert.All(type.Required, field => Assert.Equal([TypeCatalog.Required], Messages(answer, field)));
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithTwoForms), MemberType = typeof(TypeCatalog))]
    public async Task A_two_form_create_with_neither_form_is_a_non_field_error(string typeName)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", $$"""{"type": "{{typeName}}", "selected_schemas": []}""")
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "non_field_errors");
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task Type_is_accepted_in_any_case_and_returned_upper_case(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var spellings = new[] { typeName.ToLowerInvariant(), typeName, typeName[..1] + typeName[1..].ToLowerInvariant() };

        foreach (var spelling in spellings)
        {
            var body = Get(typeName).BodyFor();
            body["type"] = spelling;

            var id = await org.Http.CreateSourceAsync(body.ToJsonString());

            Assert.Equal(typeName, (await org.GetSourceAsync(id))["type"]!.GetValue<string>());
        }
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithAddRoute), MemberType = typeof(TypeCatalog))]
    public async Task A_type_route_takes_its_own_type_in_any_case(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);

        foreach (var spelling in new[] { type.Slug!, typeName })
        {
            var body = type.BodyFor();
            body["type"] = spelling;

            var id = await org.Http.CreateSourceAsync(body.ToJsonString(), $"/api/v1/sources/add/{type.Slug}/");

            Assert.Equal(typeName, (await org.GetSourceAsync(id))["type"]!.GetValue<string>());
        }
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithAddRoute), MemberType = typeof(TypeCatalog))]
    public async Task A_type_route_refuses_a_body_of_another_type(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var other = All.First(t => t.Name != typeName && t.Slug is not null);

        foreach (var mismatch in new[] { other.Name, other.Name.ToLowerInvariant(), "SUPABASE" })
        {
            var body = type.BodyFor();
            body["type"] = mismatch;

            var answer = await org.Http.PostJsonAsync($"/api/v1/sources/add/{type.Slug}/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

            Assert.Equal(["type"], ErrorKeys(answer));
        }
    }

    [Theory]
    [InlineData("\"oracle\"")]
    [InlineData("\"\"")]
    [InlineData("\"POSTGRES \"")]
    [InlineData("\"postgresql\"")]
    [InlineData("5")]
    [InlineData("null")]
    [InlineData("[\"POSTGRES\"]")]
    public async Task An_unknown_type_is_refused_on_type(string type)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("POSTGRES").BodyFor();
        body["type"] = JsonNode.Parse(type);

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["type"], ErrorKeys(answer));
    }

    [Fact]
    public async Task The_unified_route_needs_a_type()
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("MYSQL").BodyFor();
        body.Remove("type");

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "type", TypeCatalog.Required);
    }

    [Fact]
    public async Task Supabase_has_no_add_route_but_is_created_through_the_unified_route()
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("SUPABASE").BodyFor().ToJsonString();

        using var response = await org.Http.PostJsonAsync("/api/v1/sources/add/supabase/", body);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);

        var id = await org.Http.CreateSourceAsync(body);
        var source = await org.GetSourceAsync(id);
        Assert.Equal("SUPABASE", source["type"]!.GetValue<string>());
        Assert.Equal("Supabase", source["account_name"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task A_refused_create_stores_nothing(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get(typeName).BodyFor();
        body[Get(typeName).ForeignField] = "x";

        await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        var list = await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(0, list["count"]!.GetValue<int>());
    }
}
