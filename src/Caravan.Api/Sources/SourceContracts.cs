using System.Text.Json.Serialization;

namespace Caravan.Api.Sources;

/// <summary>The camelAI <c>Connection</c> object. It has no path to any credential or connection detail.</summary>
public sealed record ConnectionResponse(
    long Id,
    string AccountName,
    string Type,
    DateTimeOffset CreatedAt,
    bool IsFullyConfigured);

public sealed record ConnectionPage(long Count, string? Next, string? Previous, IReadOnlyList<ConnectionResponse> Results);

public sealed record CreatedResponse(
    long Id,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? PublicKeySql);

public sealed record UpdateConfigResponse(long Id, string AccountName, string Type);
