using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Caravan.Api.Auth;
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
    IReadOnlyDictionary<string, SecretState> Secrets);

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
        string id, HttpContext context, SourceConnections sources, SecretProtector protector, ServerKeys serverKeys, CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId
            || await sources.FindAsync(context.Caller(), sourceId, cancellationToken) is not { } row
            || SourceTypes.Find(row.Type) is not { } type)
        {
            return ApiResults.NotFound();
        }

        var secrets = new Dictionary<string, SecretState>(StringComparer.Ordinal);
        ReadOnlyMemory<byte>? key = null;
        foreach (var name in type.StoredSecrets)
        {
            if (!row.Secrets.TryGetValue(name, out var entry))
            {
                secrets[name] = SecretState.Unset;
                continue;
            }

            // Computed from the decrypted value, so secrets stored before fingerprints existed have one too.
            key ??= await serverKeys.FingerprintKeyAsync(cancellationToken);
            var value = protector.Unprotect(row.Id, name, entry.ToStoredSecret());
            secrets[name] = new SecretState(
                true, DbCommandExtensions.ToTime(entry.UpdatedAt), SecretFingerprint.Compute(key.Value.Span, row.Id, name, value));
        }

        var config = Settings(type, row.Settings);
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

    /// <summary>
    /// Every non-secret field of the type with the value Caravan will use (the type's default where
    /// none is stored, such as a port left out), null when there is none, plus the type's extra
    /// settings. Internal bookkeeping settings are not shown.
    /// </summary>
    private static JsonObject Settings(SourceType type, JsonObject stored)
    {
        var effective = type.Effective(stored);
        var config = new JsonObject();
        foreach (var name in type.Fields.Where(f => !f.IsSecret).Select(f => f.Name).Concat(type.ExtraSettings))
        {
            config[name] = effective[name]?.DeepClone();
        }

        return config;
    }
}
