using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Secrets;
using Caravan.Api.Connectors;

namespace Caravan.Api.Sources;

/// <summary>
/// The configuration of a source as stored: its non-secret fields by value and its secrets by
/// state only. There is no property through which a secret value could leave.
/// </summary>
public sealed record SourceConfigResponse(
    long Id,
    string Type,
    string AccountName,
    long Version,
    JsonObject Config,
    JsonObject Secrets);

/// <summary>Whether a secret is held, since when, and a fingerprint that changes when (and only when) it does.</summary>
public sealed record SecretState(
    bool Set,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTimeOffset? UpdatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Fingerprint)
{
    public static SecretState Unset { get; } = new(false, null, null);
}

/// <summary><c>GET /api/v1/sources/{id}/config/</c> (contract section 8).</summary>
public static class SourceConfigApi
{
    public static async Task<IResult> Read(
        string id, HttpContext context, SourceConnections sources, SecretProtector protector, ServerKeys serverKeys, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId
            || await sources.FindAsync(context.Caller(), sourceId, cancellationToken) is not { } row
            || SourceTypes.Find(row.Type) is not { } type)
        {
            return ApiResults.NotFound();
        }

        ReadOnlyMemory<byte>? key = null;
        async Task<JsonNode> StateOf(string name)
        {
            if (!row.Secrets.TryGetValue(name, out var entry))
            {
                return Serialized(SecretState.Unset);
            }

            // Computed from the decrypted value, so secrets stored before fingerprints existed have one too.
            key ??= await serverKeys.FingerprintKeyAsync(cancellationToken);
            var value = protector.Unprotect(row.Id, name, entry.ToStoredSecret());
            return Serialized(new SecretState(
                true, DbCommandExtensions.ToTime(entry.UpdatedAt), SecretFingerprint.Compute(key.Value.Span, row.Id, name, value)));
        }

        var secrets = new JsonObject();
        foreach (var name in type.StoredSecrets)
        {
            secrets[name] = await StateOf(name);
        }

        // A group's secrets are listed under the group, by their names in it, where the source has the group.
        foreach (var group in type.Fields.Where(f => f.Kind == FieldKind.Group && f.Members.Any(m => m.IsSecret) && HasGroup(f, row)))
        {
            var states = new JsonObject();
            foreach (var member in group.Members.Where(m => m.IsSecret))
            {
                states[member.MemberName] = await StateOf(member.Name);
            }

            secrets[group.Name] = states;
        }

        var config = Settings(type, row, time.GetUtcNow());
        foreach (var holdings in context.RequestServices.GetServices<ISourceHoldings>().Where(h => h.Type == type))
        {
            await holdings.DescribeAsync(row.Id, config, cancellationToken);
        }

        context.Response.Headers.ETag = EntityTags.For(row);

        // Host names and user names are not for shared caches either.
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(
            new SourceConfigResponse(row.Id, row.Type, row.AccountName, row.Version, config, secrets),
            ApiJson.Context.SourceConfigResponse);
    }

    private static JsonNode Serialized(SecretState state) => JsonSerializer.SerializeToNode(state, ApiJson.Context.SecretState)!;

    /// <summary>
    /// Every non-secret field of the type with the value Caravan will use (the type's default where
    /// none is stored, such as a port left out), null when there is none, plus the type's extra
    /// settings. Internal bookkeeping settings are not shown. A group is an object of its
    /// non-secret members, or null when the source has none of it; certificates are described
    /// (subject, issuer, <c>not_after</c>, <c>expires_soon</c>), not repeated.
    /// </summary>
    private static JsonObject Settings(SourceType type, SourceRow row, DateTimeOffset now)
    {
        var effective = type.Effective(row.Settings);
        var config = new JsonObject();
        foreach (var field in type.Fields.Where(f => !f.IsSecret))
        {
            config[field.Name] = field.Kind == FieldKind.Group ? Group(field, row, effective, now) : effective[field.Name]?.DeepClone();
        }

        foreach (var name in type.ExtraSettings)
        {
            config[name] = effective[name]?.DeepClone();
        }

        return config;
    }

    private static bool HasGroup(Field group, SourceRow row) => group.Members.Any(m => row.Secrets.ContainsKey(m.Name) || row.Settings[m.Name] is not null);

    private static JsonObject? Group(Field group, SourceRow row, JsonObject effective, DateTimeOffset now)
    {
        if (!HasGroup(group, row))
        {
            return null;
        }

        var members = new JsonObject();
        foreach (var member in group.Members.Where(m => !m.IsSecret))
        {
            members[member.MemberName] = member.Kind == FieldKind.Certificate && effective[member.Name]?.GetValue<string>() is { } pem
                ? TlsCertificates.Describe(pem, now)
                : effective[member.Name]?.DeepClone();
        }

        return members;
    }
}
