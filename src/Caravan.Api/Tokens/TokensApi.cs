using System.Text.Json.Serialization;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.IdentityModel.Logging;

namespace Caravan.Api.Tokens;

/// <summary>camelAI's STS answer: the token, its type, and its lifetime in seconds.</summary>
public sealed record TokenResponse(string AccessToken, string TokenType, int ExpiresIn);

/// <summary>camelAI's STS error shape, <c>{"error": "..."}</c>, for every error of <c>POST /api/v1/token</c>.</summary>
public sealed record StsErrorBody([property: JsonPropertyName("error")] string Error);

/// <summary>
/// STS tokens (contract section 9.1): <c>POST /api/v1/token</c> exchanges an API key for a
/// short-lived ES256 token that a browser or an agent carries instead of the key, and
/// <c>GET /api/v1/.well-known/jwks.json</c> publishes the keys that verify it. What a token may do
/// on the other routes is decided by <see cref="TokenAuthentication"/> and each route's
/// <see cref="AllowTokensAttribute"/>.
/// </summary>
public static class TokensApi
{
    public const string MintOperationId = "token_create";
    public const string JwksOperationId = "getJWKS";
    public const string JwksRoute = "/api/v1/.well-known/jwks.json";

    public static IServiceCollection AddTokens(this IServiceCollection services)
    {
        // The library's own logging: never the token or a key, whatever a log level says.
        IdentityModelEventSource.ShowPII = false;
        IdentityModelEventSource.LogCompleteSecurityArtifact = false;

        services.AddSingleton<TokenSigningKeys>();
        services.AddSingleton<TokenIssuer>();
        services.AddSingleton<TokenVerifier>();
        services.AddSingleton<TokenAuthentication>();
        services.Configure<OpenApiOptions>("v1", options => options.AddDocumentTransformer(TokenDocs.Describe));
        return services;
    }

    public static IEndpointRouteBuilder MapTokens(this IEndpointRouteBuilder routes)
    {
        // The STS shape wraps everything, the key check included, so every refusal speaks it.
        routes.MapGroup("/api/v1/token").AddEndpointFilter<StsErrorShape>().RequireApiKey().WithTags(TokenDocs.Tag)
            .MapPost("/", Mint).WithName(MintOperationId).WithSummary("Issue STS Token").Declares(TokenDocs.DescribeMint);

        // Open to anyone, as public keys are: verifiers fetch it without credentials.
        routes.MapGet(JwksRoute, Jwks).WithName(JwksOperationId).WithTags(TokenDocs.Tag).WithSummary("Get the JSON Web Key Set that verifies tokens")
            .Declares(TokenDocs.DescribeJwks);
        return routes;
    }

    public static async Task<IResult> Mint(HttpContext context, Database database, TokenIssuer issuer, CancellationToken cancellationToken)
    {
        var read = await JsonBody.ReadObjectAsync(context.Request, cancellationToken);
        if (read.Error is not null)
        {
            return read.Error;
        }

        var caller = context.Caller();
        var errors = new ValidationErrors();
        var request = TokenRequest.Read(read.Body!, errors);
        if (request.Sources is { } ids)
        {
            // The same words for an id of another organization as for one never used: ids leak nothing.
            foreach (var id in await MissingAsync(database, caller, ids, cancellationToken))
            {
                errors.Add(request.SourcesField, $"{id} is not a data source of your organization.");
            }
        }

        if (!errors.IsEmpty)
        {
            return ApiResults.Invalid(errors);
        }

        var token = await issuer.IssueAsync(caller, request.Uid, request.Scope, request.Sources, TimeSpan.FromSeconds(request.Ttl), cancellationToken);

        // A bearer credential: no cache may keep it (RFC 6749, section 5.1).
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(new TokenResponse(token, "bearer", request.Ttl), ApiJson.Context.TokenResponse);
    }

    public static async Task<IResult> Jwks(HttpContext context, TokenSigningKeys keys, CancellationToken cancellationToken)
    {
        var jwks = await keys.JwksAsync(cancellationToken);
        context.Response.Headers.CacheControl = "public, max-age=60";
        return TypedResults.Text(jwks.ToJsonString(), "application/json; charset=utf-8");
    }

    /// <summary>The ids that are not live sources of the caller's organization, in the order sent.</summary>
    private static async Task<List<long>> MissingAsync(Database database, Caller caller, IReadOnlyList<long> ids, CancellationToken cancellationToken)
    {
        var found = new HashSet<long>();
        await using var lease = await database.LeaseReadAsync(cancellationToken);
        await using var reader = await lease.Command(
            $"SELECT id FROM sources WHERE organization_id = @org AND deleted_at IS NULL AND {TokenAccessExtensions.SourceIdsCondition(database, "id")}")
            .With("@org", caller.OrganizationId).WithSourceIds(database, ids).ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            found.Add(reader.GetInt64(0));
        }

        return [.. ids.Where(id => !found.Contains(id))];
    }

    /// <summary>
    /// Turns the API's error answers into camelAI's STS shape <c>{"error": "..."}</c> with the same
    /// status and headers: the key check's 401 and 403, the rate limit's 429, the body's 400, 413
    /// and 415. A validation failure becomes one line naming each field.
    /// </summary>
    internal sealed class StsErrorShape : IEndpointFilter
    {
        public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
            await next(context) switch
            {
                JsonHttpResult<DetailBody> { Value: { } detail } answer => Error(answer.StatusCode, detail.Detail),
                JsonHttpResult<ErrorBody> { Value: { } invalid } answer => Error(answer.StatusCode, Line(invalid)),
                var other => other,
            };

        private static JsonHttpResult<StsErrorBody> Error(int? status, string message) =>
            TypedResults.Json(new StsErrorBody(message), ApiJson.Context.StsErrorBody, statusCode: status ?? StatusCodes.Status400BadRequest);

        private static string Line(ErrorBody invalid) =>
            invalid.Errors.Count == 0
                ? invalid.Error
                : string.Join(" ", invalid.Errors.SelectMany(e => e.Value.Select(message => e.Key == ValidationErrors.NonField ? message : $"{e.Key}: {message}")));
    }
}
