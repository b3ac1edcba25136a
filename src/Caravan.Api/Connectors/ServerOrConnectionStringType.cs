using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors;

/// <summary>
/// The shape shared by types that take either a connection string or the individual fields
/// (POSTGRES, SUPABASE, MSSQL). Whichever form arrives, one configuration is kept: a connection
/// string is split into its parts, so a later password change touches the password only.
/// </summary>
public abstract partial class ServerOrConnectionStringType : SourceType
{
    public const string ConnectionStringField = "connection_string";
    public const string OptionsSetting = "options";
    public const string SecretOptions = "secret_options";

    /// <summary>Internal setting that remembers which form the configuration came from.</summary>
    public const string FormSetting = "_form";
    public const string ConnectionStringForm = "connection_string";
    public const string FieldsForm = "fields";

    private static readonly string[] Parts = ["hostname", "port", "username", "password", "database_name"];
    private static readonly string[] RequiredParts = ["hostname", "username", "password", "database_name"];

    protected abstract int DefaultPort { get; }

    protected abstract string ConnectionStringDescription { get; }

    protected abstract bool TryParse(string value, out ParsedConnectionString? parsed, out string? problem);

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Host("hostname", "Server host name or IP address"),
        Field.Port(DefaultPort),
        Field.Text("username", "User name"),
        Field.Secret("password", "Password"),
        Field.Text("database_name", "Database name"),
        Field.Secret(ConnectionStringField, ConnectionStringDescription) with { CarriesCredentials = true },
        Field.Names("selected_schemas", "Schemas to include; empty means every non-system schema"),
        NetworkPathFields.SshTunnelGroup,
        NetworkPathFields.TlsGroup,
    ];

    public override void Check(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        if (StopsAtConnectionString(change, ConnectionStringField, Parts, errors))
        {
            return;
        }

        var sentParts = Parts.Where(change.Sent.Contains).ToList();

        if (change.Clears(ConnectionStringField))
        {
            errors.Add(ConnectionStringField, "This field may not be null; send the individual fields to replace a connection string.");
            return;
        }

        if (change.Secrets.TryGetValue(ConnectionStringField, out var connectionString) && connectionString is not null)
        {
            ExpandConnectionString(change, connectionString, errors);
            return;
        }

        var form = stored?.Text(FormSetting);
        if (change.Mode == ChangeMode.Create)
        {
            if (sentParts.Count == 0)
            {
                errors.Add(ValidationErrors.NonField, "Send connection_string, or hostname, username, password and database_name.");
                return;
            }

            RequireOnCreate(change, errors, RequiredParts);
        }
        else if (form == ConnectionStringForm)
        {
            RefuseClearing(change, errors, ["hostname"]);
        }
        else if (form == FieldsForm)
        {
            RefuseClearing(change, errors, RequiredParts);
        }

        if (sentParts.Count > 0 && form != ConnectionStringForm)
        {
            change.Set(FormSetting, JsonValue.Create(FieldsForm));
        }
    }

    /// <summary>
    /// A connection string is never stored (it is split into its parts), so it is not listed; the
    /// options it carried that are credentials are, as one secret.
    /// </summary>
    public override IEnumerable<string> StoredSecrets => ["password", SecretOptions];

    /// <summary>Options such as sslpassword came with a connection string and can only be replaced by one.</summary>
    public override (string Field, string Message) Resend(string destination, string secret) => secret == SecretOptions
        ? (ConnectionStringField, $"Changing {destination} requires sending connection_string again: the stored connection options include credentials.")
        : base.Resend(destination, secret);

    /// <summary>Secret options are kept as one JSON object: its values are the secrets, not its option names.</summary>
    public override IEnumerable<string> SecretParts(string field, string value) =>
        field == SecretOptions && JsonNode.Parse(value) is JsonObject options
            ? options.Select(option => option.Value?.GetValue<string>()).OfType<string>()
            : base.SecretParts(field, value);

    /// <summary>True for a connection-string option whose value is a credential (sslpassword, PWD, ...).</summary>
    public static bool IsSecretOption(string key) => SecretOptionPattern().IsMatch(key);

    public override IEnumerable<string> ExtraSettings => [OptionsSetting];

    public override IReadOnlyList<FieldForm> Forms =>
    [
        new(FieldsForm, "Individual fields", Parts, RequiredParts),
        new(ConnectionStringForm, "Connection string", [ConnectionStringField], [ConnectionStringField]),
    ];

    public override bool IsFullyConfigured(ConfigView config) => config.Text(FormSetting) switch
    {
        ConnectionStringForm => config.Has("hostname"),
        _ => RequiredParts.All(config.Has),
    };

    private void ExpandConnectionString(SourceChange change, string value, ValidationErrors errors)
    {
        if (!TryParse(value, out var parsed, out var error) || parsed is null)
        {
            errors.Add(ConnectionStringField, error ?? "The connection string could not be parsed.");
            return;
        }

        if (parsed.Password is not null && Field.IsPlaceholder(parsed.Password))
        {
            errors.Add(ConnectionStringField, "The password in the connection string is a placeholder. " + Field.PlaceholderMessage);
            return;
        }

        foreach (var (part, text) in new[] { ("username", parsed.Username), ("database_name", parsed.Database) })
        {
            if (text is { Length: > Field.MaxTextLength })
            {
                errors.Add(ConnectionStringField, $"The {part.Replace('_', ' ')} in the connection string has more than {Field.MaxTextLength} characters.");
                return;
            }
        }

        // A new connection string replaces the whole configuration, including parts it leaves out.
        change.Remove(ConnectionStringField);
        change.Set("hostname", JsonValue.Create(HostNames.Normalize(parsed.Host)));
        change.Set("port", parsed.Port is { } port ? JsonValue.Create(port) : null);
        change.Set("username", Optional(parsed.Username));
        change.Set("database_name", Optional(parsed.Database));
        change.SetSecret("password", string.IsNullOrEmpty(parsed.Password) ? null : parsed.Password);

        var options = new JsonObject();
        var secretOptions = new JsonObject();
        foreach (var (key, optionValue) in parsed.Options)
        {
            (IsSecretOption(key) ? secretOptions : options)[key] = optionValue;
        }

        change.Set(OptionsSetting, options.Count > 0 ? options : null);
        change.SetSecret(SecretOptions, secretOptions.Count > 0 ? secretOptions.ToJsonString() : null);
        change.Set(FormSetting, JsonValue.Create(ConnectionStringForm));
    }

    private static JsonValue? Optional(string? value) => string.IsNullOrEmpty(value) ? null : JsonValue.Create(value);

    /// <summary>Options whose values are credentials (sslpassword, PWD, ...) are kept encrypted.</summary>
    [GeneratedRegex("pass|pwd|secret|token", RegexOptions.IgnoreCase)]
    private static partial Regex SecretOptionPattern();
}
