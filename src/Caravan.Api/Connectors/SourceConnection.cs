using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors;

/// <summary>
/// Everything a driver needs to reach one source: its type, its settings with defaults applied,
/// and its secrets in plain text. Lives only for one test, discovery or query, never stored.
/// </summary>
public sealed class SourceConnection(SourceType type, JsonObject settings, IReadOnlyDictionary<string, string> secrets)
{
    public SourceType Type => type;

    /// <summary>The stored source's id; null for an unsaved configuration (the test of one not yet created).</summary>
    public long? SourceId { get; init; }

    public JsonObject Settings => settings;

    public IReadOnlyDictionary<string, string> Secrets => secrets;

    public string? Text(string field) =>
        settings[field] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    /// <summary>The host Caravan connects to (the type's host field), or null for a type without one or a source without it yet.</summary>
    public string? Host => type.HostField is { } host ? Text(host.Name) : null;

    /// <summary>The settings in force: the stored ones with the type's defaults filled in (<see cref="SourceType.Effective"/>).</summary>
    public JsonObject Effective => field ??= type.Effective(settings);

    /// <summary>The stored port, else the type's default.</summary>
    public int Port => Effective["port"] is JsonValue value && value.TryGetValue<int>(out var port) ? port : 0;

    public bool? Flag(string field) => settings[field] is JsonValue value && value.TryGetValue<bool>(out var flag) ? flag : null;

    public string? Secret(string field) => secrets.TryGetValue(field, out var value) ? value : null;

    public IReadOnlyList<string> Names(string field) =>
        settings[field] is JsonArray array ? [.. array.Select(n => n!.GetValue<string>())] : [];

    /// <summary>Options kept from a connection string (sslmode, Encrypt, ...), secret ones included.</summary>
    public IReadOnlyDictionary<string, string> Options
    {
        get
        {
            var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (settings[ServerOrConnectionStringType.OptionsSetting] is JsonObject plain)
            {
                foreach (var (key, value) in plain)
                {
                    options[key] = value!.GetValue<string>();
                }
            }

            if (Secret(ServerOrConnectionStringType.SecretOptions) is { } hidden && JsonNode.Parse(hidden) is JsonObject secretOptions)
            {
                foreach (var (key, value) in secretOptions)
                {
                    options[key] = value!.GetValue<string>();
                }
            }

            return options;
        }
    }

    /// <summary>
    /// The secret text of every stored secret, for scrubbing messages: what the type says is
    /// secret in each (a password, a connection string's password and credential options, a key's
    /// body), so the harmless rest of a document can still be quoted.
    /// </summary>
    public IEnumerable<string> SecretValues() => secrets.SelectMany(secret => type.SecretParts(secret.Key, secret.Value));

    /// <summary>The scrubber of this source's secrets, made once (a prepared source keeps it for its queries).</summary>
    public SecretScrubber Scrubber => field ??= new SecretScrubber(SecretValues());
}
