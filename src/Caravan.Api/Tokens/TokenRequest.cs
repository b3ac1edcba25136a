using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Caravan.Api.Connectors;

namespace Caravan.Api.Tokens;

/// <summary>
/// The body of <c>POST /api/v1/token</c>, in every version camelAI's clients send (contract
/// section 9.1): <c>uid</c> or the older <c>sub</c>, <c>srcs</c> or the older single <c>src</c>,
/// <c>tid</c>/<c>thread_id</c> and the knowledge-base fields (checked for their type, then
/// ignored: Caravan has no threads or knowledge base). Every problem is collected.
/// </summary>
public sealed record TokenRequest(string Uid, TokenScope Scope, int Ttl, IReadOnlyList<long>? Sources, string SourcesField)
{
    public const int MaxUidLength = 255;
    public const int MinTtl = 60;
    public const int DefaultTtl = 900;

    private static readonly HashSet<string> Known = new(
        ["uid", "sub", "scopes", "ttl", "srcs", "src", "tid", "thread_id", "knowledge_base_entries", "reference_queries"],
        StringComparer.Ordinal);

    /// <summary>A uid a token may carry: 1–255 characters, not only spaces, no null character (which no database takes).</summary>
    public static bool IsValidUid(string? uid) => UidProblem(uid) is null;

    /// <summary>
    /// Reads a body, collecting its problems in <paramref name="errors"/>; the request holds what could
    /// be read, so that its sources can still be checked (a request is good only when there is none).
    /// </summary>
    public static TokenRequest Read(JsonObject body, ValidationErrors errors)
    {
        foreach (var (name, _) in body)
        {
            if (!Known.Contains(name))
            {
                errors.Add(SourceBodies.FieldKey(name), "Not a valid field for a token request.");
            }
        }

        var uid = ReadUid(body, errors);
        var scope = ReadScopes(body, errors);
        var ttl = ReadTtl(body, errors);
        var sources = ReadSources(body, errors);
        foreach (var name in (string[])["tid", "thread_id"])
        {
            if (body[name] is { } node && node.GetValueKind() != JsonValueKind.String)
            {
                errors.Add(name, "Not a valid string.");
            }
        }

        foreach (var name in (string[])["knowledge_base_entries", "reference_queries"])
        {
            if (body[name] is { } node and not JsonArray)
            {
                errors.Add(name, $"Expected a list of items but got type \"{Field.PythonTypeName(node)}\".");
            }
        }

        // Checked against the store by the caller, which answers on the field that was sent.
        var sourcesField = body.ContainsKey("src") ? "src" : "srcs";
        return new TokenRequest(uid ?? string.Empty, scope, ttl, sources, sourcesField);
    }

    private static string? ReadUid(JsonObject body, ValidationErrors errors)
    {
        var hasUid = body.ContainsKey("uid");
        if (hasUid && body.ContainsKey("sub"))
        {
            errors.Add("sub", "Send uid or sub (its older name), not both.");
            return null;
        }

        var field = hasUid || !body.ContainsKey("sub") ? "uid" : "sub";
        if (!body.TryGetPropertyValue(field, out var node))
        {
            errors.Add(field, "This field is required.");
            return null;
        }

        if (node is null)
        {
            errors.Add(field, "This field may not be null.");
            return null;
        }

        if (node.GetValueKind() != JsonValueKind.String)
        {
            errors.Add(field, "Not a valid string.");
            return null;
        }

        var uid = node.GetValue<string>();
        if (UidProblem(uid) is { } problem)
        {
            errors.Add(field, problem);
            return null;
        }

        return uid;
    }

    private static string? UidProblem(string? uid) =>
        string.IsNullOrWhiteSpace(uid) ? "This field may not be blank."
        : uid.Length > MaxUidLength ? $"Ensure this field has no more than {MaxUidLength} characters."
        : uid.Contains('\0', StringComparison.Ordinal) ? "Null characters are not allowed."
        : null;

    /// <summary>The widest scope asked for (<c>query</c> includes <c>read</c>); <c>["query"]</c> when absent.</summary>
    private static TokenScope ReadScopes(JsonObject body, ValidationErrors errors)
    {
        if (!body.TryGetPropertyValue("scopes", out var node))
        {
            return TokenScope.Query;
        }

        if (ListOf(node, "scopes", errors) is not { } scopes)
        {
            return TokenScope.Query;
        }

        TokenScope? widest = null;
        for (var i = 0; i < scopes.Count; i++)
        {
            var scope = scopes[i] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? TokenClaims.Parse(value.GetValue<string>()) : null;
            if (scope is null)
            {
                errors.Add("scopes", $"Item {i + 1} is not a valid scope: use \"query\" or \"read\".");
            }
            else if (widest is null || scope > widest)
            {
                widest = scope;
            }
        }

        return widest ?? TokenScope.Query;
    }

    /// <summary>Seconds, 60–900 (900 when absent); an integer, or a string of digits, as DRF takes it.</summary>
    private static int ReadTtl(JsonObject body, ValidationErrors errors)
    {
        if (!body.TryGetPropertyValue("ttl", out var node))
        {
            return DefaultTtl;
        }

        if (node is null)
        {
            errors.Add("ttl", "This field may not be null.");
            return DefaultTtl;
        }

        long? seconds = node.GetValueKind() switch
        {
            JsonValueKind.Number when node.GetValue<JsonElement>().TryGetInt64(out var whole) => whole,
            JsonValueKind.Number when node.GetValue<JsonElement>().TryGetDecimal(out var number) && number == decimal.Truncate(number) =>
                number > 0 ? long.MaxValue : long.MinValue,
            JsonValueKind.String when node.GetValue<string>().Trim() is { Length: > 0 and <= 18 } digits && digits.All(char.IsAsciiDigit) =>
                long.Parse(digits, CultureInfo.InvariantCulture),
            _ => null,
        };
        var max = (int)TokenSigningKeys.MaxLifetime.TotalSeconds;
        var problem = seconds switch
        {
            null => "A valid integer is required.",
            < MinTtl => $"Ensure this value is greater than or equal to {MinTtl}.",
            _ when seconds > max => $"Ensure this value is less than or equal to {max}.",
            _ => null,
        };
        if (problem is not null)
        {
            errors.Add("ttl", problem);
            return DefaultTtl;
        }

        return (int)seconds!.Value;
    }

    /// <summary>The ids of <c>srcs</c> (a list) or <c>src</c> (one id), each a string or an integer; null when neither is sent.</summary>
    private static List<long>? ReadSources(JsonObject body, ValidationErrors errors)
    {
        if (body.ContainsKey("srcs") && body.ContainsKey("src"))
        {
            errors.Add("src", "Send srcs or src (its older, single form), not both.");
            return null;
        }

        if (body.TryGetPropertyValue("src", out var single))
        {
            if (single is null)
            {
                errors.Add("src", "This field may not be null.");
                return null;
            }

            if (SourceId(single) is not { } id)
            {
                errors.Add("src", "Not a valid source id.");
                return null;
            }

            return [id];
        }

        if (!body.TryGetPropertyValue("srcs", out var node) || ListOf(node, "srcs", errors) is not { } items)
        {
            return null;
        }

        if (items.Count > TokenGrant.MaxSources)
        {
            errors.Add("srcs", $"Ensure this field has no more than {TokenGrant.MaxSources} elements.");
            return null;
        }

        var ids = new List<long>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            if (SourceId(items[i]) is not { } id)
            {
                errors.Add("srcs", $"Item {i + 1} is not a valid source id.");
            }
            else if (!ids.Contains(id))
            {
                ids.Add(id);
            }
        }

        return ids;
    }

    /// <summary>A source id sent as an integer or a string (camelAI's ids are strings).</summary>
    private static long? SourceId(JsonNode? node) => node?.GetValueKind() switch
    {
        JsonValueKind.Number when node.GetValue<JsonElement>().TryGetInt64(out var id) && id > 0 => id,
        JsonValueKind.String => RouteIds.Parse(node.GetValue<string>()),
        _ => null,
    };

    /// <summary>A non-empty list; null (with the error) when the value is not one.</summary>
    private static JsonArray? ListOf(JsonNode? node, string field, ValidationErrors errors)
    {
        switch (node)
        {
            case null:
                errors.Add(field, "This field may not be null.");
                return null;
            case JsonArray { Count: 0 }:
                errors.Add(field, "This list may not be empty.");
                return null;
            case JsonArray list:
                return list;
            default:
                errors.Add(field, $"Expected a list of items but got type \"{Field.PythonTypeName(node)}\".");
                return null;
        }
    }
}
