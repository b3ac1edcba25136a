using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace Caravan.Api.Hosting;

/// <summary>
/// The OpenAPI document at /api/schema/ and the interactive docs at /api/docs/. The document is
/// generated from the endpoints: each route declares its answers, body and parameters where it is
/// mapped (<see cref="ApiOperations"/>), and the components it uses come with those declarations.
/// What is the document's own is here: its description, the security schemes, the error bodies
/// every route shares, the answer every route may give (500), and the docs page.
/// </summary>
internal static class ApiDocs
{
    public const string SchemaRoute = "/api/schema/";
    public const string DocsRoute = "/api/docs";

    public const string BearerAuth = "BearerAuth";
    public const string ApiKeyAuth = "ApiKeyAuth";

    /// <summary>The validation error shape (contract section 1).</summary>
    public static ApiSchema ValidationError { get; } = new("ValidationError", _ => Schema.Object(
        "Validation failed; nothing was written.",
        ("error", Schema.Text("A one-line summary."), true),
        ("errors", new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "Messages by field; `non_field_errors` for problems with no single field.",
            AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = Schema.Text(null) },
        }, true)));

    /// <summary>DRF's shape for everything that is not a validation error.</summary>
    public static ApiSchema Detail { get; } = new("Detail", _ => Schema.Object(null, ("detail", Schema.Text("What went wrong."), true)));

    public static ApiSchema StaleSource { get; } = new("StaleSource", _ => Schema.Object(
        null,
        ("detail", Schema.Text("Always `The source was changed since you read it.`"), true),
        ("current_etag", Schema.Text("The source's current ETag."), true)));

    public static ApiSchema ServerError { get; } = new("ServerError", _ => Schema.Object(
        null,
        ("detail", Schema.Text("Always `Internal server error.`"), true),
        ("trace_id", Schema.Text("Identifies the failure in the server's logs."), true)));

    public static IServiceCollection AddApiDocs(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            // 3.0 rather than 3.1: it is what camelAI publishes and what most client generators read.
            options.OpenApiVersion = OpenApiSpecVersion.OpenApi3_0;

            // The components are the ApiSchemas the routes declare. A schema the generator infers from
            // a C# type (a typed result's) stays inline, and the declared answer replaces it, so no
            // second, unused description of a body is left under components.
            options.CreateSchemaReferenceId = _ => null;
            options.AddOperationTransformer(DescribeOperation);
            options.AddDocumentTransformer(DescribeDocument);
        });

    public static IEndpointRouteBuilder MapApiDocs(this IEndpointRouteBuilder routes)
    {
        // Both are outside /api/v1/, so no API key is asked for (contract section 2).
        routes.MapOpenApi(SchemaRoute);
        routes.MapScalarApiReference(DocsRoute, options => options
            .WithTitle("Caravan API")
            .AddDocument("v1", "Caravan API", SchemaRoute)
            .AddPreferredSecuritySchemes(BearerAuth)

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

    /// <summary>
    /// Writes what the endpoint declares into its operation. The declared answers are all of the
    /// operation's: the generator's guesses from the handler's signature (a bare 200, a typed
    /// result's inline schema) are not kept.
    /// </summary>
    private static Task DescribeOperation(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var facts = context.Description.ActionDescriptor.EndpointMetadata.OfType<OperationFact>().ToList();
        if (facts.Count == 0)
        {
            return Task.CompletedTask;
        }

        var document = context.Document ?? throw new InvalidOperationException("The operation has no document to add its components to.");
        operation.Responses = new OpenApiResponses();
        foreach (var fact in facts)
        {
            fact.Apply(operation, document);
        }

        // UseApiErrors answers any unexpected failure of any route.
        operation.Responses["500"] = ApiOperations.JsonResponse("An unexpected failure; quote the trace id when reporting it.", ServerError, document);

        var sorted = new OpenApiResponses();
        foreach (var (status, response) in operation.Responses.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            sorted[status] = response;
        }

        operation.Responses = sorted;
        return Task.CompletedTask;
    }

    private static Task DescribeDocument(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
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

        // AddComponent also registers the scheme with the document's workspace, so the operations'
        // references to it (made before, by the operation transformers) resolve.
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
        return Task.CompletedTask;
    }
}
