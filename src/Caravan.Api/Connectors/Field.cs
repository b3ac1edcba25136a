using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors;

public enum FieldKind
{
    Text,
    Host,
    Port,
    Boolean,
    NameList,
    Secret,
    /// <summary>
    /// A secret that is a JSON document (an object, or a string holding one), such as a
    /// service-account key; the source-types catalog calls this kind <c>service_account_key</c>.
    /// </summary>
    SecretDocument,

    /// <summary>Text that may span lines, such as a PEM public key.</summary>
    Pem,

    /// <summary>An absolute http or https URL (the address of a remote service); its host is where the connection goes.</summary>
    Url,

    /// <summary>One of a fixed set of words (<see cref="Field.Choices"/>).</summary>
    Choice,

    /// <summary>One or more PEM certificates; the config readback describes them instead of repeating them.</summary>
    Certificate,

    /// <summary>
    /// A nested object of member fields (<c>ssh_tunnel</c>, <c>tls</c>) sent and read back as one
    /// object, stored as its members under dotted names (<c>ssh_tunnel.host</c>) so that they are
    /// validated, encrypted, merged, audited and guarded like top-level fields.
    /// </summary>
    Group,
}

/// <summary>
/// One field of a connection type: how it is checked, whether it is a secret, its default. The
/// same definition drives validation, storage, the OpenAPI schemas and the documentation.
/// </summary>
public sealed partial record Field(string Name, FieldKind Kind, string Description)
{
    public const int MaxTextLength = 255;
    public const int MaxListItems = 1000;

    public bool Required { get; init; }

    public object? Default { get; init; }

    /// <summary>Longest accepted text; secrets such as keys and connection strings may be long.</summary>
    public int MaxLength { get; init; } = MaxTextLength;

    public bool IsSecret => Kind is FieldKind.Secret or FieldKind.SecretDocument;

    /// <summary>The member fields of a group, named <c>group.member</c>; empty for any other field.</summary>
    public IReadOnlyList<Field> Members { get; init; } = [];

    /// <summary>The group this field is a member of, or null for a top-level field.</summary>
    public string? Group { get; init; }

    /// <summary>The name within its group (<c>host</c> of <c>ssh_tunnel.host</c>); the name of a top-level field.</summary>
    public string MemberName => Group is null ? Name : Name[(Group.Length + 1)..];

    /// <summary>The accepted words of a <see cref="FieldKind.Choice"/>.</summary>
    public IReadOnlyList<string> Choices { get; init; } = [];

    /// <summary>A check of a text value beyond its kind's (a host key's form): a message, or null when it is good. It never repeats the value.</summary>
    public Func<string, string?>? Rule { get; init; }

    /// <summary>
    /// The rules across the members of a group, run when the group is present after the merge;
    /// its required members are checked before.
    /// </summary>
    public Action<GroupChange, ValidationErrors>? GroupRule { get; init; }

    /// <summary>
    /// Whether the field says where the connection goes (a host, a Snowflake account): the rebind
    /// guard asks for the stored secrets again when it changes. Host fields are destinations.
    /// </summary>
    public bool IsDestination { get; init; }

    /// <summary>
    /// Whether a new value brings its own credentials and replaces every stored one (a connection
    /// string): sending it never keeps a stored secret, so the rebind guard lets it through.
    /// </summary>
    public bool CarriesCredentials { get; init; }

    /// <summary>The type's own check of a document secret (<see cref="FieldKind.SecretDocument"/>): the value to store, or messages.</summary>
    public Func<JsonNode, List<string>, string?>? ReadDocument { get; init; }

    public static Field Text(string name, string description) => new(name, FieldKind.Text, description);

    public static Field Host(string name, string description) => new(name, FieldKind.Host, description) { IsDestination = true };

    public static Field Port(int defaultPort) => new("port", FieldKind.Port, "Port number") { Default = defaultPort };

    public static Field Flag(string name, string description) => new(name, FieldKind.Boolean, description);

    public static Field Names(string name, string description) => new(name, FieldKind.NameList, description);

    public static Field Secret(string name, string description) => new(name, FieldKind.Secret, description) { MaxLength = 8192 };

    public static Field Pem(string name, string description) => new(name, FieldKind.Pem, description) { MaxLength = 8192 };

    /// <summary>An http or https URL; a destination, whose host the rebind guard compares.</summary>
    public static Field Url(string name, string description) => new(name, FieldKind.Url, description) { IsDestination = true, MaxLength = MaxUrlLength };

    public const int MaxUrlLength = 2048;

    public static Field Choice(string name, string description, params string[] choices) => new(name, FieldKind.Choice, description) { Choices = choices };

    public static Field Certificate(string name, string description, Func<string, string?> rule) =>
        new(name, FieldKind.Certificate, description) { MaxLength = 64 * 1024, Rule = rule };

    /// <summary>A group of <paramref name="members"/>, each renamed <c>name.member</c>.</summary>
    public static Field Grouped(string name, string description, Action<GroupChange, ValidationErrors> rule, params Field[] members) =>
        new(name, FieldKind.Group, description)
        {
            Members = [.. members.Select(m => m with { Name = $"{name}.{m.Name}", Group = name })],
            GroupRule = rule,
        };

    /// <summary>A secret that is a JSON document, checked by <paramref name="read"/>.</summary>
    public static Field Document(string name, string description, Func<JsonNode, List<string>, string?> read) =>
        new(name, FieldKind.SecretDocument, description) { ReadDocument = read, MaxLength = 32 * 1024 };

    public Field AsRequired() => this with { Required = true };

    public Field AsDestination() => this with { IsDestination = true };

    /// <summary>
    /// Where a stored or sent value of this destination field goes, for the rebind guard: the host
    /// of a URL (a new path or port on the same host moves nothing), else the value itself.
    /// </summary>
    public string DestinationOf(string value) =>
        Kind == FieldKind.Url && Uri.TryCreate(value, UriKind.Absolute, out var url) ? url.Host : value;

    /// <summary>
    /// Checks one value sent by a client. Returns the value to store (a JSON node for settings,
    /// a string for secrets) or adds messages to <paramref name="messages"/>. Messages never
    /// repeat the value of a secret.
    /// </summary>
    public object? Parse(JsonNode node, List<string> messages)
    {
        switch (Kind)
        {
            case FieldKind.Port:
                return ParsePort(node, messages);
            case FieldKind.Boolean:
                if (node.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                {
                    return JsonValue.Create(node.GetValue<bool>());
                }

                messages.Add("Must be a valid boolean.");
                return null;
            case FieldKind.NameList:
                return ParseNames(node, messages);
            case FieldKind.SecretDocument:
                return ReadDocument!(node, messages);
            case FieldKind.Secret:
                return ParseSecret(node, messages);
            case FieldKind.Choice:
                var word = ReadString(node, messages);
                if (word is not null && !Choices.Contains(word, StringComparer.Ordinal))
                {
                    messages.Add($"\"{Shorten(word)}\" is not a valid choice.");
                    return null;
                }

                return word is null ? null : JsonValue.Create(word);
            default:
                var text = ParseText(node, messages);
                if (text is not null && Kind == FieldKind.Host && HostNames.Check(text) is { } hostError)
                {
                    messages.Add(hostError);
                    return null;
                }

                if (text is not null && Kind == FieldKind.Url && CheckUrl(text) is { } urlError)
                {
                    messages.Add(urlError);
                    return null;
                }

                if (text is not null && Rule?.Invoke(text) is { } ruleError)
                {
                    messages.Add(ruleError);
                    return null;
                }

                return text is null ? null : JsonValue.Create(text);
        }
    }

    /// <summary>
    /// The base64 body of a PEM text, without its BEGIN and END lines, its headers
    /// (<c>Proc-Type: ...</c>) and white space; bare base64 comes back as it is, less white space.
    /// </summary>
    public static string PemBody(string text)
    {
        var body = new System.Text.StringBuilder(text.Length);
        foreach (var line in PemBoundaryPattern().Replace(text, "\n").Split('\n'))
        {
            if (!line.Contains(':', StringComparison.Ordinal))
            {
                body.Append(line.Where(c => !char.IsWhiteSpace(c)).ToArray());
            }
        }

        return body.ToString();
    }

    /// <summary>The placeholders clients and peer systems show in place of a secret.</summary>
    public static bool IsPlaceholder(string value) => PlaceholderPattern().IsMatch(value) || PeerMaskPattern().IsMatch(value);

    private string? ParseText(JsonNode node, List<string> messages)
    {
        var value = ReadString(node, messages);
        if (value is null || Kind == FieldKind.Host)
        {
            return value;
        }

        var multiline = Kind is FieldKind.Pem or FieldKind.Certificate;
        if (!multiline && value.Trim().Length != value.Length)
        {
            messages.Add("Remove the leading or trailing spaces.");
            return null;
        }

        if (value.Any(c => char.IsControl(c) && !(multiline && c is '\n' or '\r' or '\t')))
        {
            messages.Add("This field may not contain control characters.");
            return null;
        }

        return value;
    }

    private string? ParseSecret(JsonNode node, List<string> messages)
    {
        var value = ReadString(node, messages);
        if (value is null)
        {
            return null;
        }

        if (value.Contains('\0', StringComparison.Ordinal))
        {
            messages.Add("This field may not contain NUL characters.");
            return null;
        }

        if (IsPlaceholder(value))
        {
            messages.Add(PlaceholderMessage);
            return null;
        }

        return value;
    }

    /// <summary>The checks every text field shares: a JSON string, not blank, not too long.</summary>
    private string? ReadString(JsonNode node, List<string> messages)
    {
        if (node.GetValueKind() != JsonValueKind.String)
        {
            messages.Add("Not a valid string.");
            return null;
        }

        var value = node.GetValue<string>();
        if (string.IsNullOrWhiteSpace(value))
        {
            messages.Add("This field may not be blank.");
            return null;
        }

        if (value.Length > MaxLength)
        {
            messages.Add($"Ensure this field has no more than {MaxLength} characters.");
            return null;
        }

        return value;
    }

    /// <summary>
    /// Null for an absolute http or https URL with a valid host and no credentials or fragment, else
    /// what to change. Credentials belong in the type's secret field, never in a URL, which is shown.
    /// </summary>
    internal static string? CheckUrl(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)
            || !text.StartsWith(url.Scheme + "://", StringComparison.OrdinalIgnoreCase))
        {
            return "Enter an http or https URL, such as https://mcp.example.com/mcp.";
        }

        if (url.UserInfo.Length > 0)
        {
            return "Remove the user name and password from the URL; send the token in its own field, which is stored encrypted.";
        }

        if (url.Fragment.Length > 0 || text.Contains('#', StringComparison.Ordinal))
        {
            return "Remove the fragment (the part from #) from the URL.";
        }

        return url.Host.Length == 0 || HostNames.Check(url.Host) is not null ? "Enter a URL with a valid host name or IP address." : null;
    }

    public const string PlaceholderMessage = "Send the real secret, or omit the field to keep the stored one.";

    private static JsonValue? ParsePort(JsonNode node, List<string> messages)
    {
        long? port = null;
        switch (node.GetValueKind())
        {
            case JsonValueKind.Number:
                var element = node.GetValue<JsonElement>();
                if (element.TryGetInt64(out var whole))
                {
                    port = whole;
                }
                else if (element.TryGetDecimal(out var number) && number == decimal.Truncate(number) && Math.Abs(number) < 1_000_000_000_000m)
                {
                    port = (long)number;
                }
                else if (!element.TryGetDecimal(out _) && element.TryGetDouble(out var big) && double.IsFinite(big) && Math.Abs(big) >= 1e12)
                {
                    // Integral but huge: out of range rather than "not an integer".
                    messages.Add(big > 0 ? "Ensure this value is less than or equal to 65535." : "Ensure this value is greater than or equal to 1.");
                    return null;
                }

                break;
            case JsonValueKind.String:
                var text = node.GetValue<string>().Trim();
                if (text.Length is > 0 and <= 12 && text.All(char.IsAsciiDigit))
                {
                    port = long.Parse(text, CultureInfo.InvariantCulture);
                }

                break;
        }

        if (port is null)
        {
            messages.Add("A valid integer is required.");
            return null;
        }

        if (port < 1)
        {
            messages.Add("Ensure this value is greater than or equal to 1.");
            return null;
        }

        if (port > 65535)
        {
            messages.Add("Ensure this value is less than or equal to 65535.");
            return null;
        }

        return JsonValue.Create((int)port.Value);
    }

    private static JsonArray? ParseNames(JsonNode node, List<string> messages)
    {
        if (node is not JsonArray array)
        {
            messages.Add($"Expected a list of items but got type \"{PythonTypeName(node)}\".");
            return null;
        }

        if (array.Count > MaxListItems)
        {
            messages.Add($"Ensure this field has no more than {MaxListItems} elements.");
            return null;
        }

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var result = new JsonArray();
        var before = messages.Count;
        for (var i = 0; i < array.Count; i++)
        {
            var position = i + 1;
            var item = array[i];
            if (item is null || item.GetValueKind() != JsonValueKind.String)
            {
                messages.Add(item is null ? $"Item {position} may not be null." : $"Item {position} is not a valid string.");
                continue;
            }

            var name = item.GetValue<string>();
            if (string.IsNullOrWhiteSpace(name))
            {
                messages.Add($"Item {position} may not be blank.");
            }
            else if (name.Length > MaxTextLength)
            {
                messages.Add($"Item {position} has more than {MaxTextLength} characters.");
            }
            else if (name.Trim().Length != name.Length || name.Any(char.IsControl))
            {
                messages.Add($"Item {position} may not have leading or trailing spaces or control characters.");
            }
            else if (seen.TryGetValue(name, out var first))
            {
                messages.Add($"Item {position} repeats item {first}.");
            }
            else
            {
                seen[name] = position;
                result.Add(name);
            }
        }

        return messages.Count == before ? result : null;
    }

    /// <summary>A value a client sent, printable and short enough to quote in a message.</summary>
    internal static string Shorten(string value)
    {
        var clean = new string([.. value.Where(c => !char.IsControl(c))]);
        return clean.Length > 50 ? clean[..50] + "…" : clean;
    }

    internal static string PythonTypeName(JsonNode? node) => node?.GetValueKind() switch
    {
        null or JsonValueKind.Null => "NoneType",
        JsonValueKind.String => "str",
        JsonValueKind.True or JsonValueKind.False => "bool",
        JsonValueKind.Object => "dict",
        JsonValueKind.Array => "list",
        JsonValueKind.Number => node.GetValue<JsonElement>().TryGetInt64(out _) ? "int" : "float",
        _ => "unknown",
    };

    [GeneratedRegex(@"-----(BEGIN|END) [A-Z0-9 ]+-----")]
    private static partial Regex PemBoundaryPattern();

    [GeneratedRegex(@"^[*•X]{3,}$")]
    private static partial Regex PlaceholderPattern();

    // Masks such as **MetabasePass** or ***REDACTED***.
    [GeneratedRegex(@"^\*{2,}[^*]*\*{2,}$")]
    private static partial Regex PeerMaskPattern();
}
