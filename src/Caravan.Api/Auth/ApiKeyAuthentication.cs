using Caravan.Api.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Caravan.Api.Auth;

/// <summary>
/// Authenticates <c>Authorization: Bearer &lt;key&gt;</c> or <c>X-API-Key: &lt;key&gt;</c> against the
/// store on every request, so a revoked key is refused on the next request by every replica.
/// An endpoint filter rather than an ASP.NET authentication scheme: there is one kind of caller,
/// and the scheme machinery would bring a Data Protection key ring the service has no use for.
/// </summary>
internal sealed class ApiKeyFilter(ApiKeys keys) : IEndpointFilter
{
    private const string NoCredentials = "Authentication credentials were not provided.";
    private const string InvalidKey = "Invalid API key.";

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var key = ReadKey(http.Request);
        if (key is null)
        {
            return Challenge(http, NoCredentials);
        }

        if (!IsWellFormed(key))
        {
            return Challenge(http, InvalidKey);
        }

        if (http.GetEndpoint()?.Metadata.GetMetadata<KeyCheckedInQuery>() is not null)
        {
            http.Features.Set(new PresentedKey(ApiKeys.Hash(key)));
            return await next(context);
        }

        if (await keys.AuthenticateAsync(key, http.RequestAborted) is not { } caller)
        {
            return Challenge(http, InvalidKey);
        }

        http.Features.Set(caller);
        return await next(context);
    }

    /// <summary>The SHA-256 of the key a <see cref="KeyCheckedInQuery"/> route must look up in its query.</summary>
    public static byte[] PresentedKeyHash(HttpContext http) =>
        http.Features.Get<PresentedKey>()?.Hash ?? throw new InvalidOperationException("The route is not marked KeyCheckedInQuery.");

    /// <summary>
    /// For a <see cref="KeyCheckedInQuery"/> route, once its query ran: a 401 when it found no active
    /// key, else the caller is set and a token of <paramref name="bucket"/> taken (a 429 when there is
    /// none). Null: go on.
    /// </summary>
    public static JsonHttpResult<DetailBody>? Admit(HttpContext http, Caller? caller, RateLimits limits, RateBucket bucket)
    {
        if (caller is null)
        {
            return InvalidKeyChallenge(http);
        }

        http.Features.Set(caller);
        return RateLimitFilter.Check(http, limits, bucket);
    }

    /// <summary>The 401 for a key the store does not know or has revoked.</summary>
    public static JsonHttpResult<DetailBody> InvalidKeyChallenge(HttpContext http) => Challenge(http, InvalidKey);

    /// <summary>The 401 for a request that sent no key.</summary>
    public static JsonHttpResult<DetailBody> MissingKeyChallenge(HttpContext http) => Challenge(http, NoCredentials);

    /// <summary>A key is short printable ASCII; anything else cannot be one and never reaches the store.</summary>
    public static bool IsWellFormed(string key) => key.Length is > 0 and <= 200 && !key.Any(c => c is < '!' or > '~');

    private static JsonHttpResult<DetailBody> Challenge(HttpContext http, string detail)
    {
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return ApiResults.Detail(StatusCodes.Status401Unauthorized, detail);
    }

    /// <summary>The key sent as <c>Authorization: Bearer</c> or <c>X-API-Key</c>; empty for another scheme, null when none was sent.</summary>
    public static string? ReadKey(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.Length > 0)
        {
            const string bearer = "Bearer ";
            return authorization.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)
                ? authorization[bearer.Length..].Trim()
                : string.Empty;
        }

        var header = request.Headers["X-API-Key"].ToString();
        return header.Length > 0 ? header.Trim() : null;
    }
}

/// <summary>
/// Marks a read-only endpoint whose handler checks the key in the same query as its read: one
/// round trip to the store instead of two on the hottest route. The filter still answers every
/// missing or malformed key; the handler must answer <see cref="ApiKeyFilter.InvalidKeyChallenge"/>
/// when its query finds no active key, before anything else.
/// </summary>
internal sealed class KeyCheckedInQuery
{
    public static KeyCheckedInQuery Instance { get; } = new();
}

/// <summary>The SHA-256 of a well-formed key not checked yet (see <see cref="KeyCheckedInQuery"/>).</summary>
internal sealed record PresentedKey(byte[] Hash);

internal static class AuthSetup
{
    public static IServiceCollection AddApiKeyAuthentication(this IServiceCollection services)
    {
        services.AddSingleton<ApiKeys>();
        services.AddSingleton<ApiKeyFilter>();
        return services;
    }

    /// <summary>
    /// Every route of the group needs a valid API key, and counts against the key's rate limit
    /// (checked after the key, so refused requests count against nothing). The OpenAPI document
    /// says so of each of them.
    /// </summary>
    public static RouteGroupBuilder RequireApiKey(this RouteGroupBuilder group) =>
        group.AddEndpointFilter<ApiKeyFilter>().AddEndpointFilter<RateLimitFilter>().SecuredByApiKey();

    /// <summary>The caller of an authenticated request; the group's filter guarantees it is set.</summary>
    public static Caller Caller(this HttpContext context) =>
        context.Features.Get<Caller>() ?? throw new InvalidOperationException("The route group is missing RequireApiKey().");
}
