using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// Contract section 1: a 400 names every problem of the request together. A field refused on its
/// own (a blank host, a port that is not a number) must not hide the type's own rules (the fields
/// still missing, the forms mixed), on any write route and for any type.
/// </summary>
public sealed class EveryProblemTogetherTests(CaravanApp app)
{
    /// <summary>Rows of (type, fields sent on create with at least one refused on its own, every field the answer must name).</summary>
    public static TheoryData<string, string, string[]> Creates() => new()
    {
        { "MYSQL", """{"hostname": "", "port": "x"}""", ["hostname", "port", "username", "password", "database_name"] },
        { "SINGLESTORE", """{"hostname": "", "port": "x"}""", ["hostname", "port", "username", "password", "database_name"] },
        { "POSTGRES", """{"hostname": "", "port": "x"}""", ["hostname", "port", "username", "password", "database_name"] },
        { "SUPABASE", """{"hostname": "", "port": "x"}""", ["hostname", "port", "username", "password", "database_name"] },
        { "MSSQL", """{"hostname": "", "port": "x"}""", ["hostname", "port", "username", "password", "database_name"] },
        { "CLICKHOUSE", """{"host": "", "port": "x"}""", ["host", "port", "username", "password"] },
        { "MONGODB", """{"hostname": "", "port": "x"}""", ["hostname", "port", "database_name"] },
        { "SNOWFLAKE", """{"account": "", "warehouse": 5}""", ["account", "warehouse", "user"] },
        { "BIGQUERY", """{"selected_datasets": "x"}""", ["selected_datasets", "service_account_key"] },
        { "MOTHERDUCK", """{"database_name": ""}""", ["database_name", "token"] },
        { "DATABRICKS", """{"server_hostname": "", "catalog": 5}""", ["server_hostname", "catalog", "http_path", "access_token"] },
        { "MCP", """{"selected_tools": "x", "access_token": ""}""", ["selected_tools", "access_token", "base_url"] },
    };

    [Fact]
    public void Every_type_has_a_case()
    {
        Assert.Equal(All.Select(t => t.Name).Order(), Creates().Select(row => row.Data.Item1).Order());
    }

    [Theory]
    [MemberData(nameof(Creates))]
    public async Task A_create_names_every_problem_in_one_answer_on_both_routes(string typeName, string fields, string[] expected)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var body = JsonNode.Parse(fields)!.AsObject();
        var urls = new List<(string Url, JsonObject Body)> { ("/api/v1/sources/", With(body, "type", typeName.ToLowerInvariant())) };
        if (type.Slug is not null)
        {
            urls.Add(($"/api/v1/sources/add/{type.Slug}/", (JsonObject)body.DeepClone()));
        }

        foreach (var (url, sent) in urls)
        {
            var answer = await org.Http.PostJsonAsync(url, sent.ToJsonString()).Expect(HttpStatusCode.BadRequest);
            Assert.Equal(expected.Order(), ErrorKeys(answer).Order());
        }

        Assert.Equal(0, await org.CountAsync());
    }

    [Fact]
    public async Task The_legacy_route_names_a_refused_field_and_mixed_forms_together()
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/add/",
            """{"type": "postgres", "account_name": "Mixed", "port": "x", "connection_string": "postgres://u:pw@db.example.com/sales"}""")
            .Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["non_field_errors", "port"], ErrorKeys(answer).Order());
        Assert.Equal(0, await org.CountAsync());
    }

    [Theory]
    [InlineData("MYSQL", """{"port": "x", "hostname": null}""", new[] { "hostname", "port" })]
    [InlineData("CLICKHOUSE", """{"port": 0, "username": null}""", new[] { "port", "username" })]
    [InlineData("POSTGRES", """{"port": "x", "hostname": "other.example.com", "connection_string": "postgres://u:pw@db.example.com/sales"}""",
        new[] { "non_field_errors", "port" })]
    [InlineData("DATABRICKS", """{"catalog": 5, "http_path": null}""", new[] { "catalog", "http_path" })]
    public async Task An_update_names_a_refused_field_and_the_types_own_rules_together(string typeName, string change, string[] expected)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get(typeName).BodyFor().ToJsonString());
        var before = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), change).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(expected.Order(), ErrorKeys(answer).Order());
        var after = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(before.ToJsonString(), after.ToJsonString());
    }

    private static JsonObject With(JsonObject body, string field, string value)
    {
        var copy = (JsonObject)body.DeepClone();
        copy[field] = value;
        return copy;
    }
}
