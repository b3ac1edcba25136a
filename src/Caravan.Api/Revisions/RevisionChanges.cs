using System.Text.Json.Nodes;
using Caravan.Api.Sources;
using Caravan.Api.Connectors;

namespace Caravan.Api.Revisions;

/// <summary>
/// The <c>changes</c> of a revision: what differs between two stored states of a source. A
/// non-secret field that changed is <c>{"old", "new"}</c> (null for absent); a secret is only
/// <c>"set"</c>, <c>"changed"</c> or <c>"cleared"</c>. Secrets are compared by their stored entry:
/// <see cref="SourceWriter"/> keeps the entry when a request resends the value it already holds,
/// so a different entry means a different value, and no value has to be looked at here.
/// </summary>
public static class RevisionChanges
{
    public const string Set = "set";
    public const string Changed = "changed";
    public const string Cleared = "cleared";

    /// <summary>The changes from <paramref name="before"/> (null: the source did not exist) to <paramref name="after"/>.</summary>
    public static JsonObject Between(SourceType type, SourceRow? before, SourceRow after)
    {
        var changes = new List<(string Field, JsonNode Change)>();
        if (before?.AccountName != after.AccountName)
        {
            changes.Add((SourceBodies.AccountName, OldAndNew(before?.AccountName is { } name ? JsonValue.Create(name) : null, JsonValue.Create(after.AccountName))));
        }

        var settings = (before?.Settings.Select(s => s.Key) ?? []).Union(after.Settings.Select(s => s.Key), StringComparer.Ordinal);

        // Names starting with '_' are Caravan's own bookkeeping (which form a configuration came
        // from), not fields a client sends or reads.
        foreach (var field in settings.Where(f => !f.StartsWith('_')))
        {
            var old = before?.Settings[field];
            var current = after.Settings[field];
            if (!JsonNode.DeepEquals(old, current))
            {
                changes.Add((field, OldAndNew(old?.DeepClone(), current?.DeepClone())));
            }
        }

        var secrets = (before?.Secrets.Keys ?? []).Union(after.Secrets.Keys, StringComparer.Ordinal);
        foreach (var field in secrets)
        {
            SecretEntry? old = null;
            var held = before?.Secrets.TryGetValue(field, out old) == true;
            var holds = after.Secrets.TryGetValue(field, out var current);
            var change = (held, holds) switch
            {
                (false, true) => Set,
                (true, false) => Cleared,
                (true, true) when old != current => Changed,
                _ => null,
            };
            if (change is not null)
            {
                changes.Add((field, JsonValue.Create(change)));
            }
        }

        var result = new JsonObject();
        foreach (var (field, change) in changes.OrderBy(c => Position(type, c.Field)).ThenBy(c => c.Field, StringComparer.Ordinal))
        {
            result[field] = change;
        }

        return result;
    }

    /// <summary>What a soft delete does to a source: every secret is erased, nothing else changes.</summary>
    public static JsonObject OfDelete(SourceType type, SourceRow stored) =>
        Between(type, stored, stored with { Secrets = new Dictionary<string, SecretEntry>(StringComparer.Ordinal) });

    private static JsonObject OldAndNew(JsonNode? old, JsonNode? current) => new() { ["old"] = old, ["new"] = current };

    // account_name first, then the type's fields in their documented order, then derived parts
    // (connection-string options) by name.
    private static int Position(SourceType type, string field)
    {
        if (field == SourceBodies.AccountName)
        {
            return -1;
        }

        for (var i = 0; i < type.StoredFields.Count; i++)
        {
            if (type.StoredFields[i].Name == field)
            {
                return i;
            }
        }

        return int.MaxValue;
    }
}
