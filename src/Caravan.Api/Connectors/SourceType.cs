using System.Text.Json.Nodes;
using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors;

/// <summary>
/// A connection type (POSTGRES, MYSQL, ...): its fields, the rules that tie them together, and
/// everything else that differs by type and that the shared code asks for (where it connects,
/// what its schemas are called, which parts of its secrets are secret). Each type lives in its
/// family's folder under <c>Connectors/</c> with its driver and query engine; <see cref="SourceTypes"/>
/// finds them, so adding a type is adding a folder.
/// </summary>
public abstract class SourceType
{
    /// <summary>The upper-case type name on the wire.</summary>
    public abstract string Name { get; }

    /// <summary>The name people know it by, also the default <c>account_name</c>.</summary>
    public abstract string DisplayName { get; }

    /// <summary>The slug of <c>POST /api/v1/sources/add/&lt;slug&gt;/</c>; null for a type without one.</summary>
    public virtual string? AddRoute => Name.ToLowerInvariant();

    /// <summary>Position in listings, documentation and the OpenAPI document.</summary>
    public abstract int Order { get; }

    public abstract IReadOnlyList<Field> Fields { get; }

    /// <summary>The fields as stored: the top-level ones, with each group replaced by its members (<c>ssh_tunnel.host</c>, ...).</summary>
    public IReadOnlyList<Field> StoredFields => field ??= [.. Fields.SelectMany(f => f.Kind == FieldKind.Group ? f.Members : [f])];

    /// <summary>
    /// The rules of every group (<see cref="FieldKind.Group"/>) the configuration holds after
    /// <paramref name="change"/>: its required members, then the group's own rule. Run by every
    /// write after <see cref="Check"/>, whatever the type.
    /// </summary>
    public void CheckGroups(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        foreach (var group in Fields.Where(f => f.Kind == FieldKind.Group))
        {
            var members = new GroupChange(group, change, stored);
            if (!members.Present)
            {
                continue;
            }

            foreach (var member in group.Members.Where(m => m.Required && !members.Has(m.MemberName) && !errors.Has(m.Name)))
            {
                errors.Add(member.Name, change.Sent.Contains(member.Name) || stored?.Has(member.Name) == true
                    ? $"This field is required for {group.Name}."
                    : "This field is required.");
            }

            group.GroupRule?.Invoke(members, errors);
        }
    }

    public Field? FindField(string name)
    {
        foreach (var field in Fields)
        {
            if (field.Name == name)
            {
                return field;
            }
        }

        return null;
    }

    /// <summary>
    /// The first rule of a type with two forms, a connection string in <paramref name="field"/> or
    /// the fields <paramref name="parts"/>: sending both is refused, and a connection string refused
    /// on its own (blank, not text, a placeholder) says all there is. True when the type's check
    /// stops here.
    /// </summary>
    protected static bool StopsAtConnectionString(SourceChange change, string field, IEnumerable<string> parts, ValidationErrors errors)
    {
        if (!change.Sent.Contains(field))
        {
            return false;
        }

        var sentParts = parts.Where(change.Sent.Contains).ToList();
        if (sentParts.Count > 0)
        {
            errors.Add(ValidationErrors.NonField, $"Send either {field} or the individual fields ({string.Join(", ", sentParts)}), not both.");
            return true;
        }

        return !change.Gives(field);
    }

    /// <summary>
    /// Rules across fields, run after every field was checked on its own. <paramref name="stored"/>
    /// is null on a create. A type may rewrite <paramref name="change"/> here, e.g. to split a
    /// connection string into its parts. The default: on create every required field is present;
    /// on update no required field is cleared.
    /// </summary>
    public virtual void Check(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        if (change.Mode == ChangeMode.Create)
        {
            RequireOnCreate(change, errors, Fields.Where(f => f.Required).Select(f => f.Name));
        }
        else if (stored is not null)
        {
            RefuseClearing(change, errors, Fields.Where(f => f.Required).Select(f => f.Name));
        }
    }

    /// <summary>Work a create needs after validation; returns the <c>public_key_sql</c> to answer, if any.</summary>
    public virtual string? PrepareCreate(SourceChange change, ValidationErrors errors) => null;

    /// <summary>True when the stored configuration holds everything the type needs to connect.</summary>
    public virtual bool IsFullyConfigured(ConfigView config) => Fields.Where(f => f.Required).All(f => config.Has(f.Name));

    /// <summary>
    /// Whether <see cref="IsFullyConfigured"/> decides <c>is_fully_configured</c> on every write; false
    /// for a type whose readiness is recorded by work of its own (a FILE source is ready when its
    /// files are converted), which writes of its configuration then leave as they found it.
    /// </summary>
    public virtual bool ReadinessFromFields => true;

    /// <summary>
    /// Whether a source that is not fully configured is still queried (and its schemas listed to
    /// MCP): false by default, where it has nothing to connect with; true for a type that serves
    /// what is ready while the rest is on its way (a FILE source answers from its converted files,
    /// a replaced file's old table included, while others convert), whose engine refuses when nothing is.
    /// </summary>
    public virtual bool ServesWhileIncomplete => false;

    /// <summary>The secrets the config readback lists, set or not: by default every secret field.</summary>
    public virtual IEnumerable<string> StoredSecrets => Fields.Where(f => f.IsSecret).Select(f => f.Name);

    /// <summary>
    /// The text of a stored secret that must appear in no message, whole or in part (see
    /// <see cref="Connectivity.SecretScrubber"/>): by default the value itself, or the body of a PEM
    /// key, whose BEGIN and END lines are no secret. A type whose secret is a document (a
    /// connection string, a key file, a set of options) overrides this to name the parts that are
    /// secret, so that the rest (host names, field names) is not masked wherever it appears.
    /// </summary>
    public virtual IEnumerable<string> SecretParts(string field, string value) =>
        [value.TrimStart().StartsWith("-----BEGIN ", StringComparison.Ordinal) && Field.PemBody(value) is { Length: > 0 } body ? body : value];

    /// <summary>Non-secret settings the config readback shows besides the fields, such as connection-string options.</summary>
    public virtual IEnumerable<string> ExtraSettings => [];

    /// <summary>
    /// The alternative sets of fields a create may use (a connection string, or the individual
    /// fields), for forms; empty when the type has one set. Fields in no form belong to every form.
    /// </summary>
    public virtual IReadOnlyList<FieldForm> Forms => [];

    /// <summary>Fields whose absence on create makes Caravan generate a key pair (Snowflake); empty otherwise.</summary>
    public virtual IReadOnlyList<string> KeyPairUnless => [];

    /// <summary>What the type's schemas are called (discovery, MCP, messages): schemas, databases or datasets.</summary>
    public virtual string SchemaKind => "schemas";

    /// <summary>The field that lists the schemas to include (<c>selected_schemas</c>, <c>selected_datasets</c>), if the type has one.</summary>
    public Field? SelectionField => Fields.FirstOrDefault(f => f.Kind == FieldKind.NameList);

    /// <summary>
    /// Whether an empty or absent selection offers everything, so discovery marks every entry
    /// selected (an MCP source's tools); false where it means "no choice made" (schemas).
    /// </summary>
    public virtual bool OffersAllWhenNoneSelected => false;

    /// <summary>What messages call the server a source of this type is: a database, unless it is something else.</summary>
    public virtual string ServerNoun => "database";

    /// <summary>The field that names the host Caravan connects to, if the type has one.</summary>
    public Field? HostField => Fields.FirstOrDefault(f => f.Kind == FieldKind.Host);

    /// <summary>
    /// How sources of this type are created when not from their fields (FILE: from files), said to
    /// a create route that takes fields only; null for a type created from its fields.
    /// </summary>
    public virtual string? CreatedElsewhere => null;

    /// <summary>Why sources of this type take no SQL, for a type without a query engine; null when it has one.</summary>
    public virtual string? QueryUnsupported => null;

    /// <summary>
    /// What the rebind guard asks for when a change of <paramref name="destination"/> would keep the
    /// stored <paramref name="secret"/>: the field to send again and the message. By default, the secret itself.
    /// </summary>
    public virtual (string Field, string Message) Resend(string destination, string secret) =>
        (secret, $"Changing {destination} requires sending {secret} again.");

    /// <summary>
    /// The settings Caravan will use, as the config readback shows them: the stored ones, with each
    /// field's default filled in where the source has none (a port left out is the type's port).
    /// </summary>
    public virtual JsonObject Effective(JsonObject settings)
    {
        var effective = (JsonObject)settings.DeepClone();
        foreach (var field in StoredFields)
        {
            // A group's defaults (the tunnel's port 22) are in force only where the group is.
            if (field.Group is { } group && !settings.Any(s => s.Key.StartsWith(group + ".", StringComparison.Ordinal)))
            {
                continue;
            }

            if (field.Default is int number && effective[field.Name] is null)
            {
                effective[field.Name] = number;
            }
        }

        return effective;
    }

    protected static void RequireOnCreate(SourceChange change, ValidationErrors errors, IEnumerable<string> fields)
    {
        foreach (var field in fields)
        {
            if (!change.Gives(field) && !errors.Has(field))
            {
                errors.Add(field, "This field is required.");
            }
        }
    }

    protected void RefuseClearing(SourceChange change, ValidationErrors errors, IEnumerable<string> fields)
    {
        foreach (var field in fields)
        {
            if (change.Clears(field))
            {
                errors.Add(field, $"This field is required for {Name} sources.");
            }
        }
    }
}

/// <summary>One way to fill in a type's connection: the fields it takes and which of them it needs.</summary>
public sealed record FieldForm(string Name, string Label, IReadOnlyList<string> Fields, IReadOnlyList<string> Required);

public enum ChangeMode
{
    /// <summary>A create: the type's required fields must all be there.</summary>
    Create,

    /// <summary>The legacy <c>/add/</c> route: fields are checked, none is required.</summary>
    LegacyCreate,

    /// <summary>update-config: fields are merged into the stored configuration.</summary>
    Update,
}

/// <summary>
/// What one request asks to change: new values of settings and secrets, where null means clear.
/// Secrets are plain text only here, in memory, on their way to encryption.
/// </summary>
public sealed class SourceChange(ChangeMode mode)
{
    public ChangeMode Mode => mode;

    public Dictionary<string, JsonNode?> Settings { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string?> Secrets { get; } = new(StringComparer.Ordinal);

    /// <summary>Every field the client sent, valid or not, before any rewriting by the type.</summary>
    public HashSet<string> Sent { get; } = new(StringComparer.Ordinal);

    public bool Gives(string field) => Settings.ContainsKey(field) || Secrets.ContainsKey(field);

    public bool Clears(string field) =>
        (Settings.TryGetValue(field, out var setting) && setting is null)
        || (Secrets.TryGetValue(field, out var secret) && secret is null);

    public void Set(string field, JsonNode? value)
    {
        Secrets.Remove(field);
        Settings[field] = value;
    }

    public void SetSecret(string field, string? value)
    {
        Settings.Remove(field);
        Secrets[field] = value;
    }

    public void Remove(string field)
    {
        Settings.Remove(field);
        Secrets.Remove(field);
    }
}

/// <summary>
/// A read-only view of a source's configuration: settings by value, secrets by presence, and a
/// secret's value only when a rule really needs it (decrypted on demand).
/// </summary>
public sealed class ConfigView(JsonObject settings, IReadOnlySet<string> secretNames, Func<string, string?> revealSecret)
{
    public JsonObject Settings => settings;

    public IReadOnlySet<string> SecretNames => secretNames;

    public bool Has(string field) => secretNames.Contains(field) || (settings.TryGetPropertyValue(field, out var value) && value is not null);

    public string? Text(string field) =>
        settings.TryGetPropertyValue(field, out var value) && value is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;

    public int? Number(string field) =>
        settings.TryGetPropertyValue(field, out var value) && value is JsonValue v && v.TryGetValue<int>(out var number) ? number : null;

    public string? RevealSecret(string field) => secretNames.Contains(field) ? revealSecret(field) : null;
}

/// <summary>
/// A group's members as they will be once a change is merged into the stored configuration
/// (<paramref name="stored"/> is null on a create): what a group's rules look at. Members are
/// named by their name within the group.
/// </summary>
public sealed class GroupChange(Field group, SourceChange change, ConfigView? stored)
{
    public Field Group => group;

    public SourceChange Change => change;

    /// <summary>The stored (and error) name of a member: <c>ssh_tunnel.host</c> for <c>host</c>.</summary>
    public string Key(string member) => $"{group.Name}.{member}";

    /// <summary>Whether the request gives or clears the member.</summary>
    public bool Sent(string member) => change.Gives(Key(member));

    public bool Has(string member) => change.Gives(Key(member)) ? !change.Clears(Key(member)) : stored?.Has(Key(member)) == true;

    /// <summary>Whether any member is held after the merge: the group is there.</summary>
    public bool Present => group.Members.Any(m => Has(m.MemberName));

    public string? Text(string member) => change.Settings.TryGetValue(Key(member), out var value)
        ? value is JsonValue v && v.TryGetValue<string>(out var text) ? text : null
        : stored?.Text(Key(member));

    /// <summary>A secret member's value after the merge, decrypted only when it is the stored one.</summary>
    public string? Secret(string member) => change.Secrets.TryGetValue(Key(member), out var value) ? value : stored?.RevealSecret(Key(member));
}

/// <summary>Every connection type this build knows, found once by reflection over the classes of <c>Connectors/</c>.</summary>
public static class SourceTypes
{
    // Reflection instead of a hand-kept list so that a new type file is the only edit a new type needs.
    public static IReadOnlyList<SourceType> All { get; } = [.. typeof(SourceType).Assembly.GetTypes()
        .Where(t => t.IsSubclassOf(typeof(SourceType)) && !t.IsAbstract && t.GetConstructor(Type.EmptyTypes) is not null)
        .Select(t => (SourceType)Activator.CreateInstance(t)!)
        .OrderBy(t => t.Order)];

    private static readonly Dictionary<string, SourceType> ByName = All.ToDictionary(t => t.Name, StringComparer.OrdinalIgnoreCase);

    public static SourceType? Find(string? name) => name is not null && ByName.TryGetValue(name, out var type) ? type : null;

    /// <summary>The one instance of <typeparamref name="T"/>, for a family's driver and engine to name the types they serve.</summary>
    public static T Get<T>()
        where T : SourceType => All.OfType<T>().Single(t => t.GetType() == typeof(T));
}
