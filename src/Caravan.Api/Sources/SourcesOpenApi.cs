using System.Text.Json.Nodes;
using Caravan.Api.Connectors;
using Caravan.Api.Hosting;
using Microsoft.OpenApi;

namespace Caravan.Api.Sources;

/// <summary>
/// The bodies of the sources routes in the OpenAPI document (contract sections 3–6). The request
/// bodies that differ by type are generated from <see cref="SourceTypes.All"/>, so a new type or
/// field shows up without touching this file.
/// </summary>
internal static class SourcesOpenApi
{
    public static ApiSchema Connection { get; } = new("Connection", _ => Schema.Object(
        "A data source. It never contains credentials or connection details.",
        ("id", Schema.Integer("A unique integer value identifying this data source."), true),
        ("account_name", AccountName(), true),
        ("type", Schema.Enum(TypeNames, "The connection type, always upper case."), true),
        ("created_at", Schema.Time("RFC 3339, UTC."), true),
        ("is_fully_configured", Schema.Boolean("True when the stored configuration holds every field its type requires."), true)));

    public static ApiSchema PaginatedConnectionList { get; } =
        Schema.Page("PaginatedConnectionList", "The number of the organization's data sources.", Connection);

    public static ApiSchema ConnectionCreated { get; } = new("ConnectionCreated", _ => Schema.Object(
        null,
        ("id", Schema.Integer("The id of the new data source."), true),
        ("public_key_sql", Schema.Text("Snowflake key-pair only: the statement that registers the public key with the user."), false)));

    public static ApiSchema SourceConfigUpdated { get; } = new("SourceConfigUpdated", _ => Schema.Object(
        null,
        ("id", Schema.Integer("Connection ID"), true),
        ("account_name", Schema.Text("Connection name"), true),
        ("type", Schema.Enum(TypeNames, "Connection type"), true)));

    public static ApiSchema SecretState { get; } = new("SecretState", _ => Schema.Object(
        "A secret's state. `updated_at` and `fingerprint` are present only when it is set.",
        ("set", Schema.Boolean("Whether a value is stored."), true),
        ("updated_at", Schema.Time("When the value was last written (RFC 3339, UTC)."), false),
        ("fingerprint", new OpenApiSchema
        {
            Type = JsonSchemaType.String,
            Pattern = "^[0-9a-f]{8}$",
            Description = "The first 8 hex characters of an HMAC-SHA256 under a key only the server holds, of the source, "
                + "the field and the value: it changes when the value changes, not on a master key rotation, and tells nothing about the value.",
        }, false)));

    public static ApiSchema SourceConfig { get; } = new("SourceConfig", document => Schema.Object(
        "A data source's stored configuration. Secrets appear only as their state: never a value, never a connection string.",
        ("id", Schema.Integer("The id of the data source."), true),
        ("type", Schema.Enum(TypeNames, "The connection type, always upper case."), true),
        ("account_name", AccountName(), true),
        ("version", Schema.Integer("Increases with every write of the source; the ETag is `\"<id>-<version>\"`."), true),
        ("config", new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "Every non-secret field of the type (null when not set: the type's default applies). "
                + "POSTGRES, SUPABASE and MSSQL show a connection string's parts, plus `options`: its non-secret options. "
                + "Extension: `ssh_tunnel` and `tls` are objects of their non-secret members, or null; each certificate of `tls` "
                + "is a list of `{subject, issuer, not_after, expires_soon}` (true within 30 days of `not_after`).",
            AdditionalPropertiesAllowed = true,
        }, true),
        ("secrets", new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "Every secret of the type, set or not. POSTGRES, SUPABASE and MSSQL list `password` and "
                + "`secret_options` (credential options from a connection string); MONGODB lists `connection_string`. "
                + "Extension: where the source has `ssh_tunnel` or `tls`, the group's secrets are listed under its name "
                + "(`{\"ssh_tunnel\": {\"password\": {...}, \"private_key\": {...}, \"private_key_passphrase\": {...}}}`).",
            AdditionalProperties = new OpenApiSchema
            {
                OneOf = [SecretState.In(document), new OpenApiSchema { Type = JsonSchemaType.Object, AdditionalProperties = SecretState.In(document) }],
            },
        }, true)));

    // The request bodies follow drf-spectacular's naming, as camelAI's document does.
    public static ApiSchema ConnectionAddRequest { get; } = new("ConnectionAddRequest", _ => Schema.Object(
        "Legacy create: only a name and a type; the type's fields may follow and are checked, but none is required.",
        ("account_name", AccountName(), true),
        ("type", Schema.Enum(TypeNames, "The connection type; the API also accepts it in lower or mixed case."), true)));

    public static ApiSchema ConnectionRequest { get; } = new("ConnectionRequest", _ => Schema.Object(null, ("account_name", AccountName(), true)));

    public static ApiSchema PatchedConnectionRequest { get; } =
        new("PatchedConnectionRequest", _ => Schema.Object(null, ("account_name", AccountName(), false)));

    /// <summary>The unified create route: the body of one type, picked by its <c>type</c>.</summary>
    public static ApiSchema ConnectionCreateRequest { get; } = new("ConnectionCreateRequest", document => new OpenApiSchema
    {
        Type = JsonSchemaType.Object,
        Description = "The create body of one connection type; `type` picks which.",
        Required = new HashSet<string>(["type"]),
        OneOf = [.. SourceTypes.All.Select(t => (IOpenApiSchema)CreateRequest(t).In(document))],
        Discriminator = new OpenApiDiscriminator
        {
            PropertyName = "type",
            Mapping = SourceTypes.All.ToDictionary(t => t.Name, t => CreateRequest(t).In(document)),
        },
    });

    /// <summary>
    /// update-config takes any field of any type (each checked against the source's own type), so
    /// its body is the union of them all, every one optional; null clears a field that some type
    /// has as optional.
    /// </summary>
    public static ApiSchema PatchedSourceConfigUpdateRequest { get; } = new("PatchedSourceConfigUpdateRequest", _ =>
    {
        var properties = new List<(string, IOpenApiSchema, bool)> { ("account_name", AccountName(), false) };
        foreach (var group in SourceTypes.All.SelectMany(t => t.Fields.Select(f => (Type: t, Field: f))).GroupBy(x => x.Field.Name))
        {
            // Types agree on a field's kind; its longest limit wins, and a default has no meaning in a patch.
            var schema = FieldSchema(group.First().Field with { MaxLength = group.Max(x => x.Field.MaxLength), Default = null }, partial: true);
            schema.Description = string.Join(" ", group
                .GroupBy(x => x.Field.Description)
                .Select(d => $"{string.Join(", ", d.Select(x => x.Type.Name))}: {d.Key}."));
            if (group.Any(x => !x.Field.Required))
            {
                schema.Type |= JsonSchemaType.Null;
                schema.Description += group.Any(x => x.Field.Required)
                    ? " Null clears it, unless the source's type requires it."
                    : " Null clears it.";
            }

            properties.Add((group.Key, schema, false));
        }

        return Schema.Object(
            "Any subset of `account_name` and the fields of the source's type. An omitted field keeps its stored value, secrets included.",
            [.. properties]);
    });

    public static ApiSchema SourceTypeList { get; } = new("SourceTypeList", _ =>
    {
        var field = Schema.Object(
            "One field of a connection type.",
            ("name", Schema.Text("The field's name in bodies."), true),
            ("label", Schema.Text("A label for people."), true),
            ("kind", Schema.Enum(["text", "host", "port", "boolean", "name_list", "secret", "service_account_key", "pem", "choice", "certificate", "group"], "How the field is entered and checked."), true),
            ("required", Schema.Boolean("Required on create (for types with forms, see `forms`)."), true),
            ("default", new OpenApiSchema { Description = "The default when omitted (not stored): a number or boolean, or null." }, true),
            ("secret", Schema.Boolean("Write-only: stored encrypted, never returned."), true),
            ("minimum", Schema.Nullable(Schema.Integer("Smallest value (ports).")), true),
            ("maximum", Schema.Nullable(Schema.Integer("Largest value (ports).")), true),
            ("max_length", Schema.Nullable(Schema.Integer("Longest text accepted.")), true),
            ("max_items", Schema.Nullable(Schema.Integer("Most items of a list.")), true),
            ("help", Schema.Text("What to enter."), true),
            ("choices", Schema.ArrayOf(Schema.Text(null)), false),
            ("members", new OpenApiSchema { Type = JsonSchemaType.Array, Description = "A group's members (an object sent whole): fields as above, named within the group." }, false));
        var form = Schema.Object(
            "One way to fill in the connection; fields in no form belong to every form.",
            ("name", Schema.Text("`fields` or `connection_string`."), true),
            ("label", Schema.Text("A label for people."), true),
            ("fields", Schema.ArrayOf(Schema.Text(null)), true),
            ("required", Schema.ArrayOf(Schema.Text(null)), true));
        return Schema.Object(
            null,
            ("results", Schema.ArrayOf(Schema.Object(
                "A connection type.",
                ("type", Schema.Enum(TypeNames, "The type name, upper case."), true),
                ("display_name", Schema.Text("The name people know it by; the default account_name."), true),
                ("add_route", Schema.Nullable(Schema.Text("The slug of POST /api/v1/sources/add/<slug>/, or null.")), true),
                ("fields", Schema.ArrayOf(field), true),
                ("forms", Schema.ArrayOf(form), true),
                ("key_pair", Schema.Nullable(Schema.Object(
                    "A create without any of `unless` gets a generated key pair and answers `public_key_sql`.",
                    ("unless", Schema.ArrayOf(Schema.Text(null)), true))), true))), true));
    });

    private static IEnumerable<string> TypeNames => SourceTypes.All.Select(t => t.Name);

    /// <summary>The create body of one type (contract section 5), e.g. <c>MySQLConnectionRequest</c>: its name, its type, and its fields.</summary>
    public static ApiSchema CreateRequest(SourceType type) =>
        new(string.Concat(type.DisplayName.Where(char.IsAsciiLetterOrDigit)) + "ConnectionRequest", _ =>
        {
            var accountName = AccountName();
            accountName.Default = JsonValue.Create(type.DisplayName);
            accountName.Description += $" Defaults to `{type.DisplayName}`.";

            var properties = new List<(string, IOpenApiSchema, bool)>
            {
                ("type", Schema.Enum([type.Name], $"`{type.Name}` (any case is accepted). Required on POST /api/v1/sources/; optional on the type's own route."), false),
                ("account_name", accountName, false),
            };
            properties.AddRange(type.Fields.Select(f => (f.Name, (IOpenApiSchema)FieldSchema(f), f.Required)));
            return Schema.Object($"Creates a {type.DisplayName} ({type.Name}) source.", [.. properties]);
        });

    /// <summary>Idempotency-Key (a Caravan extension): the header of a create, its replay marker and its 409.</summary>
    public static TBuilder TakesIdempotencyKey<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, document) =>
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = IdempotencyKeys.Header,
                In = ParameterLocation.Header,
                Required = false,
                Description = "1–255 printable ASCII characters, unique per intended create. The same key with the same request within 24 hours "
                    + "answers the first response again and creates nothing; with another request it is a 409. Keys are per organization.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = IdempotencyKeys.MaxKeyLength },
            });
            if (operation.Responses?.GetValueOrDefault("200") is not OpenApiResponse created)
            {
                throw new InvalidOperationException($"{operation.OperationId} declares an Idempotency-Key before its 200.");
            }

            created.Headers = new Dictionary<string, IOpenApiHeader>
            {
                [IdempotencyKeys.ReplayedHeader] = new OpenApiHeader
                {
                    Description = "`true` when this is the stored answer of an earlier request with the same Idempotency-Key.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("true")] },
                },
            };
            operation.Responses["409"] = ApiOperations.JsonResponse("The Idempotency-Key was already used with a different request.", ApiDocs.Detail, document);
        });

    private static OpenApiSchema AccountName() => new()
    {
        Type = JsonSchemaType.String,
        MinLength = 1,
        MaxLength = Field.MaxTextLength,
        Description = "Display name, 1–255 characters after trimming.",
    };

    /// <summary>The schema of one field; a group's members are all optional in a <paramref name="partial"/> body (update-config merges them).</summary>
    private static OpenApiSchema FieldSchema(Field field, bool partial = false)
    {
        var schema = field.Kind switch
        {
            FieldKind.Group => Schema.Object(
                null,
                [.. field.Members.Select(m => (m.MemberName, (IOpenApiSchema)FieldSchema(partial ? m with { Default = null } : m, partial), m.Required && !partial))]),
            FieldKind.Choice => Schema.Enum(field.Choices, field.Description),
            FieldKind.Port => new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1", Maximum = "65535" },
            FieldKind.Boolean => new OpenApiSchema { Type = JsonSchemaType.Boolean },
            FieldKind.NameList => new OpenApiSchema
            {
                Type = JsonSchemaType.Array,
                Items = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = Field.MaxTextLength },
                MaxItems = Field.MaxListItems,
            },

            // A JSON object, or a string holding one.
            FieldKind.SecretDocument => new OpenApiSchema
            {
                OneOf = [new OpenApiSchema { Type = JsonSchemaType.Object }, new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1 }],
            },
            FieldKind.Url => new OpenApiSchema { Type = JsonSchemaType.String, Format = "uri", MinLength = 1, MaxLength = field.MaxLength },
            _ => new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = field.MaxLength },
        };

        schema.Description = field.Description;
        schema.Default = field.Default switch
        {
            null => null,
            int number => JsonValue.Create(number),
            bool flag => JsonValue.Create(flag),
            string text => JsonValue.Create(text),
            _ => throw new InvalidOperationException($"The default of {field.Name} has no JSON form."),
        };

        // Secrets are accepted, never returned: generated clients must not expect them back.
        schema.WriteOnly = field.IsSecret;
        return schema;
    }
}
