using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Hosting;
using Caravan.Api.Connectors;

namespace Caravan.Api.Sources;

/// <summary>Turns request bodies into checked values, collecting every problem on the way.</summary>
internal static class SourceBodies
{
    public const string AccountName = "account_name";
    public const string TypeField = "type";

    /// <summary>Reads <c>account_name</c>: 1–255 characters once trimmed, stored trimmed.</summary>
    public static string? ReadAccountName(JsonObject body, ValidationErrors errors, bool required)
    {
        if (!body.TryGetPropertyValue(AccountName, out var node))
        {
            if (required)
            {
                errors.Add(AccountName, "This field is required.");
            }

            return null;
        }

        if (node is null)
        {
            errors.Add(AccountName, "This field may not be null.");
            return null;
        }

        if (node.GetValueKind() != JsonValueKind.String)
        {
            errors.Add(AccountName, "Not a valid string.");
            return null;
        }

        var name = node.GetValue<string>().Trim();
        if (name.Length == 0)
        {
            errors.Add(AccountName, "This field may not be blank.");
            return null;
        }

        if (name.Length > Field.MaxTextLength)
        {
            errors.Add(AccountName, $"Ensure this field has no more than {Field.MaxTextLength} characters.");
            return null;
        }

        if (name.Any(char.IsControl))
        {
            errors.Add(AccountName, "This field may not contain control characters.");
            return null;
        }

        return name;
    }

    /// <summary>Reads <c>type</c> of a create: any case, one of the known types.</summary>
    public static SourceType? ReadType(JsonObject body, ValidationErrors errors, SourceType? routeType)
    {
        if (!body.TryGetPropertyValue(TypeField, out var node))
        {
            if (routeType is null)
            {
                errors.Add(TypeField, "This field is required.");
            }

            return routeType;
        }

        var name = node?.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : null;
        if (name is null)
        {
            errors.Add(TypeField, node is null ? "This field may not be null." : "Not a valid string.");
            return null;
        }

        var type = SourceTypes.Find(name);
        if (type is null)
        {
            errors.Add(TypeField, $"\"{Field.Shorten(name)}\" is not a valid choice.");
            return null;
        }

        if (routeType is not null && type != routeType)
        {
            errors.Add(TypeField, $"Must be \"{routeType.Name}\" on this route.");
            return null;
        }

        return type;
    }

    /// <summary>
    /// Reads the type's fields from <paramref name="body"/>, skipping the names in
    /// <paramref name="handled"/>. On an update, <c>null</c> means clear; on a create it is refused.
    /// </summary>
    public static SourceChange ReadFields(SourceType type, JsonObject body, ChangeMode mode, ValidationErrors errors, params string[] handled)
    {
        var change = new SourceChange(mode);
        foreach (var (name, node) in body)
        {
            if (handled.Contains(name, StringComparer.Ordinal))
            {
                continue;
            }

            change.Sent.Add(name);
            var field = type.FindField(name);
            if (field is null)
            {
                errors.Add(FieldKey(name), $"Not a valid field for {type.Name} sources.");
            }
            else if (field.Kind == FieldKind.Group)
            {
                ReadGroup(field, node, change, errors);
            }
            else
            {
                ReadField(field, node, change, errors);
            }
        }

        return change;
    }

    /// <summary>
    /// Reads one group (<c>ssh_tunnel</c>, <c>tls</c>): an object whose members are read as fields
    /// named <c>group.member</c>, so an update merges them like top-level fields (an omitted member
    /// is kept, null clears it). Null for the whole group, on an update, removes every member.
    /// </summary>
    private static void ReadGroup(Field group, JsonNode? node, SourceChange change, ValidationErrors errors)
    {
        if (node is null)
        {
            if (change.Mode != ChangeMode.Update)
            {
                errors.Add(group.Name, "This field may not be null.");
                return;
            }

            foreach (var member in group.Members)
            {
                change.Sent.Add(member.Name);
                Clear(member, change);
            }

            return;
        }

        if (node is not JsonObject members)
        {
            errors.Add(group.Name, $"Invalid data. Expected a dictionary, but got {Field.PythonTypeName(node)}.");
            return;
        }

        foreach (var (name, value) in members)
        {
            var member = group.Members.FirstOrDefault(m => m.MemberName == name);
            if (member is null)
            {
                errors.Add($"{group.Name}.{FieldKey(name)}", $"Not a valid field for {group.Name}.");
                continue;
            }

            change.Sent.Add(member.Name);
            ReadField(member, value, change, errors);
        }
    }

    private static void ReadField(Field field, JsonNode? node, SourceChange change, ValidationErrors errors)
    {
        if (node is null)
        {
            if (change.Mode == ChangeMode.Update)
            {
                Clear(field, change);
            }
            else
            {
                errors.Add(field.Name, "This field may not be null.");
            }

            return;
        }

        var messages = new List<string>();
        var value = field.Parse(node, messages);
        foreach (var message in messages)
        {
            errors.Add(field.Name, message);
        }

        if (messages.Count > 0)
        {
            return;
        }

        if (field.IsSecret)
        {
            change.SetSecret(field.Name, (string)value!);
        }
        else
        {
            change.Set(field.Name, (JsonNode)value!);
        }
    }

    private static void Clear(Field field, SourceChange change)
    {
        if (field.IsSecret)
        {
            change.SetSecret(field.Name, null);
        }
        else
        {
            change.Set(field.Name, null);
        }
    }

    /// <summary>Applies <paramref name="change"/> to stored settings: a value replaces, null removes.</summary>
    public static JsonObject MergeSettings(JsonObject stored, SourceChange change)
    {
        var merged = stored.DeepClone().AsObject();
        foreach (var (name, value) in change.Settings)
        {
            if (value is null)
            {
                merged.Remove(name);
            }
            else
            {
                merged[name] = value.DeepClone();
            }
        }

        return merged;
    }

    // A field name the client sent is echoed as an errors key; keep it printable and short.
    internal static string FieldKey(string name) => name.Length > 100 || name.Any(char.IsControl) ? Field.Shorten(name) : name;
}
