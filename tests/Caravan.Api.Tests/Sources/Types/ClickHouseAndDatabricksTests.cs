using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>The rules of CLICKHOUSE (<c>secure</c> is a boolean) and DATABRICKS (http_path, catalog.schema).</summary>
public sealed class ClickHouseAndDatabricksTests(CaravanApp app)
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ClickHouse_secure_takes_a_boolean(bool secure)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("CLICKHOUSE").BodyFor();
        body["secure"] = secure;
        body["port"] = 9000;

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());
        Assert.Equal(secure, (await app.StoredSourceAsync(id)).Settings["secure"]!.GetValue<bool>());

        await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["secure"] = !secure }.ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal(!secure, (await app.StoredSourceAsync(id)).Settings["secure"]!.GetValue<bool>());
    }

    [Fact]
    public async Task ClickHouse_secure_is_optional()
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("CLICKHOUSE").BodyFor();
        body.Remove("secure");
        body.Remove("database");

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());

        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("sql/1.0/warehouses/abc123")]
    [InlineData("https://adb-1.azuredatabricks.net/sql/1.0/warehouses/abc123")]
    [InlineData("warehouses")]
    public async Task Databricks_http_path_must_start_with_a_slash(string path)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get("DATABRICKS").BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);
        var body = Get("DATABRICKS").BodyFor();
        body["http_path"] = path;

        var created = await org.Http.PostJsonAsync("/api/v1/sources/add/databricks/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["http_path"] = path }.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(created, "http_path");
        AssertOnlyError(updated, "http_path");
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Databricks_schemas_may_be_schema_or_catalog_dot_schema()
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("DATABRICKS").BodyFor();
        body["selected_schemas"] = new JsonArray("sales", "main.sales", "hive_metastore.default");

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());

        Assert.Equal("""["sales","main.sales","hive_metastore.default"]""", (await app.StoredSourceAsync(id)).Settings["selected_schemas"]!.ToJsonString());
    }

    [Theory]
    [InlineData("""["a.b.c"]""", "Item 1")]
    [InlineData("""["sales", "main."]""", "Item 2")]
    [InlineData("""["sales", ".sales"]""", "Item 2")]
    [InlineData("""["main..sales"]""", "Item 1")]
    public async Task Databricks_schemas_of_another_shape_are_refused_by_position(string schemas, string position)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get("DATABRICKS").BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);
        var body = Get("DATABRICKS").BodyFor();
        body["selected_schemas"] = JsonNode.Parse(schemas);

        var created = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["selected_schemas"] = JsonNode.Parse(schemas) }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        foreach (var answer in new[] { created, updated })
        {
            AssertOnlyError(answer, "selected_schemas");
            Assert.All(Messages(answer, "selected_schemas"), m => Assert.StartsWith(position, m, StringComparison.Ordinal));
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
    }
}
