using System.Text.Json.Nodes;
using Caravan.Api.Revisions;
using Caravan.Api.Sources;
using Caravan.Api.Connectors;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace Caravan.Api.Hosting;

/// <summary>
/// The OpenAPI document at /api/schema/ and the interactive docs at /api/docs/. The document is
/// generated from the endpoints; what the generator cannot see (the handlers read their bodies by
/// hand and answer <see cref="IResult"/>) is added by the transformers below, built from the
/// connection type definitions so that a new type or field shows up without touching this file.
/// </summary>
internal static class ApiDocs
{
    public const string SchemaRoute = "/api/schema/";
    public const string DocsRoute = "/api/docs";

    public static IServiceCollection AddApiDocs(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            // 3.0 rather than 3.1: it is what camelAI publishes and what most client generators read.
            options.OpenApiVersion = OpenApiSpecVersion.OpenApi3_0;

            // These answers are described by hand in SourcesDocument; inlining the generator's own
            // version of them leaves no second, unused copy under components.
            options.CreateSchemaReferenceId = type => SourcesDocument.HandDescribed.Contains(type.Type)
                ? null
                : OpenApiOptions.CreateDefaultSchemaReferenceId(type);
            options.AddOperationTransformer(SourcesDocument.DescribeOperation);
            options.AddDocumentTransformer(SourcesDocument.DescribeDocument);
        });

    public static IEndpointRouteBuilder MapApiDocs(this IEndpointRouteBuilder routes)
    {
        // Both are outside /api/v1/, so no API key is asked for (contract section 2).
        routes.MapOpenApi(SchemaRoute);
        routes.MapScalarApiReference(DocsRoute, options => options
            .WithTitle("Caravan API")
            .AddDocument("v1", "Caravan API", SchemaRoute)
            .AddPreferredSecuritySchemes(SourcesDocument.BearerAuth)

            // The page must work on a machine without internet access: the script is served from
            // this package, and the features that would call scalar.com (its fonts, telemetry, the
            // AI agent and the MCP helper) are off.
            .DisableDefaultFonts()
            .DisableTelemetry()
            .DisableAgent()
            .DisableMcp()

            // The page starts Scalar with an inline script: a fresh nonce on each answer lets that
            // one script run and no other (see DocsPolicy).
            .WithNonce())
            .Add(endpoint =>
            {
                var inner = endpoint.RequestDelegate ?? throw new InvalidOperationException("The docs endpoint has no request delegate.");
                endpoint.RequestDelegate = context =>
                {
                    // Scalar makes the nonce while it writes the page, so the policy is set as the answer starts.
                    context.Response.OnStarting(() =>
                    {
                        SecurityHeaders.Apply(context.Response, DocsPolicy(context.Items[ScalarOptions.NonceHttpContextItemKey] as string));
                        return Task.CompletedTask;
                    });
                    return inner(context);
                };
            });
        return routes;
    }

    /// <summary>
    /// What Scalar needs from Caravan itself and nothing from elsewhere: its scripts from this
    /// server (and the page's one inline script, by its nonce), the styles it injects as it renders
    /// (style elements and attributes), its icon, and requests to this server only (the OpenAPI
    /// document, "Test Request"). No eval: its validation library checks for it once and does without.
    /// </summary>
    public static string DocsPolicy(string? nonce) =>
        $"default-src 'none'; script-src 'self'{(string.IsNullOrEmpty(nonce) ? string.Empty : $" 'nonce-{nonce}'")}; "
        + "style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
}

/// <summary>What the OpenAPI generator cannot infer about the sources routes (contract sections 1, 3–6).</summary>
internal static class SourcesDocument
{
    public const string BearerAuth = "BearerAuth";
    public const string ApiKeyAuth = "ApiKeyAuth";

    private const string Json = "application/json";
    private const string ApiPrefix = "api/v1/";

    // Component names; the request bodies follow drf-spectacular's naming, as camelAI's document does.
    private const string Connection = "Connection";
    private const string PaginatedConnectionList = "PaginatedConnectionList";
    private const string ConnectionCreateRequest = "ConnectionCreateRequest";
    private const string ConnectionCreated = "ConnectionCreated";
    private const string ConnectionAddRequest = "ConnectionAddRequest";
    private const string ConnectionRequest = "ConnectionRequest";
    private const string PatchedConnectionRequest = "PatchedConnectionRequest";
    private const string PatchedSourceConfigUpdateRequest = "PatchedSourceConfigUpdateRequest";
    private const string SourceConfigUpdated = "SourceConfigUpdated";
    private const string ValidationError = "ValidationError";
    private const string Detail = "Detail";
    private const string ServerError = "ServerError";
    private const string StaleSource = "StaleSource";
    private const string ConnectionTestReport = "ConnectionTestReport";
    private const string SchemaDiscovery = "SchemaDiscovery";
    private const string ConnectivityFailure = "ConnectivityFailure";
    private const string Revision = "Revision";
    private const string PaginatedRevisionList = "PaginatedRevisionList";
    private const string SourceConfig = "SourceConfig";
    private const string SecretState = "SecretState";
    private const string QueryRequest = "QueryRequest";
    private const string QueryResult = "QueryResult";
    private const string QueryFailure = "QueryFailure";
    private const string ConnectionTestStreamLine = "ConnectionTestStreamLine";
    private const string SourceTypeList = "SourceTypeList";
    private const string Ndjson = "application/x-ndjson";

    public static readonly HashSet<Type> HandDescribed =
    [
        typeof(ConnectionResponse), typeof(ConnectionPage), typeof(CreatedResponse), typeof(UpdateConfigResponse),
        typeof(ErrorBody), typeof(DetailBody), typeof(ServerErrorBody),
    ];

    /// <summary>The component holding the create body of one type, e.g. <c>MySQLConnectionRequest</c>.</summary>
    public static string RequestSchemaName(SourceType type) =>
        string.Concat(type.DisplayName.Where(char.IsAsciiLetterOrDigit)) + "ConnectionRequest";

    public static Task DescribeOperation(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.Description.RelativePath?.StartsWith(ApiPrefix, StringComparison.Ordinal) != true)
        {
            return Task.CompletedTask;
        }

        var document = context.Document;
        var responses = new OpenApiResponses();
        var isCreate = false;
        switch (operation.OperationId)
        {
            case "sources_list":
                operation.Parameters =
                [
                    QueryInteger("page", "A page number within the paginated result set."),
                    QueryInteger("page_size", "Number of results to return per page."),
                    QueryText("search", "Extension: only sources whose name contains this text, ignoring case; `count` and the pages count those."),
                    QueryText("include", "Extension: `last_test` adds `last_test` to each result: the source's last connection test "
                        + "`{\"ok\", \"failed_step\", \"code\", \"duration_ms\", \"at\"}`, or null when never tested."),
                ];
                responses["200"] = JsonResponse("A page of the organization's data sources, ordered by id.", PaginatedConnectionList, document);
                responses["404"] = JsonResponse("The page does not exist (`Invalid page.`).", Detail, document);
                break;
            case "sources_create":
                operation.RequestBody = JsonBody(ConnectionCreateRequest, document);
                responses["200"] = JsonResponse("The source was created.", ConnectionCreated, document);
                isCreate = true;
                break;
            case "sources_add_create":
                operation.RequestBody = JsonBody(ConnectionAddRequest, document);
                responses["200"] = JsonResponse("The source was created; it is not fully configured yet.", Connection, document);
                isCreate = true;
                break;
            case "sources_retrieve":
                responses["200"] = JsonResponse("The data source.", Connection, document);
                break;
            case "sources_test_create":
                operation.RequestBody = JsonBody(ConnectionCreateRequest, document);
                responses["200"] = WithStream(JsonResponse("The test ran (see `ok`); nothing was stored.", ConnectionTestReport, document), document);
                break;
            case "sources_test_stored_create":
                responses["200"] = WithStream(JsonResponse(
                    "The test ran against the stored configuration (see `ok`); its outcome is kept as the source's `last_test`.", ConnectionTestReport, document), document);
                break;
            case "sources_schemas_list":
                responses["200"] = JsonResponse("The schemas (databases, datasets) found, system ones excluded.", SchemaDiscovery, document);
                responses["502"] = JsonResponse("The database could not be reached or refused the request.", ConnectivityFailure, document);
                break;
            case "sources_config_retrieve":
                var config = JsonResponse(
                    "The stored configuration: non-secret fields by value, secrets by state and fingerprint, never by value.", SourceConfig, document);
                config.Headers = new Dictionary<string, IOpenApiHeader>
                {
                    ["ETag"] = new OpenApiHeader { Description = "The source's strong ETag, the same as on GET of the source; send it as If-Match.", Schema = Text(null) },
                };
                responses["200"] = config;
                break;
            case Query.QueryApi.OperationId:
                DescribeQuery(operation, responses, document);
                break;
            case "sources_update":
                operation.RequestBody = JsonBody(ConnectionRequest, document);
                responses["200"] = JsonResponse("The renamed data source.", Connection, document);
                break;
            case "sources_partial_update":
                operation.RequestBody = JsonBody(PatchedConnectionRequest, document);
                responses["200"] = JsonResponse("The data source.", Connection, document);
                break;
            case "sources_destroy":
                responses["204"] = new OpenApiResponse { Description = "Deleted; its secrets are erased." };
                break;
            case "sources_update_config_partial_update":
                operation.RequestBody = JsonBody(PatchedSourceConfigUpdateRequest, document);
                responses["200"] = JsonResponse("The configuration was updated.", SourceConfigUpdated, document);
                break;
            case "source_types_list":
                responses["200"] = JsonResponse(
                    "Extension: every connection type with its fields, as the API validates them; forms are generated from it.", SourceTypeList, document);
                break;
            case "sources_revisions_list":
                operation.Parameters ??= [];
                operation.Parameters.Add(QueryInteger("page", "A page number within the paginated result set."));
                operation.Parameters.Add(QueryInteger("page_size", "Number of results to return per page."));
                responses["200"] = JsonResponse("A page of the data source's revisions, newest first.", PaginatedRevisionList, document);
                responses["404"] = JsonResponse(
                    "No such data source in your organization, or the page does not exist (`Invalid page.`).", Detail, document);
                break;
            default:
                // The per-type create routes carry their type in the endpoint metadata.
                if (context.Description.ActionDescriptor.EndpointMetadata.OfType<SourcesApi.SourceTypeMetadata>().FirstOrDefault() is { } metadata)
                {
                    operation.RequestBody = JsonBody(RequestSchemaName(metadata.Type), document);
                    responses["200"] = JsonResponse("The source was created.", ConnectionCreated, document);
                    isCreate = true;
                }
                else
                {
                    // A route this file does not know yet keeps what the generator found.
                    responses = operation.Responses ?? responses;
                }

                break;
        }

        if (context.Description.RelativePath.Contains("{id}", StringComparison.Ordinal))
        {
            DescribeIdParameter(operation);
            responses.TryAdd("404", JsonResponse("No such data source in your organization.", Detail, document));
            if (!string.Equals(context.Description.HttpMethod, "GET", StringComparison.OrdinalIgnoreCase)
                && operation.OperationId != Query.QueryApi.OperationId)
            {
                // Optimistic concurrency (a Caravan extension): the ETag of a GET, sent back as If-Match.
                operation.Parameters ??= [];
                operation.Parameters.Add(new OpenApiParameter
                {
                    Name = "If-Match",
                    In = ParameterLocation.Header,
                    Required = false,
                    Description = "The ETag of the source as you read it; if it changed since, nothing is written and the answer is 412.",
                    Schema = Text(null),
                });
                responses["412"] = JsonResponse("The source was changed since you read it (stale If-Match).", StaleSource, document);
            }
        }

        if (operation.RequestBody is not null)
        {
            responses["400"] = JsonResponse("Validation failed, or the body is not a JSON object.", ValidationError, document);
            responses["413"] = JsonResponse("The body is larger than the server accepts.", Detail, document);
            responses["415"] = JsonResponse("The body is not sent as application/json.", Detail, document);
        }

        if (isCreate)
        {
            DescribeIdempotencyKey(operation, responses, document);
        }

        responses["401"] = JsonResponse("No API key, or an invalid or revoked one.", Detail, document);
        var throttled = JsonResponse("The API key's rate limit is exhausted (`Request was throttled.`); retry after `Retry-After` seconds.", Detail, document);
        throttled.Headers = new Dictionary<string, IOpenApiHeader>
        {
            ["Retry-After"] = new OpenApiHeader
            {
                Description = "Whole seconds until a request of this kind would be accepted.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" },
            },
        };
        responses["429"] = throttled;
        responses["500"] = JsonResponse("An unexpected failure; quote the trace id when reporting it.", ServerError, document);
        operation.Responses = Sorted(responses);

        // Either header is accepted (contract section 2): one requirement each means "one of them".
        operation.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerAuth, document)] = [] },
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyAuth, document)] = [] },
        ];
        return Task.CompletedTask;
    }

    public static Task DescribeDocument(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info = new OpenApiInfo
        {
            Title = "Caravan API",
            Version = "1.0.0",
            Description = "Caravan stores the connection configurations of your databases and keeps their credentials safe. "
                + "It is wire-compatible with the camelAI sources API: a client written for camelAI works against Caravan unchanged. "
                + "Every route under /api/v1/ needs an API key, sent as `Authorization: Bearer <key>` or as `X-API-Key: <key>`. "
                + "AI agents connect to the Model Context Protocol server at `/mcp` (Streamable HTTP, the same API keys; "
                + "tools list_sources, list_schemas, describe_table, run_query): see docs/mcp.md.",
        };

        // Every Caravan path ends in a slash, as camelAI's do; the generator drops it.
        var paths = new OpenApiPaths();
        foreach (var (path, item) in document.Paths)
        {
            paths[path.EndsWith('/') ? path : path + "/"] = item;
        }

        document.Paths = paths;

        // AddComponent also registers the component with the document's workspace, so references to
        // it (made by the operation transformer, which runs first) resolve.
        document.AddComponent(BearerAuth, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "An API key sent as `Authorization: Bearer <key>`.",
        });
        document.AddComponent(ApiKeyAuth, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = "X-API-Key",
            Description = "An API key sent as `X-API-Key: <key>`.",
        });

        foreach (var (name, schema) in Schemas(document))
        {
            document.AddComponent(name, schema);
        }

        return Task.CompletedTask;
    }

    private static IEnumerable<(string Name, OpenApiSchema Schema)> Schemas(OpenApiDocument document)
    {
        var typeNames = SourceTypes.All.Select(t => t.Name).ToList();

        yield return (Connection, Object(
            "A data source. It never contains credentials or connection details.",
            ("id", Integer("A unique integer value identifying this data source."), true),
            ("account_name", AccountName(), true),
            ("type", Enum(typeNames, "The connection type, always upper case."), true),
            ("created_at", new OpenApiSchema { Type = JsonSchemaType.String, Format = "date-time", Description = "RFC 3339, UTC." }, true),
            ("is_fully_configured", Boolean("True when the stored configuration holds every field its type requires."), true)));

        yield return (PaginatedConnectionList, Object(
            null,
            ("count", Integer("The number of the organization's data sources."), true),
            ("next", Url("The next page, or null on the last."), true),
            ("previous", Url("The previous page, or null on the first."), true),
            ("results", new OpenApiSchema { Type = JsonSchemaType.Array, Items = Reference(Connection, document) }, true)));

        yield return (ConnectionCreated, Object(
            null,
            ("id", Integer("The id of the new data source."), true),
            ("public_key_sql", Text("Snowflake key-pair only: the statement that registers the public key with the user."), false)));

        var step = Object(
            null,
            ("name", Enum(["resolve", "egress", "connect", "tls", "authenticate", "query", "schemas"], "The step."), true),
            ("status", Enum(["ok", "failed", "skipped"], "What happened."), true),
            ("duration_ms", Integer("How long it took."), true),
            ("code", Nullable(Enum(FailureCodeNames, "The stable failure code of a failed step.")), true),
            ("message", Nullable(Text("What happened, for people; never a secret.")), true));
        yield return (ConnectionTestReport, Object(
            "A staged connection test.",
            ("ok", Boolean("True when no step failed."), true),
            ("duration_ms", Integer("How long the whole test took."), true),
            ("steps", new OpenApiSchema { Type = JsonSchemaType.Array, Items = step }, true)));

        yield return (ConnectionTestStreamLine, Object(
            "One line of a streamed test (`Accept: application/x-ndjson`): exactly one of `plan` (the steps, when known), "
                + "`step` (a step that just finished) or `report` (the last line, the same report as without streaming).",
            ("plan", new OpenApiSchema { Type = JsonSchemaType.Array, Items = Text(null) }, false),
            ("step", step, false),
            ("report", Reference(ConnectionTestReport, document), false)));

        var formField = Object(
            "One field of a connection type.",
            ("name", Text("The field's name in bodies."), true),
            ("label", Text("A label for people."), true),
            ("kind", Enum(["text", "host", "port", "boolean", "name_list", "secret", "service_account_key", "pem"], "How the field is entered and checked."), true),
            ("required", Boolean("Required on create (for types with forms, see `forms`)."), true),
            ("default", new OpenApiSchema { Description = "The default when omitted (not stored): a number or boolean, or null." }, true),
            ("secret", Boolean("Write-only: stored encrypted, never returned."), true),
            ("minimum", Nullable(Integer("Smallest value (ports).")), true),
            ("maximum", Nullable(Integer("Largest value (ports).")), true),
            ("max_length", Nullable(Integer("Longest text accepted.")), true),
            ("max_items", Nullable(Integer("Most items of a list.")), true),
            ("help", Text("What to enter."), true));
        var form = Object(
            "One way to fill in the connection; fields in no form belong to every form.",
            ("name", Text("`fields` or `connection_string`."), true),
            ("label", Text("A label for people."), true),
            ("fields", new OpenApiSchema { Type = JsonSchemaType.Array, Items = Text(null) }, true),
            ("required", new OpenApiSchema { Type = JsonSchemaType.Array, Items = Text(null) }, true));
        yield return (SourceTypeList, Object(
            null,
            ("results", new OpenApiSchema
            {
                Type = JsonSchemaType.Array,
                Items = Object(
                    "A connection type.",
                    ("type", Enum(typeNames, "The type name, upper case."), true),
                    ("display_name", Text("The name people know it by; the default account_name."), true),
                    ("add_route", Nullable(Text("The slug of POST /api/v1/sources/add/<slug>/, or null.")), true),
                    ("fields", new OpenApiSchema { Type = JsonSchemaType.Array, Items = formField }, true),
                    ("forms", new OpenApiSchema { Type = JsonSchemaType.Array, Items = form }, true),
                    ("key_pair", Nullable(Object(
                        "A create without any of `unless` gets a generated key pair and answers `public_key_sql`.",
                        ("unless", new OpenApiSchema { Type = JsonSchemaType.Array, Items = Text(null) }, true))), true)),
            }, true)));

        yield return (SchemaDiscovery, Object(
            null,
            ("kind", Enum(["schemas", "databases", "datasets"], "What the names are."), true),
            ("results", new OpenApiSchema
            {
                Type = JsonSchemaType.Array,
                Items = Object(null, ("name", Text("The name."), true), ("selected", Boolean("Whether the stored selection names it."), true)),
            }, true)));

        yield return (ConnectivityFailure, Object(
            null,
            ("detail", Text("What went wrong, for people; never a secret."), true),
            ("code", Enum(FailureCodeNames, "The stable failure code."), true)));

        yield return (Revision, Object(
            "One change of a data source. Secret values never appear: a secret's change is only `set`, `changed` or `cleared`.",
            ("number", Integer("1 for the create, then one more for each change of this source."), true),
            ("at", new OpenApiSchema { Type = JsonSchemaType.String, Format = "date-time", Description = "When the change was made; RFC 3339, UTC." }, true),
            ("actor", Object(
                "Who made the change.",
                ("org", Text("The organization."), true),
                ("key_id", Nullable(Text("The id of the API key used; null for an operator on the command line (`secrets rotate`).")), true)), true),
            ("action", Enum(RevisionActions.All, "`create`, `update` (update-config, PUT, PATCH), `delete`, or `rotate` (secrets re-encrypted under a new master key; no value changed)."), true),
            ("changes", new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "The fields that changed, by name: `{\"old\", \"new\"}` for a non-secret field (null when absent), "
                    + "or `set`, `changed` or `cleared` for a secret. Empty for `rotate`.",
                AdditionalProperties = new OpenApiSchema
                {
                    OneOf =
                    [
                        Object(
                            "A non-secret field.",
                            ("old", new OpenApiSchema { Description = "The value before; null when the field was not set." }, true),
                            ("new", new OpenApiSchema { Description = "The value after; null when the field is no longer set." }, true)),
                        Enum([RevisionChanges.Set, RevisionChanges.Changed, RevisionChanges.Cleared], "A secret field."),
                    ],
                },
            }, true)));

        yield return (PaginatedRevisionList, Object(
            null,
            ("count", Integer("The number of the data source's revisions."), true),
            ("next", Url("The next page, or null on the last."), true),
            ("previous", Url("The previous page, or null on the first."), true),
            ("results", new OpenApiSchema { Type = JsonSchemaType.Array, Items = Reference(Revision, document) }, true)));

        yield return (SourceConfig, Object(
            "A data source's stored configuration. Secrets appear only as their state: never a value, never a connection string.",
            ("id", Integer("The id of the data source."), true),
            ("type", Enum(typeNames, "The connection type, always upper case."), true),
            ("account_name", AccountName(), true),
            ("version", Integer("Increases with every write of the source; the ETag is `\"<id>-<version>\"`."), true),
            ("config", new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "Every non-secret field of the type (null when not set: the type's default applies). "
                    + "POSTGRES, SUPABASE and MSSQL show a connection string's parts, plus `options`: its non-secret options.",
                AdditionalPropertiesAllowed = true,
            }, true),
            ("secrets", new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "Every secret of the type, set or not. POSTGRES, SUPABASE and MSSQL list `password` and "
                    + "`secret_options` (credential options from a connection string); MONGODB lists `connection_string`.",
                AdditionalProperties = Reference(SecretState, document),
            }, true)));

        yield return (SecretState, Object(
            "A secret's state. `updated_at` and `fingerprint` are present only when it is set.",
            ("set", Boolean("Whether a value is stored."), true),
            ("updated_at", new OpenApiSchema { Type = JsonSchemaType.String, Format = "date-time", Description = "When the value was last written (RFC 3339, UTC)." }, false),
            ("fingerprint", new OpenApiSchema
            {
                Type = JsonSchemaType.String,
                Pattern = "^[0-9a-f]{8}$",
                Description = "The first 8 hex characters of an HMAC-SHA256 under a key only the server holds, of the source, "
                    + "the field and the value: it changes when the value changes, not on a master key rotation, and tells nothing about the value.",
            }, false)));

        yield return (QueryRequest, Object(
            "One read-only statement.",
            ("sql", Text("Exactly one statement; a trailing ';' and comments are allowed."), true),
            ("max_rows", Integer("Rows to return at most (default 1000); larger values are clamped to the server's ceiling, 100000 unless its operator configured another. `truncated` says when there were more."), false),
            ("timeout_ms", Integer("Time limit in milliseconds (default 30000, larger values are clamped to 300000); the statement is cancelled in the database."), false),
            ("uid", Text("Handed to the database for row-level security (PostgreSQL: the setting `caravan.uid`, set locally). Refused where the database cannot take it."), false)));

        yield return (QueryResult, Object(
            "The result of a statement. With `Accept: application/x-ndjson` the same parts come as lines: `{\"columns\"}`, one JSON array per row, then `{\"row_count\", \"truncated\", \"duration_ms\"}` (with `truncated_by` when cut; or `{\"error\"}`); with `Accept: text/csv` a header row and the rows (RFC 4180), and over HTTP/2 the trailers `X-Caravan-Row-Count`, `X-Caravan-Truncated` and `X-Caravan-Truncated-By`.",
            ("columns", new OpenApiSchema
            {
                Type = JsonSchemaType.Array,
                Items = Object(null, ("name", Text("The column's name."), true), ("type", Text("The database's name for the column's type."), true)),
            }, true),
            ("rows", new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema() } }, true),
            ("row_count", Integer("Rows returned."), true),
            ("truncated", Boolean("True when the statement had more rows than max_rows, or more bytes than the server's cap."), true),
            ("truncated_by", Enum([Query.QueryLimits.MaxRows, Query.QueryLimits.MaxResultBytes, Query.QueryLimits.MaxBufferedResultBytes],
                "Present only when `truncated` is true: the limit that cut the result. `max_rows`: there were more rows. "
                + "`max_result_bytes`: the next row, or a value in it, would pass the server's cap on the bytes of one result (values are "
                + "bounded before they are read: select narrower columns or fewer rows). `max_buffered_result_bytes`: the server could not "
                + "hold the next row beside the other queries' results in time; retry shortly."), false),
            ("duration_ms", Integer("How long the query took."), true)));

        yield return (QueryFailure, Object(
            null,
            ("detail", Text("What went wrong, for people; never a secret."), true),
            ("code", Enum([.. FailureCodeNames, "not_configured", "syntax_error", "undefined_object", "query_failed", "source_busy"],
                "The stable failure code."), true)));

        yield return (SourceConfigUpdated, Object(
            null,
            ("id", Integer("Connection ID"), true),
            ("account_name", Text("Connection name"), true),
            ("type", Enum(typeNames, "Connection type"), true)));

        yield return (ValidationError, Object(
            "Validation failed; nothing was written.",
            ("error", Text("A one-line summary."), true),
            ("errors", new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "Messages by field; `non_field_errors` for problems with no single field.",
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = Text(null) },
            }, true)));

        yield return (Detail, Object(null, ("detail", Text("What went wrong."), true)));

        yield return (StaleSource, Object(
            null,
            ("detail", Text("Always `The source was changed since you read it.`"), true),
            ("current_etag", Text("The source's current ETag."), true)));

        yield return (ServerError, Object(
            null,
            ("detail", Text("Always `Internal server error.`"), true),
            ("trace_id", Text("Identifies the failure in the server's logs."), true)));

        yield return (ConnectionAddRequest, Object(
            "Legacy create: only a name and a type; the type's fields may follow and are checked, but none is required.",
            ("account_name", AccountName(), true),
            ("type", Enum(typeNames, "The connection type; the API also accepts it in lower or mixed case."), true)));

        yield return (ConnectionRequest, Object(null, ("account_name", AccountName(), true)));
        yield return (PatchedConnectionRequest, Object(null, ("account_name", AccountName(), false)));
        yield return (PatchedSourceConfigUpdateRequest, ConfigUpdateRequest());

        foreach (var type in SourceTypes.All)
        {
            yield return (RequestSchemaName(type), CreateRequest(type));
        }

        // The unified create route: the body of one type, picked by its "type".
        yield return (ConnectionCreateRequest, new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "The create body of one connection type; `type` picks which.",
            Required = new HashSet<string>(["type"]),
            OneOf = [.. SourceTypes.All.Select(t => (IOpenApiSchema)Reference(RequestSchemaName(t), document))],
            Discriminator = new OpenApiDiscriminator
            {
                PropertyName = "type",
                Mapping = SourceTypes.All.ToDictionary(t => t.Name, t => Reference(RequestSchemaName(t), document)),
            },
        });
    }

    private static void DescribeQuery(OpenApiOperation operation, OpenApiResponses responses, OpenApiDocument? document)
    {
        operation.Description = "Runs one read-only statement on the source's database. The database enforces read-only wherever it can "
            + "(docs/query.md says how, per type); a write is refused with 400 on `sql` and changes nothing. "
            + "Rows stream as they arrive; a failure after the first row is told in the body (see docs/query.md).";
        operation.RequestBody = JsonBody(QueryRequest, document);
        var result = JsonResponse("The result (streamed).", QueryResult, document);
        result.Content!["text/csv"] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A header row, then the rows." } };
        result.Content["application/x-ndjson"] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "One JSON document per line." } };
        responses["200"] = result;
        responses["406"] = JsonResponse("The Accept header names none of application/json, text/csv, application/x-ndjson.", Detail, document);
        responses["409"] = JsonResponse("The source is not fully configured (`not_configured`).", QueryFailure, document);
        responses["422"] = JsonResponse("The database refused or failed the statement: syntax, missing table, permission.", QueryFailure, document);
        responses["502"] = JsonResponse("The database could not be reached or refused the login.", QueryFailure, document);
        responses["503"] = JsonResponse("Too many queries are running on this source (`source_busy`); retry after `Retry-After` seconds.", QueryFailure, document);
        responses["504"] = JsonResponse("The time limit passed; the statement was cancelled (`timeout`).", QueryFailure, document);
    }

    /// <summary>The create body of one type: its name, its type, and its fields (contract section 5).</summary>
    private static OpenApiSchema CreateRequest(SourceType type)
    {
        var accountName = AccountName();
        accountName.Default = JsonValue.Create(type.DisplayName);
        accountName.Description += $" Defaults to `{type.DisplayName}`.";

        var properties = new List<(string, IOpenApiSchema, bool)>
        {
            ("type", Enum([type.Name], $"`{type.Name}` (any case is accepted). Required on POST /api/v1/sources/; optional on the type's own route."), false),
            ("account_name", accountName, false),
        };
        properties.AddRange(type.Fields.Select(f => (f.Name, (IOpenApiSchema)FieldSchema(f), f.Required)));
        return Object($"Creates a {type.DisplayName} ({type.Name}) source.", [.. properties]);
    }

    /// <summary>
    /// update-config takes any field of any type (each checked against the source's own type), so
    /// its body is the union of them all, every one optional; null clears a field that some type
    /// has as optional.
    /// </summary>
    private static OpenApiSchema ConfigUpdateRequest()
    {
        var properties = new List<(string, IOpenApiSchema, bool)> { ("account_name", AccountName(), false) };
        foreach (var group in SourceTypes.All.SelectMany(t => t.Fields.Select(f => (Type: t, Field: f))).GroupBy(x => x.Field.Name))
        {
            // Types agree on a field's kind; its longest limit wins, and a default has no meaning in a patch.
            var schema = FieldSchema(group.First().Field with { MaxLength = group.Max(x => x.Field.MaxLength), Default = null });
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

        return Object(
            "Any subset of `account_name` and the fields of the source's type. An omitted field keeps its stored value, secrets included.",
            [.. properties]);
    }

    private static OpenApiSchema FieldSchema(Field field)
    {
        var schema = field.Kind switch
        {
            FieldKind.Port => new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1", Maximum = "65535" },
            FieldKind.Boolean => new OpenApiSchema { Type = JsonSchemaType.Boolean },
            FieldKind.NameList => new OpenApiSchema
            {
                Type = JsonSchemaType.Array,
                Items = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = Field.MaxTextLength },
                MaxItems = Field.MaxListItems,
            },

            // A JSON object, or a string holding one.
            FieldKind.ServiceAccountKey => new OpenApiSchema
            {
                OneOf = [new OpenApiSchema { Type = JsonSchemaType.Object }, new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1 }],
            },
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

    /// <summary>Idempotency-Key (a Caravan extension): the header, its replay marker and its 409.</summary>
    private static void DescribeIdempotencyKey(OpenApiOperation operation, OpenApiResponses responses, OpenApiDocument? document)
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
        if (responses.TryGetValue("200", out var ok) && ok is OpenApiResponse created)
        {
            created.Headers = new Dictionary<string, IOpenApiHeader>
            {
                [IdempotencyKeys.ReplayedHeader] = new OpenApiHeader
                {
                    Description = "`true` when this is the stored answer of an earlier request with the same Idempotency-Key.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("true")] },
                },
            };
        }

        responses["409"] = JsonResponse("The Idempotency-Key was already used with a different request.", Detail, document);
    }

    private static void DescribeIdParameter(OpenApiOperation operation)
    {
        foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
        {
            if (parameter.Name == "id")
            {
                // A string, as camelAI declares it: anything that is not a positive integer is a 404.
                parameter.Description = "A unique integer value identifying this data source.";
            }
        }
    }

    private static OpenApiParameter QueryInteger(string name, string description) => new()
    {
        Name = name,
        In = ParameterLocation.Query,
        Description = description,
        Schema = new OpenApiSchema { Type = JsonSchemaType.Integer },
    };

    private static OpenApiRequestBody JsonBody(string schema, OpenApiDocument? document) => new()
    {
        Required = true,
        Content = new Dictionary<string, OpenApiMediaType> { [Json] = new() { Schema = Reference(schema, document) } },
    };

    private static OpenApiResponse JsonResponse(string description, string schema, OpenApiDocument? document) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType> { [Json] = new() { Schema = Reference(schema, document) } },
    };

    /// <summary>The streaming mode of the test routes (extension): the same 200, as NDJSON lines.</summary>
    private static OpenApiResponse WithStream(OpenApiResponse response, OpenApiDocument? document)
    {
        response.Description += " With `Accept: application/x-ndjson` (extension) the answer streams one JSON line per event as the test runs: "
            + "`{\"plan\": [...]}`, `{\"step\": {...}}` as each step finishes, and `{\"report\": {...}}` last.";
        response.Content![Ndjson] = new OpenApiMediaType { Schema = Reference(ConnectionTestStreamLine, document) };
        return response;
    }

    private static OpenApiParameter QueryText(string name, string description) => new()
    {
        Name = name,
        In = ParameterLocation.Query,
        Required = false,
        Description = description,
        Schema = Text(null),
    };

    private static OpenApiResponses Sorted(OpenApiResponses responses)
    {
        var sorted = new OpenApiResponses();
        foreach (var (status, response) in responses.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            sorted[status] = response;
        }

        return sorted;
    }

    private static OpenApiSchemaReference Reference(string name, OpenApiDocument? document) => new(name, document);

    private static OpenApiSchema Object(string? description, params (string Name, IOpenApiSchema Schema, bool Required)[] properties) => new()
    {
        Type = JsonSchemaType.Object,
        Description = description,
        Properties = properties.ToDictionary(p => p.Name, p => p.Schema),
        Required = properties.Where(p => p.Required).Select(p => p.Name).ToHashSet(),
    };

    private static OpenApiSchema AccountName() => new()
    {
        Type = JsonSchemaType.String,
        MinLength = 1,
        MaxLength = Field.MaxTextLength,
        Description = "Display name, 1–255 characters after trimming.",
    };

    private static OpenApiSchema Text(string? description) => new() { Type = JsonSchemaType.String, Description = description };

    private static readonly string[] FailureCodeNames =
    [
        "host_unresolvable", "egress_denied", "port_closed", "timeout", "tls_failed", "auth_failed",
        "database_not_found", "insufficient_privilege", "driver_error",
    ];

    private static OpenApiSchema Nullable(OpenApiSchema schema)
    {
        schema.Type |= JsonSchemaType.Null;
        return schema;
    }

    private static OpenApiSchema Integer(string description) => new() { Type = JsonSchemaType.Integer, Description = description };

    private static OpenApiSchema Boolean(string description) => new() { Type = JsonSchemaType.Boolean, Description = description };

    private static OpenApiSchema Url(string description) => new()
    {
        Type = JsonSchemaType.String | JsonSchemaType.Null,
        Format = "uri",
        Description = description,
    };

    private static OpenApiSchema Enum(IEnumerable<string> values, string description) => new()
    {
        Type = JsonSchemaType.String,
        Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))],
        Description = description,
    };
}
