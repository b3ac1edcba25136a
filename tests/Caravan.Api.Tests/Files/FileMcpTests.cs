using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// The MCP tools on a FILE source of every format (docs/files.md): list_schemas gives its tables,
/// describe_table their columns (schema <c>main</c>), run_query the same exact results as the query route.
/// </summary>
public sealed class FileMcpTests(CaravanApp app)
{
    [Fact]
    public async Task List_schemas_describe_table_and_run_query_see_every_table_of_every_format()
    {
        var org = await app.NewOrganizationAsync();
        var (id, _) = await FileSamples.UploadAllAsync(org.Http);
        await using var client = await McpKit.ConnectAsync(app, org.Key);

        var source = Assert.Single((await client.CallAsync("list_sources")).Ok().GetProperty("sources").EnumerateArray());
        Assert.Equal(id, source.GetProperty("id").GetInt64());
        Assert.Equal("FILE", source.GetProperty("type").GetString());
        Assert.True(source.GetProperty("configured").GetBoolean());
        Assert.True(source.GetProperty("supports_sql").GetBoolean());

        var schemas = (await client.CallAsync("list_schemas", new() { ["source_id"] = id })).Ok();
        Assert.Equal("tables", schemas.GetProperty("kind").GetString());
        Assert.Equal("discovery", schemas.GetProperty("origin").GetString());
        Assert.Equal(FileSamples.Tables.Keys, schemas.GetProperty("schemas").EnumerateArray().Select(e => e.GetString()));

        foreach (var (table, (_, columns, _)) in FileSamples.Tables)
        {
            var described = (await client.CallAsync("describe_table", new() { ["source_id"] = id, ["schema"] = "main", ["table"] = table })).Ok();
            Assert.Equal(table, described.GetProperty("table").GetString());
            Assert.Equal(
                columns.Select(c => c + " True"),
                described.GetProperty("columns").EnumerateArray().Select(c =>
                    $"{c.GetProperty("name").GetString()} {c.GetProperty("type").GetString()} {c.GetProperty("nullable").GetBoolean()}"));
        }

        var (code, message) = (await client.CallAsync("describe_table", new() { ["source_id"] = id, ["schema"] = "main", ["table"] = "nope" })).Error();
        Assert.Equal("not_found", code);
        Assert.Contains("no table or view named \"nope\"", message, StringComparison.Ordinal);

        foreach (var (sql, expected) in FileSamples.Checks())
        {
            var result = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = sql })).Ok();
            var numbers = FileSamples.Numbers(JsonNode.Parse(result.GetRawText())!);
            Assert.True(expected.SequenceEqual(numbers), $"{sql}: {result.GetProperty("rows").GetRawText()}");
        }

        var cities = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT id, city, note FROM cities WHERE id <= 4 ORDER BY id" })).Ok();
        Assert.Equal(["id", "city", "note"], cities.GetProperty("columns").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        Assert.Equal(
            FileSamples.SpecialCities.Select((c, i) => $"{i + 1}|{c.City}|{c.Note}"),
            cities.GetProperty("rows").EnumerateArray().Select(r => $"{r[0].GetInt64()}|{r[1].GetString()}|{r[2].GetString()}"));
        Assert.Equal(4, cities.GetProperty("row_count").GetInt64());
    }
}
