using System.Globalization;
using Microsoft.Net.Http.Headers;
using Microsoft.OpenApi;

namespace Caravan.Api.Hosting;

/// <summary>
/// One fact about an operation of the OpenAPI document, attached to its endpoint where the route
/// is mapped and written into the operation by <see cref="ApiDocs"/>.
/// </summary>
internal sealed class OperationFact(Action<OpenApiOperation, OpenApiDocument> apply)
{
    public void Apply(OpenApiOperation operation, OpenApiDocument document) => apply(operation, document);
}

/// <summary>
/// What a route declares about itself for the OpenAPI document, next to its other conventions:
/// <c>group.MapGet("/{id}/", Retrieve).WithName(...).TakesSourceId().Answers(200, "The data source.", Connection)</c>.
/// The handlers read their bodies and answer <see cref="IResult"/>s the generator cannot see into,
/// so their answers, bodies and parameters are said here, with the components they use.
/// </summary>
internal static class ApiOperations
{
    public const string Json = "application/json";

    /// <summary>Any other fact about the operation.</summary>
    public static TBuilder Declares<TBuilder>(this TBuilder builder, Action<OpenApiOperation, OpenApiDocument> fact)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new OperationFact(fact));

    /// <summary>An answer with <paramref name="status"/>: a JSON body of <paramref name="body"/>, or no body when null.</summary>
    public static TBuilder Answers<TBuilder>(
        this TBuilder builder, int status, string description, ApiSchema? body = null, Action<OpenApiResponse, OpenApiDocument>? more = null)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, document) =>
        {
            var response = body is null ? new OpenApiResponse { Description = description } : JsonResponse(description, body, document);
            more?.Invoke(response, document);
            SetResponse(operation, status, response);
        });

    /// <summary>A required JSON body of <paramref name="body"/>, and the answers of a body that is not one (JsonBody).</summary>
    public static TBuilder AcceptsJson<TBuilder>(this TBuilder builder, ApiSchema body)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, document) =>
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType> { [Json] = new() { Schema = body.In(document) } },
            };
            SetResponse(operation, StatusCodes.Status400BadRequest, JsonResponse("Validation failed, or the body is not a JSON object.", ApiDocs.ValidationError, document));
            SetResponse(operation, StatusCodes.Status413PayloadTooLarge, JsonResponse("The body is larger than the server accepts.", ApiDocs.Detail, document));
            SetResponse(operation, StatusCodes.Status415UnsupportedMediaType, JsonResponse("The body is not sent as application/json.", ApiDocs.Detail, document));
        });

    /// <summary>The API key (contract section 2), asked for by the key filter and the rate limits behind it.</summary>
    public static TBuilder SecuredByApiKey<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, document) =>
        {
            SetResponse(operation, StatusCodes.Status401Unauthorized, JsonResponse("No API key, or an invalid or revoked one.", ApiDocs.Detail, document));
            var throttled = JsonResponse(
                "The API key's rate limit is exhausted (`Request was throttled.`); retry after `Retry-After` seconds.", ApiDocs.Detail, document);
            throttled.Headers = new Dictionary<string, IOpenApiHeader>
            {
                [HeaderNames.RetryAfter] = new OpenApiHeader
                {
                    Description = "Whole seconds until a request of this kind would be accepted.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" },
                },
            };
            SetResponse(operation, StatusCodes.Status429TooManyRequests, throttled);

            // Either header is accepted: one requirement each means "one of them".
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiDocs.BearerAuth, document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiDocs.ApiKeyAuth, document)] = [] },
            ];
        });

    /// <summary>The <c>{id}</c> of a data source (<see cref="RouteIds"/>), and the 404 of one the caller does not have.</summary>
    public static TBuilder TakesSourceId<TBuilder>(this TBuilder builder, string notFound = "No such data source in your organization.")
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, document) =>
        {
            // A string, as camelAI declares it: anything that is not a positive integer is a 404.
            var id = operation.Parameters?.OfType<OpenApiParameter>().SingleOrDefault(p => p.Name == "id")
                ?? throw new InvalidOperationException($"{operation.OperationId} has no {{id}} in its route.");
            id.Description = "A unique integer value identifying this data source.";
            SetResponse(operation, StatusCodes.Status404NotFound, JsonResponse(notFound, ApiDocs.Detail, document));
        });

    /// <summary>Optimistic concurrency (a Caravan extension): the ETag of a GET, sent back as If-Match.</summary>
    public static TBuilder ChecksIfMatch<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, document) =>
        {
            AddParameter(operation, new OpenApiParameter
            {
                Name = HeaderNames.IfMatch,
                In = ParameterLocation.Header,
                Required = false,
                Description = "The ETag of the source as you read it; if it changed since, nothing is written and the answer is 412.",
                Schema = Schema.Text(null),
            });
            SetResponse(operation, StatusCodes.Status412PreconditionFailed, JsonResponse("The source was changed since you read it (stale If-Match).", ApiDocs.StaleSource, document));
        });

    /// <summary>The page parameters of a list (<see cref="Paging"/>).</summary>
    public static TBuilder TakesPage<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, _) =>
        {
            AddParameter(operation, Query(Paging.PageParameter, "A page number within the paginated result set.", JsonSchemaType.Integer));
            AddParameter(operation, Query(Paging.PageSizeParameter, "Number of results to return per page.", JsonSchemaType.Integer));
        });

    /// <summary>An optional query parameter of text.</summary>
    public static TBuilder TakesQueryText<TBuilder>(this TBuilder builder, string name, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, _) => AddParameter(operation, Query(name, description, JsonSchemaType.String)));

    public static OpenApiResponse JsonResponse(string description, ApiSchema body, OpenApiDocument document) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType> { [Json] = new() { Schema = body.In(document) } },
    };

    private static void SetResponse(OpenApiOperation operation, int status, OpenApiResponse response)
    {
        operation.Responses ??= new OpenApiResponses();
        operation.Responses[status.ToString(CultureInfo.InvariantCulture)] = response;
    }

    private static void AddParameter(OpenApiOperation operation, OpenApiParameter parameter)
    {
        operation.Parameters ??= [];
        operation.Parameters.Add(parameter);
    }

    private static OpenApiParameter Query(string name, string description, JsonSchemaType type) => new()
    {
        Name = name,
        In = ParameterLocation.Query,
        Description = description,
        Schema = new OpenApiSchema { Type = type },
    };
}
