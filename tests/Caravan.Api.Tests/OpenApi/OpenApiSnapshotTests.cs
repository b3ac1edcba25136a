using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.OpenApi;

/// <summary>
/// The published OpenAPI document, committed as <c>openapi.snapshot.json</c>: what clients were
/// generated from must stay in the document. Every member of the snapshot (paths, operations,
/// operationIds, parameters, each response with its description, headers and schema reference,
/// every component and its properties, writeOnly secrets, enums, descriptions) must be in the
/// served document with the same value; the served document may have more.
/// </summary>
public class OpenApiSnapshotTests(CaravanApp app)
{
    /// <summary>Set to 1 to write the served document over the snapshot, after a change meant to alter it.</summary>
    private const string UpdateVariable = "CARAVAN_UPDATE_OPENAPI_SNAPSHOT";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    [Fact]
    public async Task Served_document_contains_everything_in_the_published_snapshot()
    {
        using var client = app.CreateClient();
        var served = (await client.GetAsync("/api/schema/", TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK)).AsObject();

        // The server URL is the host the document was asked from, not part of the API.
        served.Remove("servers");
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            await File.WriteAllTextAsync(SnapshotPath(), served.ToJsonString(Indented) + "\n", TestContext.Current.CancellationToken);
        }

        var snapshot = JsonNode.Parse(await File.ReadAllTextAsync(SnapshotPath(), TestContext.Current.CancellationToken))!;
        var missing = new List<string>();
        CollectMissing(snapshot, served, string.Empty, missing);

        Assert.True(
            missing.Count == 0,
            $"The served OpenAPI document lost {missing.Count} part(s) of the published one (if meant, set {UpdateVariable}=1 once and commit the snapshot):\n"
                + string.Join('\n', missing.Take(50)));
    }

    [Fact]
    public void A_lost_or_changed_member_is_found_wherever_it_is()
    {
        // The comparison itself: objects by member, arrays as sets of contained elements, values exactly.
        var published = JsonNode.Parse("""
            {"paths": {"/a/": {"get": {"operationId": "a", "parameters": [{"name": "id", "in": "path"}, {"name": "page", "in": "query"}],
             "responses": {"404": {"$ref": "#/components/schemas/Detail"}}}}},
             "components": {"schemas": {"S": {"required": ["x", "y"], "properties": {"x": {"writeOnly": true}}}}}}
            """)!;
        var larger = JsonNode.Parse("""
            {"paths": {"/a/": {"get": {"operationId": "a", "summary": "new", "parameters": [{"name": "page", "in": "query", "description": "new"}, {"name": "id", "in": "path"}],
             "responses": {"200": {}, "404": {"$ref": "#/components/schemas/Detail"}}}}},
             "components": {"schemas": {"S": {"required": ["y", "x", "z"], "properties": {"x": {"writeOnly": true}, "w": {}}}, "T": {}}}}
            """)!;
        var missing = new List<string>();
        CollectMissing(published, larger, string.Empty, missing);
        Assert.Empty(missing);

        var smaller = JsonNode.Parse("""
            {"paths": {"/a/": {"get": {"operationId": "b", "parameters": [{"name": "id", "in": "path"}],
             "responses": {"404": {"$ref": "#/components/schemas/Other"}}}}},
             "components": {"schemas": {"S": {"required": ["x"], "properties": {"x": {"writeOnly": false}}}}}}
            """)!;
        CollectMissing(published, smaller, string.Empty, missing);
        Assert.Equal(
            [
                "/paths/~1a~1/get/operationId: \"a\" became \"b\"",
                "/paths/~1a~1/get/parameters: no element contains {\"name\":\"page\",\"in\":\"query\"}",
                "/paths/~1a~1/get/responses/404/$ref: \"#/components/schemas/Detail\" became \"#/components/schemas/Other\"",
                "/components/schemas/S/required: no element contains \"y\"",
                "/components/schemas/S/properties/x/writeOnly: true became false",
            ],
            missing);
    }

    /// <summary>
    /// Adds to <paramref name="missing"/> the JSON pointer of every part of <paramref name="expected"/>
    /// that <paramref name="actual"/> does not contain: an object must have each member (with a
    /// value that contains the expected one), an array must have, for each expected element, an
    /// element that contains it (order aside), and any other value must be equal.
    /// </summary>
    private static void CollectMissing(JsonNode? expected, JsonNode? actual, string pointer, List<string> missing)
    {
        switch (expected)
        {
            case JsonObject members:
                if (actual is not JsonObject actualMembers)
                {
                    missing.Add($"{pointer}: an object became {Describe(actual)}");
                    return;
                }

                foreach (var (name, value) in members)
                {
                    var path = $"{pointer}/{name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal)}";
                    if (!actualMembers.TryGetPropertyValue(name, out var actualValue))
                    {
                        missing.Add($"{path}: missing");
                    }
                    else
                    {
                        CollectMissing(value, actualValue, path, missing);
                    }
                }

                break;
            case JsonArray elements:
                if (actual is not JsonArray actualElements)
                {
                    missing.Add($"{pointer}: an array became {Describe(actual)}");
                    return;
                }

                foreach (var element in elements)
                {
                    if (!actualElements.Any(candidate => Contains(element, candidate)))
                    {
                        missing.Add($"{pointer}: no element contains {Describe(element)}");
                    }
                }

                break;
            default:
                if (!JsonNode.DeepEquals(expected, actual))
                {
                    missing.Add($"{pointer}: {Describe(expected)} became {Describe(actual)}");
                }

                break;
        }
    }

    private static bool Contains(JsonNode? expected, JsonNode? actual)
    {
        var missing = new List<string>();
        CollectMissing(expected, actual, string.Empty, missing);
        return missing.Count == 0;
    }

    private static string Describe(JsonNode? node) => node?.ToJsonString() ?? "null";

    private static string SnapshotPath([CallerFilePath] string source = "") => Path.Combine(Path.GetDirectoryName(source)!, "openapi.snapshot.json");
}
