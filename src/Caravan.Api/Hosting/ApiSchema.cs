using System.Text.Json.Nodes;
using Microsoft.OpenApi;

namespace Caravan.Api.Hosting;

/// <summary>
/// A named body of the OpenAPI document (<c>#/components/schemas/{Name}</c>), described by hand:
/// the contract says more than the C# records can (each member's meaning, the type names a field
/// takes, lengths, write-only secrets). A route that declares it (<see cref="ApiOperations"/>) adds
/// it to the document on first use, with the components it refers to, so the document holds
/// exactly the components its operations use.
/// </summary>
internal sealed class ApiSchema(string name, Func<OpenApiDocument, OpenApiSchema> describe)
{
    public string Name { get; } = name;

    /// <summary>A reference to this component, added to <paramref name="document"/> the first time.</summary>
    public OpenApiSchemaReference In(OpenApiDocument document)
    {
        if (document.Components?.Schemas?.ContainsKey(Name) != true)
        {
            document.AddComponent(Name, describe(document));
        }

        return new OpenApiSchemaReference(Name, document);
    }
}

/// <summary>The pieces the components are described with.</summary>
internal static class Schema
{
    public static OpenApiSchema Object(string? description, params (string Name, IOpenApiSchema Schema, bool Required)[] properties) => new()
    {
        Type = JsonSchemaType.Object,
        Description = description,
        Properties = properties.ToDictionary(p => p.Name, p => p.Schema),
        Required = properties.Where(p => p.Required).Select(p => p.Name).ToHashSet(),
    };

    public static OpenApiSchema Text(string? description) => new() { Type = JsonSchemaType.String, Description = description };

    public static OpenApiSchema Integer(string description) => new() { Type = JsonSchemaType.Integer, Description = description };

    public static OpenApiSchema Boolean(string description) => new() { Type = JsonSchemaType.Boolean, Description = description };

    public static OpenApiSchema Time(string description) => new() { Type = JsonSchemaType.String, Format = "date-time", Description = description };

    public static OpenApiSchema ArrayOf(IOpenApiSchema items) => new() { Type = JsonSchemaType.Array, Items = items };

    public static OpenApiSchema Url(string description) => new()
    {
        Type = JsonSchemaType.String | JsonSchemaType.Null,
        Format = "uri",
        Description = description,
    };

    public static OpenApiSchema Enum(IEnumerable<string> values, string description) => new()
    {
        Type = JsonSchemaType.String,
        Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))],
        Description = description,
    };

    public static OpenApiSchema Nullable(OpenApiSchema schema)
    {
        schema.Type |= JsonSchemaType.Null;
        return schema;
    }

    /// <summary>A page of a list, as DRF pages (see <see cref="Paging"/>).</summary>
    public static ApiSchema Page(string name, string countDescription, ApiSchema item) => new(name, document => Object(
        null,
        ("count", Integer(countDescription), true),
        ("next", Url("The next page, or null on the last."), true),
        ("previous", Url("The previous page, or null on the first."), true),
        ("results", ArrayOf(item.In(document)), true)));
}
