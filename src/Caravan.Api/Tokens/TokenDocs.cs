using Caravan.Api.Hosting;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Caravan.Api.Tokens;

/// <summary>
/// The tokens' part of the OpenAPI document. Declared by the routes where they are mapped: the STS
/// and JWKS routes' bodies and answers in camelAI's shapes (<see cref="DescribeMint"/>,
/// <see cref="DescribeJwks"/>), and on every route that takes an API key whether a token may call it
/// (<c>AllowTokens</c>: the token scheme among its requirements) or gets a 403 (<c>RequireApiKey</c>).
/// The document transformer <see cref="Describe"/> adds what belongs to the document: the token
/// security scheme, the schemas, the key set's path without a slash and the tag order.
/// </summary>
internal static class TokenDocs
{
    public const string TokenAuth = "StsTokenAuth";

    /// <summary>The OpenAPI tag of the token and key-set routes.</summary>
    public const string Tag = "STS";

    private const string Json = "application/json";
    private const string TokenRequestSchema = "STSTokenRequestRequest";
    private const string TokenResponseSchema = "STSTokenResponse";
    private const string StsError = "STSError";
    private const string JwksSchema = "JWKS";

    public static Task Describe(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        // The key set's path names a file, as camelAI publishes it: no slash after it.
        if (document.Paths.Remove(TokensApi.JwksRoute + "/", out var jwks))
        {
            document.Paths[TokensApi.JwksRoute] = jwks;
        }

        // The generator lists tags in path order, where the key set's path sorts first; Scalar shows
        // the groups in that order and opens the first. The tokens' group goes after the sources'.
        if (document.Tags?.FirstOrDefault(t => t.Name == Tag) is { } tokens)
        {
            document.Tags = new HashSet<OpenApiTag>(document.Tags.Where(t => t != tokens).Append(tokens));
        }

        document.AddComponent(TokenAuth, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = "A token from POST /api/v1/token, sent as `Authorization: Bearer <token>`: an ES256 JWT (issuer `caravan`, "
                + "audience `caravan-api`) that acts for the API key that minted it, limited to its sources, its scope (`read` or `query`) "
                + "and its end user (`uid`), for at most 15 minutes. Its signature verifies with the keys at /api/v1/.well-known/jwks.json.",
        });
        foreach (var (name, schema) in Schemas(document))
        {
            document.AddComponent(name, schema);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Of every route that takes an API key (<c>RequireApiKey</c> declares it): the 403 a token gets
    /// where tokens may not go. A route open to tokens says more (<see cref="DescribeOpen"/>).
    /// </summary>
    public static void DescribeClosed(OpenApiOperation operation, OpenApiDocument document) =>
        operation.Responses!["403"] = ApiOperations.JsonResponse(
            "Sent with a token: tokens may not use this route (`This token does not allow this action.`); nothing was changed.", ApiDocs.Detail, document);

    /// <summary>Of a route open to tokens of <paramref name="scope"/>: the token scheme among its requirements, and the 403 of a narrower token.</summary>
    public static void DescribeOpen(TokenScope scope, OpenApiOperation operation, OpenApiDocument document)
    {
        operation.Security?.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(TokenAuth, document)] = [] });
        operation.Responses!["403"] = ApiOperations.JsonResponse(
            $"Sent with a token whose scope does not cover this route (it needs `{TokenClaims.Name(scope)}`): `This token does not allow this action.`",
            ApiDocs.Detail,
            document);
    }

    /// <summary>The token route's body, answers (camelAI's STS shapes) and security.</summary>
    public static void DescribeMint(OpenApiOperation operation, OpenApiDocument document)
    {
        operation.Description = "Exchanges the API key for a short-lived token (60–900 seconds) that a browser or an agent carries instead: "
            + "it lists and reads the sources it names (all of the organization's without `srcs`), their schemas, and with scope `query` runs "
            + "queries on them for its `uid` (handed to the database for row-level security). Every camelAI body version is accepted. "
            + "A token cannot mint tokens. Errors use camelAI's STS shape `{\"error\": \"...\"}`.";
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType> { [Json] = new() { Schema = new OpenApiSchemaReference(TokenRequestSchema, document) } },
        };
        var issued = JsonResponse("The token.", TokenResponseSchema, document);
        issued.Headers = new Dictionary<string, IOpenApiHeader>
        {
            ["Cache-Control"] = new OpenApiHeader { Description = "Always `no-store`.", Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
        };
        var throttled = JsonResponse("The API key's rate limit is exhausted; retry after `Retry-After` seconds.", StsError, document);
        throttled.Headers = new Dictionary<string, IOpenApiHeader>
        {
            ["Retry-After"] = new OpenApiHeader
            {
                Description = "Whole seconds until a request would be accepted.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" },
            },
        };
        operation.Responses = new OpenApiResponses
        {
            ["200"] = issued,
            ["400"] = JsonResponse("The body is not valid (every problem, one line, each naming its field), or `srcs` names an id that is "
                + "not a live source of the key's organization (the same words whether it exists elsewhere or not).", StsError, document),
            ["401"] = JsonResponse("No API key, or an invalid or revoked one.", StsError, document),
            ["403"] = JsonResponse("Sent with a token: a token cannot mint tokens.", StsError, document),
            ["413"] = JsonResponse("The body is larger than the server accepts.", StsError, document),
            ["415"] = JsonResponse("The body is not sent as application/json.", StsError, document),
            ["429"] = throttled,
        };
        operation.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiDocs.BearerAuth, document)] = [] },
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiDocs.ApiKeyAuth, document)] = [] },
        ];
    }

    /// <summary>The key set's answers; no security.</summary>
    public static void DescribeJwks(OpenApiOperation operation, OpenApiDocument document)
    {
        operation.Description = "The public keys that verify tokens, as a JSON Web Key Set; no credentials needed. It lists the key that "
            + "signs new tokens and every retired key until the last token it signed expired (up to 930 seconds after the rotation).";
        operation.Responses = new OpenApiResponses
        {
            ["200"] = JsonResponse("The key set.", JwksSchema, document),
        };
        operation.Security = null;
    }

    private static IEnumerable<(string Name, OpenApiSchema Schema)> Schemas(OpenApiDocument document)
    {
        var sourceId = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, Description = "A source id (an integer is accepted too)." };
        var ignored = "Accepted for camelAI's clients and ignored: Caravan has no threads or knowledge base.";
        yield return (TokenRequestSchema, new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "Every camelAI version of the body: `uid` or its older name `sub`, `srcs` or the older single `src`. Other fields are refused.",
            AdditionalPropertiesAllowed = false,
            Required = new HashSet<string>(["uid"]),
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["uid"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    MinLength = 1,
                    MaxLength = TokenRequest.MaxUidLength,
                    Description = "The end user the token speaks for: the query route and run_query hand it to the database for row-level "
                        + "security (PostgreSQL: `caravan.uid`), and a request `uid` that differs is refused.",
                },
                ["sub"] = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = TokenRequest.MaxUidLength, Deprecated = true, Description = "The older name of `uid`; send one of them." },
                ["scopes"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Array,
                    MinItems = 1,
                    Items = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("query"), JsonValue.Create("read")] },
                    Default = new JsonArray("query"),
                    Description = "`query`: list and read the token's sources, their schemas, the query route and the /mcp tools on them; "
                        + "`read` (extension): the same without queries.",
                },
                ["ttl"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Integer,
                    Minimum = TokenRequest.MinTtl.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Maximum = ((int)TokenSigningKeys.MaxLifetime.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Default = JsonValue.Create(TokenRequest.DefaultTtl),
                    Description = "Lifetime in seconds.",
                },
                ["srcs"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Array,
                    MinItems = 1,
                    MaxItems = TokenGrant.MaxSources,
                    Items = sourceId,
                    Description = "The sources the token may see, live sources of the key's organization; absent: every source of the "
                        + "organization at the time of each request.",
                },
                ["src"] = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, Deprecated = true, Description = "One source id: the older form of `srcs`." },
                ["tid"] = new OpenApiSchema { Type = JsonSchemaType.String, Deprecated = true, Description = ignored },
                ["thread_id"] = new OpenApiSchema { Type = JsonSchemaType.String, Deprecated = true, Description = ignored },
                ["knowledge_base_entries"] = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String }, Description = ignored },
                ["reference_queries"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Array,
                    Items = new OpenApiSchema { Type = JsonSchemaType.Object, AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.String } },
                    Description = ignored,
                },
            },
        });

        yield return (TokenResponseSchema, Object(
            ("access_token", new OpenApiSchema { Type = JsonSchemaType.String, Description = "The token (a JWT): send it as `Authorization: Bearer <token>`." }),
            ("token_type", new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("bearer")], Description = "Always `bearer`." }),
            ("expires_in", new OpenApiSchema { Type = JsonSchemaType.Integer, Description = "Lifetime in seconds (the request's `ttl`)." })));

        yield return (StsError, Object(("error", new OpenApiSchema { Type = JsonSchemaType.String, Description = "What went wrong." })));

        var key = Object(
            ("kty", new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("EC")] }),
            ("crv", new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("P-256")] }),
            ("x", new OpenApiSchema { Type = JsonSchemaType.String, Description = "base64url" }),
            ("y", new OpenApiSchema { Type = JsonSchemaType.String, Description = "base64url" }),
            ("kid", new OpenApiSchema { Type = JsonSchemaType.String, Description = "The `kid` in the header of the tokens it signed." }),
            ("use", new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("sig")] }),
            ("alg", new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create("ES256")] }));
        key.Description = "A public key (JWK, RFC 7517).";
        yield return (JwksSchema, Object(("keys", new OpenApiSchema { Type = JsonSchemaType.Array, Items = key })));
    }

    private static OpenApiSchema Object(params (string Name, IOpenApiSchema Schema)[] properties) => new()
    {
        Type = JsonSchemaType.Object,
        Properties = properties.ToDictionary(p => p.Name, p => p.Schema),
        Required = properties.Select(p => p.Name).ToHashSet(),
    };

    private static OpenApiResponse JsonResponse(string description, string schema, OpenApiDocument document) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType> { [Json] = new() { Schema = new OpenApiSchemaReference(schema, document) } },
    };
}
