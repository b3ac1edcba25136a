using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Caravan.Api.Auth;
using Caravan.Api.Hosting;
using Caravan.Api.Connectors;

namespace Caravan.Api.Sources;

/// <summary>
/// <c>GET /api/v1/source-types/</c> (extension): the connection types and their fields, built from
/// the same <see cref="Field"/> definitions the API validates with, so that forms (the web console's
/// among them) never keep a second copy of them.
/// </summary>
public static class SourceTypesApi
{
    // Labels for people where the field name alone reads badly; every other name is spelled out.
    private static readonly Dictionary<string, string> Labels = new(StringComparer.Ordinal)
    {
        ["hostname"] = "Host",
        ["host"] = "Host",
        ["server_hostname"] = "Server host name",
        ["database_name"] = "Database",
        ["username"] = "User name",
        ["user"] = "User",
        ["selected_schemas"] = "Schemas",
        ["selected_datasets"] = "Datasets",
        ["connection_string"] = "Connection string",
        ["http_path"] = "HTTP path",
        ["secure"] = "Use HTTPS",
        ["service_account_key"] = "Service account key (JSON)",
        ["public_key"] = "Public key",
        ["private_key"] = "Private key (PEM)",
        ["private_key_passphrase"] = "Private key passphrase",
        ["ssh_tunnel"] = "SSH tunnel",
        ["ssh_tunnel.host"] = "Bastion host",
        ["ssh_tunnel.username"] = "SSH user",
        ["ssh_tunnel.private_key"] = "Private key (OpenSSH or PEM)",
        ["ssh_tunnel.host_key"] = "Host key (SHA256 fingerprint or public key)",
        ["tls"] = "TLS",
        ["tls.mode"] = "TLS mode",
        ["tls.ca_certificate"] = "CA certificate (PEM)",
        ["tls.client_certificate"] = "Client certificate (PEM)",
        ["tls.client_key"] = "Client key (PEM)",
    };

    public static IEndpointRouteBuilder MapSourceTypes(this IEndpointRouteBuilder routes)
    {
        routes.MapGroup("/api/v1/source-types").RequireApiKey().WithTags("source-types")
            .MapGet("/", List).WithName("source_types_list").WithSummary("List connection types and their fields")
            .Answers(
                StatusCodes.Status200OK,
                "Extension: every connection type with its fields, as the API validates them; forms are generated from it.",
                SourcesOpenApi.SourceTypeList);
        return routes;
    }

    public static IResult List() =>
        TypedResults.Json(new SourceTypeList([.. SourceTypes.All.Select(Describe)]), ApiJson.Context.SourceTypeList);

    public static SourceTypeDescription Describe(SourceType type) => new(
        type.Name,
        type.DisplayName,
        type.AddRoute,
        [.. type.Fields.Select(Describe)],
        [.. type.Forms.Select(f => new SourceFormDescription(f.Name, f.Label, f.Fields, f.Required))],
        type.KeyPairUnless.Count > 0 ? new KeyPairDescription(type.KeyPairUnless) : null);

    private static SourceFieldDescription Describe(Field field)
    {
        var kind = field.Kind switch
        {
            FieldKind.NameList => "name_list",
            FieldKind.SecretDocument => "service_account_key",
            _ => field.Kind.ToString().ToLowerInvariant(),
        };
        return new SourceFieldDescription(
            field.Name,
            Labels.TryGetValue(field.Name, out var label) ? label : Spell(field.MemberName),
            kind,
            field.Required,
            field.Default switch
            {
                int number => JsonValue.Create(number),
                bool flag => JsonValue.Create(flag),
                string text => JsonValue.Create(text),
                _ => null,
            },
            field.IsSecret,
            field.Kind == FieldKind.Port ? 1 : null,
            field.Kind == FieldKind.Port ? 65535 : null,
            field.Kind is FieldKind.Port or FieldKind.Boolean or FieldKind.Group or FieldKind.Choice ? null : field.MaxLength,
            field.Kind == FieldKind.NameList ? Field.MaxListItems : null,
            field.Description)
        {
            Choices = field.Kind == FieldKind.Choice ? field.Choices : null,
            Members = field.Kind == FieldKind.Group ? [.. field.Members.Select(m => Describe(m) with { Name = m.MemberName })] : null,
        };
    }

    private static string Spell(string name)
    {
        var words = name.Replace('_', ' ');
        return char.ToUpper(words[0], CultureInfo.InvariantCulture) + words[1..];
    }
}

public sealed record SourceTypeList([property: JsonPropertyName("results")] IReadOnlyList<SourceTypeDescription> Results);

/// <summary>One connection type. <c>forms</c> is empty when every field belongs to one form.</summary>
public sealed record SourceTypeDescription(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("display_name")] string DisplayName,
    [property: JsonPropertyName("add_route")] string? AddRoute,
    [property: JsonPropertyName("fields")] IReadOnlyList<SourceFieldDescription> Fields,
    [property: JsonPropertyName("forms")] IReadOnlyList<SourceFormDescription> Forms,
    [property: JsonPropertyName("key_pair")] KeyPairDescription? KeyPair);

public sealed record SourceFieldDescription(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("required")] bool Required,
    [property: JsonPropertyName("default")] JsonNode? Default,
    [property: JsonPropertyName("secret")] bool Secret,
    [property: JsonPropertyName("minimum")] int? Minimum,
    [property: JsonPropertyName("maximum")] int? Maximum,
    [property: JsonPropertyName("max_length")] int? MaxLength,
    [property: JsonPropertyName("max_items")] int? MaxItems,
    [property: JsonPropertyName("help")] string Help)
{
    /// <summary>The accepted words of a <c>choice</c> field; absent for other kinds.</summary>
    [JsonPropertyName("choices")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Choices { get; init; }

    /// <summary>The members of a <c>group</c> field (an object sent and read back whole), by their names in it; absent for other kinds.</summary>
    [JsonPropertyName("members")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<SourceFieldDescription>? Members { get; init; }
}

public sealed record SourceFormDescription(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("fields")] IReadOnlyList<string> Fields,
    [property: JsonPropertyName("required")] IReadOnlyList<string> Required);

/// <summary>A create without any of <c>unless</c> makes Caravan generate a key pair and answer <c>public_key_sql</c>.</summary>
public sealed record KeyPairDescription([property: JsonPropertyName("unless")] IReadOnlyList<string> Unless);
