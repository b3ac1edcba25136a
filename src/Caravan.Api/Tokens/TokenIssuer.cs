using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Caravan.Api.Auth;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Caravan.Api.Tokens;

/// <summary>The claims of a Caravan token (contract section 9.1), and its issuer and audience.</summary>
public static class TokenClaims
{
    /// <summary>Who issues every token: this service, whichever replica.</summary>
    public const string Issuer = "caravan";

    /// <summary>Who a token is for: this service's API; a token with another audience is refused.</summary>
    public const string Audience = "caravan-api";

    public const string Subject = "sub";
    public const string Organization = "org";
    public const string Sources = "srcs";
    public const string Scope = "scope";
    public const string KeyId = "key_id";
    public const string TokenId = "jti";

    /// <summary>The scope names, as a request sends them and the <c>scope</c> claim holds them.</summary>
    public static string Name(TokenScope scope) => scope == TokenScope.Query ? "query" : "read";

    public static TokenScope? Parse(string name) => name switch
    {
        "query" => TokenScope.Query,
        "read" => TokenScope.Read,
        _ => null,
    };
}

/// <summary>Signs tokens with the current signing key (<see cref="TokenSigningKeys"/>).</summary>
public sealed class TokenIssuer(TokenSigningKeys keys, TimeProvider time)
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    /// <summary>A token for <paramref name="caller"/>'s key, valid for <paramref name="lifetime"/> from now.</summary>
    public async Task<string> IssueAsync(
        Caller caller, string uid, TokenScope scope, IReadOnlyList<long>? sources, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        var credentials = await keys.SigningCredentialsAsync(cancellationToken);

        // JWT times are whole seconds; the lifetime is exactly what was asked for.
        var now = DateTimeOffset.FromUnixTimeSeconds(time.GetUtcNow().ToUnixTimeSeconds()).UtcDateTime;
        var claims = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            [TokenClaims.Subject] = uid,
            [TokenClaims.Organization] = caller.OrganizationName,
            [TokenClaims.Scope] = TokenClaims.Name(scope),
            [TokenClaims.KeyId] = caller.KeyId,
            [TokenClaims.TokenId] = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16)),
        };
        if (sources is not null)
        {
            claims[TokenClaims.Sources] = sources.ToArray();
        }

        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = TokenClaims.Issuer,
            Audience = TokenClaims.Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            Claims = claims,
            SigningCredentials = credentials,
            TokenType = JwtConstants.HeaderType,
        });
    }
}

/// <summary>
/// Verifies tokens with Microsoft.IdentityModel's <see cref="JsonWebTokenHandler"/>: ES256 only,
/// Caravan's issuer and audience, a lifetime with <see cref="TokenSigningKeys.ClockSkew"/> of
/// slack, a signing key found by <c>kid</c> among the store's keys. A verified token is remembered
/// until it expires (a signature check costs more than the rest of a GET), so a client that sends
/// the same token again pays a dictionary lookup. That its minting key is still active is not
/// decided here: the caller checks it in the store on every request.
/// </summary>
public sealed class TokenVerifier
{
    /// <summary>Longer than any token Caravan issues (a hundred sources make about 1,500 characters).</summary>
    public const int MaxTokenLength = 8192;

    private const int MostRemembered = 4096;

    private static readonly JsonWebTokenHandler Handler = new();

    private readonly ConcurrentDictionary<string, TokenGrant> _verified = new(StringComparer.Ordinal);
    private readonly TokenSigningKeys _keys;
    private readonly TimeProvider _time;
    private readonly TokenValidationParameters _parameters;

    public TokenVerifier(TokenSigningKeys keys, TimeProvider time)
    {
        _keys = keys;
        _time = time;
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = TokenClaims.Issuer,
            ValidateIssuer = true,
            ValidAudience = TokenClaims.Audience,
            ValidateAudience = true,
            RequireAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            ClockSkew = TokenSigningKeys.ClockSkew,
            RequireSignedTokens = true,
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            ValidTypes = [JwtConstants.HeaderType],
            TryAllIssuerSigningKeys = false,
            IssuerSigningKeyResolver = (_, _, kid, _) => kid is not null && keys.Find(kid) is { } key ? [key] : [],

            // Nothing of a token reaches a log or an exception kept with the result.
            LogValidationExceptions = false,
            LogTokenId = false,
            IncludeTokenOnFailedValidation = false,
            SaveSigninToken = false,
        };
    }

    /// <summary>What the token grants; null when it is not a valid Caravan token (the answer is then 401, whatever the reason).</summary>
    public async ValueTask<TokenGrant?> VerifyAsync(string token, CancellationToken cancellationToken)
    {
        if (_verified.TryGetValue(token, out var known))
        {
            if (_time.GetUtcNow() < known.Expires + TokenSigningKeys.ClockSkew)
            {
                return known;
            }

            _verified.TryRemove(token, out _);
            return null;
        }

        if (token.Length > MaxTokenLength)
        {
            return null;
        }

        JsonWebToken parsed;
        string kid;
        try
        {
            parsed = new JsonWebToken(token);
            kid = parsed.Kid;
        }
        catch (Exception exception) when (exception is ArgumentException or SecurityTokenException or FormatException)
        {
            return null;
        }

        if (string.IsNullOrEmpty(kid))
        {
            return null;
        }

        if (_keys.Find(kid) is null)
        {
            // A key made since this replica last looked (rate-limited, so made-up kids cost little).
            await _keys.RefreshAsync(cancellationToken);
        }

        var result = await Handler.ValidateTokenAsync(parsed, _parameters);
        if (!result.IsValid || Read(parsed) is not { } grant)
        {
            return null;
        }

        Remember(token, grant);
        return grant;
    }

    /// <summary>The grant of a token whose signature checked out; null when its claims are not those Caravan writes.</summary>
    private static TokenGrant? Read(JsonWebToken token)
    {
        if (!token.TryGetPayloadValue<string>(TokenClaims.Subject, out var uid) || !TokenRequest.IsValidUid(uid)
            || !token.TryGetPayloadValue<string>(TokenClaims.Organization, out var organization) || string.IsNullOrEmpty(organization)
            || !token.TryGetPayloadValue<string>(TokenClaims.KeyId, out var keyId) || string.IsNullOrEmpty(keyId)
            || !token.TryGetPayloadValue<string>(TokenClaims.Scope, out var scopeText)
            || !token.TryGetPayloadValue<string>(TokenClaims.TokenId, out _))
        {
            return null;
        }

        TokenScope? scope = null;
        foreach (var name in scopeText.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (TokenClaims.Parse(name) is not { } one)
            {
                return null;
            }

            scope = scope is { } other && other > one ? other : one;
        }

        List<long>? sources = null;
        if (token.TryGetPayloadValue<long[]>(TokenClaims.Sources, out var ids))
        {
            if (ids is null || ids.Length is 0 or > TokenGrant.MaxSources || ids.Any(id => id < 1))
            {
                return null;
            }

            sources = [.. ids];
        }
        else if (token.TryGetPayloadValue<object>(TokenClaims.Sources, out _))
        {
            return null;
        }

        return scope is null ? null : new TokenGrant(uid, organization, keyId, scope.Value, sources, new DateTimeOffset(token.ValidTo, TimeSpan.Zero));
    }

    private void Remember(string token, TokenGrant grant)
    {
        if (_verified.Count >= MostRemembered)
        {
            var now = _time.GetUtcNow();
            foreach (var (remembered, granted) in _verified)
            {
                if (now >= granted.Expires + TokenSigningKeys.ClockSkew)
                {
                    _verified.TryRemove(remembered, out _);
                }
            }

            if (_verified.Count >= MostRemembered)
            {
                return;
            }
        }

        _verified[token] = grant;
    }
}
