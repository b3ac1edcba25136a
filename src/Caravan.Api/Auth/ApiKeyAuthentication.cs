using System.Data.Common;
using Caravan.Api.Hosting;
using Caravan.Api.Tokens;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Caravan.Api.Auth;

/// <summary>
/// Authenticates <c>Authorization: Bearer &lt;key&gt;</c> or <c>X-API-Key: &lt;key&gt;</c> against the
/// store on every request, so a revoked key is refused on the next request by every replica.
/// An endpoint filter rather than an ASP.NET authentication scheme: there is one kind of caller,
/// and the scheme machinery would bring a Data Protection key ring the service has no use for.
/// A bearer value of a token's shape (<see cref="TokenAuthentication.IsToken"/>) is a token, and
/// <see cref="TokenAuthentication"/> admits it: a token acts for the key that minted it.
/// </summary>
internal sealed class ApiKeyFilter(ApiKeys keys, TokenAuthentication tokens) : IEndpointFilter
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

        if (IsBearerToken(http.Request, key))
        {
            return await tokens.AdmitAsync(http, key) ?? await next(context);
        }

        if (!IsWellFormed(key))
        {
            return Challenge(http, InvalidKey);
        }

        if (http.GetEndpoint()?.Metadata.GetMetadata<KeyCheckedInQuery>() is not null)
        {
            http.Features.Set(new PresentedKey(ApiKeys.Hash(key), null));
            return await next(context);
        }

        if (await keys.AuthenticateAsync(key, http.RequestAborted) is not { } caller)
        {
            return Challenge(http, InvalidKey);
        }

        http.Features.Set(caller);
        return await next(context);
    }

    /// <summary>The key (or the token's minting key) a <see cref="KeyCheckedInQuery"/> route must look up in its query.</summary>
    public static PresentedKey Presented(HttpContext http) =>
        http.Features.Get<PresentedKey>() ?? throw new InvalidOperationException("The route is not marked KeyCheckedInQuery.");

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

    /// <summary>The 401 for a key the store does not know or has revoked (for a token: its minting key).</summary>
    public static JsonHttpResult<DetailBody> InvalidKeyChallenge(HttpContext http) =>
        Challenge(http, http.Features.Get<PresentedKey>()?.Token is null ? InvalidKey : TokenAuthentication.InvalidToken);

    /// <summary>The 401 for a request that sent no key.</summary>
    public static JsonHttpResult<DetailBody> MissingKeyChallenge(HttpContext http) => Challenge(http, NoCredentials);

    /// <summary>A key is short printable ASCII; anything else cannot be one and never reaches the store.</summary>
    public static bool IsWellFormed(string key) => key.Length is > 0 and <= 200 && !key.Any(c => c is < '!' or > '~');

    /// <summary>Whether the request sends a token (as <c>Authorization: Bearer</c>, never as <c>X-API-Key</c>) rather than a key.</summary>
    public static bool IsBearerToken(HttpRequest request, string value) =>
        request.Headers.Authorization.Count > 0 && TokenAuthentication.IsToken(value);

    /// <summary>A 401 with <c>WWW-Authenticate: Bearer</c>.</summary>
    public static JsonHttpResult<DetailBody> Challenge(HttpContext http, string detail)
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

/// <summary>
/// The credential of a <see cref="KeyCheckedInQuery"/> request, not checked against the store yet:
/// the SHA-256 of a well-formed API key, or a verified token, whose minting key is looked up by id.
/// </summary>
public sealed record PresentedKey(byte[]? Hash, TokenGrant? Token)
{
    /// <summary>What the store query matches the key by: the hash, or the minting key's id.</summary>
    public object Key => Token?.KeyId ?? (object)Hash!;

    /// <summary>The condition on <c>api_keys k</c> that finds the key whose hash (or, for a token, id) is <paramref name="value"/>.</summary>
    public static string Condition(bool byMintingKey, string value) => byMintingKey ? $"k.id = {value}" : $"k.key_hash = {value}";

    /// <summary>The source id to look up: 0, which no source has, for one the token may not see.</summary>
    public long Visible(long id) => Token?.Sees(id) == false ? 0 : id;

    /// <summary>The caller of a row of <see cref="ApiKeys.CallerColumns"/> from <paramref name="first"/>; null when it is not this credential's.</summary>
    public Caller? ReadCaller(DbDataReader reader, int first) =>
        Token is null ? ApiKeys.ReadCaller(reader, Hash!, first) : TokenAuthentication.ReadMinter(reader, Token, first);
}

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
        group.AddEndpointFilter<ApiKeyFilter>().AddEndpointFilter<RateLimitFilter>().SecuredByApiKey().Declares(TokenDocs.DescribeClosed);

    /// <summary>The caller of an authenticated request; the group's filter guarantees it is set.</summary>
    public static Caller Caller(this HttpContext context) =>
        context.Features.Get<Caller>() ?? throw new InvalidOperationException("The route group is missing RequireApiKey().");
}
