using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Connectors;
using Caravan.Api.Data;
using Caravan.Api.Secrets;

namespace Caravan.Api.Sources;

/// <summary>
/// Reads of stored sources for the features that use them (tests, discovery, queries, MCP, the
/// config view): the organization's row, and its configuration with the secrets decrypted. Writes
/// go through <see cref="SourceWriter"/>.
/// </summary>
public sealed class SourceConnections(Database database, SecretProtector protector)
{
    /// <summary>The organization's live source, or null.</summary>
    public async Task<SourceRow?> FindAsync(Caller caller, long id, CancellationToken cancellationToken)
    {
        // A token's caller sees only the token's sources; any other is not found, as if it did not exist.
        if (caller.Token?.Sees(id) == false)
        {
            return null;
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        return await SourceRows.FindAsync(database, connection, caller.OrganizationId, id, null, cancellationToken);
    }

    /// <summary>The organization's live source as stored (settings and secrets as their JSON text).</summary>
    public async Task<StoredSource?> FindStoredAsync(Caller caller, long id, CancellationToken cancellationToken)
    {
        if (caller.Token?.Sees(id) == false)
        {
            return null;
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        return await SourceRows.FindStoredAsync(connection, caller.OrganizationId, id, cancellationToken);
    }

    /// <summary>The stored configuration of a source, secrets decrypted, for a test, discovery or query.</summary>
    public async Task<SourceConnection?> ConnectionAsync(Caller caller, long id, CancellationToken cancellationToken)
    {
        var stored = await FindAsync(caller, id, cancellationToken);
        return stored is null ? null : Connect(stored);
    }

    /// <summary>The configuration of a stored source, secrets decrypted.</summary>
    public SourceConnection Connect(SourceRow row) => new(SourceTypes.Find(row.Type)!, row.Settings, Reveal(row.Id, row.Secrets)) { SourceId = row.Id };

    /// <summary>
    /// The configuration of a source as stored, secrets decrypted. The settings are read through
    /// once here, so the connection can be shared by concurrent readers (a parsed JSON object
    /// builds its members on first use).
    /// </summary>
    public SourceConnection Connect(StoredSource source)
    {
        var settings = JsonNode.Parse(source.Settings)!.AsObject();
        Materialize(settings);
        return new SourceConnection(SourceTypes.Find(source.Type)!, settings, Reveal(source.Id, SourceRows.ReadSecrets(source.Secrets)))
        {
            SourceId = source.Id,
        };
    }

    /// <summary>An unsaved configuration, checked as a create would check it.</summary>
    public static SourceConnection Unsaved(SourceType type, SourceChange change) =>
        new(type,
            SourceBodies.MergeSettings([], change),
            change.Secrets.Where(s => s.Value is not null).ToDictionary(s => s.Key, s => s.Value!, StringComparer.Ordinal));

    /// <summary>
    /// A stored source with <paramref name="change"/> merged in memory, secrets decrypted: what an
    /// update would store, for checks that need the network and must not hold the row.
    /// </summary>
    public SourceConnection Merged(SourceType type, SourceRow stored, SourceChange change)
    {
        var secrets = Reveal(stored.Id, stored.Secrets);
        foreach (var (field, value) in change.Secrets)
        {
            if (value is null)
            {
                secrets.Remove(field);
            }
            else
            {
                secrets[field] = value;
            }
        }

        return new SourceConnection(type, SourceBodies.MergeSettings(stored.Settings, change), secrets) { SourceId = stored.Id };
    }

    /// <summary>A view of a stored source whose secrets are decrypted only if a rule asks for one.</summary>
    public ConfigView View(SourceRow row) =>
        new(row.Settings, row.Secrets.Keys.ToHashSet(StringComparer.Ordinal),
            field => protector.Unprotect(row.Id, field, row.Secrets[field].ToStoredSecret()));

    private Dictionary<string, string> Reveal(long sourceId, IReadOnlyDictionary<string, SecretEntry> secrets) =>
        secrets.ToDictionary(s => s.Key, s => protector.Unprotect(sourceId, s.Key, s.Value.ToStoredSecret()), StringComparer.Ordinal);

    private static void Materialize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject members:
                foreach (var (_, member) in members)
                {
                    Materialize(member);
                }

                break;
            case JsonArray items:
                foreach (var item in items)
                {
                    Materialize(item);
                }

                break;
        }
    }
}
