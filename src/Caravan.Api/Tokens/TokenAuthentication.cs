using System.Data.Common;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Hosting;

namespace Caravan.Api.Tokens;

/// <summary>
/// The token half of the API's authentication (<see cref="ApiKeyFilter"/> and the MCP gate hand a
/// bearer value of a token's shape here). A token is verified without the store (signature,
/// issuer, audience, lifetime), then its minting key is looked up by id on every request, so a
/// revoked key takes its tokens with it on the next request, on every replica. A route is open to
/// a token only if it declares <see cref="AllowTokensAttribute"/> of the token's scope; anything else is a
/// 403 that changes nothing.
/// </summary>
public sealed class TokenAuthentication(TokenVerifier verifier, Database database)
{
    public const string InvalidToken = "Invalid token.";
    public const string NotAllowed = "This token does not allow this action.";

    private static readonly string MinterSql = $"""
        SELECT {ApiKeys.CallerColumns}
        FROM api_keys k JOIN organizations o ON o.id = k.organization_id
        WHERE {PresentedKey.Condition(byMintingKey: true, "@key")} AND k.revoked_at IS NULL
        """;

    /// <summary>
    /// Whether a bearer value has the shape of a token rather than of an API key: not <c>cvn_</c>,
    /// three base64url parts separated by dots, the first one a JSON object (<c>eyJ</c>).
    /// </summary>
    public static bool IsToken(string value)
    {
        if (value.Length is < 16 or > TokenVerifier.MaxTokenLength || !value.StartsWith("eyJ", StringComparison.Ordinal))
        {
            return false;
        }

        var dots = 0;
        foreach (var c in value)
        {
            if (c == '.')
            {
                dots++;
            }
            else if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_'))
            {
                return false;
            }
        }

        return dots == 2;
    }

    /// <summary>
    /// Admits a request that presents a token: null when it may go on (its <see cref="Caller"/> is
    /// set, or, on a <see cref="KeyCheckedInQuery"/> route, its <see cref="PresentedKey"/> for the
    /// route's own query), else the answer: 401 for a token that is not valid or whose key was
    /// revoked, 403 for a route or scope the token does not allow.
    /// </summary>
    public async Task<IResult?> AdmitAsync(HttpContext http, string token)
    {
        if (await verifier.VerifyAsync(token, http.RequestAborted) is not { } grant)
        {
            return ApiKeyFilter.Challenge(http, InvalidToken);
        }

        var metadata = http.GetEndpoint()?.Metadata;
        var allowed = AllowTokensAttribute.Admits(metadata?.GetMetadata<AllowTokensAttribute>(), grant);
        if (allowed && metadata?.GetMetadata<KeyCheckedInQuery>() is not null)
        {
            http.Features.Set(new PresentedKey(null, grant));
            return null;
        }

        // The key is checked before the route is refused: a token of a revoked key is a 401 everywhere.
        if (await FindMinterAsync(grant, http.RequestAborted) is not { } caller)
        {
            return ApiKeyFilter.Challenge(http, InvalidToken);
        }

        if (!allowed)
        {
            return ApiResults.Detail(StatusCodes.Status403Forbidden, NotAllowed);
        }

        http.Features.Set(caller);
        return null;
    }

    /// <summary>
    /// The caller of a row of <see cref="ApiKeys.CallerColumns"/> found by a token's minting key id:
    /// the key and the organization must be the token's (a token names its key; it cannot borrow
    /// another organization's).
    /// </summary>
    public static Caller? ReadMinter(DbDataReader reader, TokenGrant grant, int first)
    {
        var (keyId, organizationId, organization) = (reader.GetString(first), reader.GetInt64(first + 1), reader.GetString(first + 2));
        return keyId == grant.KeyId && organization == grant.Organization ? new Caller(organizationId, organization, keyId, grant) : null;
    }

    private async Task<Caller?> FindMinterAsync(TokenGrant grant, CancellationToken cancellationToken)
    {
        await using var lease = await database.LeaseReadAsync(cancellationToken);
        await using var reader = await lease.Command(MinterSql).With("@key", grant.KeyId).ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadMinter(reader, grant, 0) : null;
    }
}
