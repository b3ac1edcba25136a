using System.Text.Json.Nodes;
using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors.MongoDb;

/// <summary>
/// MongoDB: a <c>mongodb://</c> or <c>mongodb+srv://</c> connection string (kept whole, as a
/// secret: several hosts and SRV records do not split into fields), or the older host fields.
/// </summary>
public sealed class MongoDbType : SourceType
{
    private const string ConnectionString = "connection_string";
    private const string FormSetting = ServerOrConnectionStringType.FormSetting;
    private static readonly string[] OlderForm = ["hostname", "port", "username", "password", "database_name"];
    private static readonly string[] OlderFormRequired = ["hostname", "database_name"];

    public override string SchemaKind => "databases";

    public override string QueryUnsupported =>
        "MONGODB sources do not take SQL: the query route runs SQL statements only. Use the connection test and schema discovery routes for MongoDB.";

    /// <summary>The port of the older form is in force only in that form: a source stored as a connection string has its ports in it.</summary>
    public override JsonObject Effective(JsonObject settings) =>
        settings["hostname"] is null ? (JsonObject)settings.DeepClone() : base.Effective(settings);

    public override string Name => "MONGODB";

    public override string DisplayName => "MongoDB";

    public override int Order => 70;

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Secret(ConnectionString, "mongodb:// or mongodb+srv:// connection string") with { CarriesCredentials = true },
        Field.Host("hostname", "Server host name or IP address (older form)"),
        Field.Port(27017),
        Field.Text("username", "User name (older form)"),
        Field.Secret("password", "Password (older form)"),
        Field.Text("database_name", "Database name (older form)"),
        Field.Names("selected_schemas", "Databases to include; empty means every non-system database"),
        NetworkPathFields.SshTunnelGroup,
        NetworkPathFields.TlsGroup,
    ];

    public override void Check(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        CheckForms(change, stored, errors);

        // Contract section 10: a tunnel reaches one host and port, so only the host form takes one;
        // a connection string may name several hosts or a +srv record that no single forward serves.
        if (!errors.Has(ConnectionString) && new GroupChange(NetworkPathFields.SshTunnelGroup, change, stored).Present
            && (change.Settings.TryGetValue(FormSetting, out var form) ? form?.GetValue<string>() : stored?.Has(ConnectionString) == true
                ? ServerOrConnectionStringType.ConnectionStringForm : ServerOrConnectionStringType.FieldsForm) == ServerOrConnectionStringType.ConnectionStringForm)
        {
            errors.Add(NetworkPathFields.SshTunnel,
                "An SSH tunnel needs the host form (hostname, port, database_name): a connection string's hosts cannot be reached through one forwarded port. Send those fields instead of connection_string, or remove ssh_tunnel.");
        }
    }

    private void CheckForms(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        if (StopsAtConnectionString(change, ConnectionString, OlderForm, errors))
        {
            return;
        }

        var sentOlder = OlderForm.Where(change.Sent.Contains).ToList();
        var storedAsString = stored?.Has(ConnectionString) == true;
        if (change.Secrets.TryGetValue(ConnectionString, out var value))
        {
            if (value is null)
            {
                RefuseClearing(change, errors, storedAsString ? [ConnectionString] : []);
                return;
            }

            if (!MongoConnectionString.TryParse(value, out _, out var error))
            {
                errors.Add(ConnectionString, error ?? "The connection string could not be parsed.");
                return;
            }

            if (MongoConnectionString.PasswordOf(value) is { } password && Field.IsPlaceholder(password))
            {
                errors.Add(ConnectionString, "The password in the connection string is a placeholder. " + Field.PlaceholderMessage);
                return;
            }

            // The connection string replaces the older form entirely.
            foreach (var part in OlderForm)
            {
                if (part == "password")
                {
                    change.SetSecret(part, null);
                }
                else
                {
                    change.Set(part, null);
                }
            }

            change.Set(FormSetting, JsonValue.Create(ServerOrConnectionStringType.ConnectionStringForm));
            return;
        }

        var olderComplete = OlderFormRequired.All(change.Gives) && !OlderFormRequired.Any(change.Clears);
        if (change.Mode == ChangeMode.Create && sentOlder.Count == 0)
        {
            errors.Add(ValidationErrors.NonField, "Send connection_string, or hostname and database_name (with username and password if the server needs them).");
            return;
        }

        if (change.Mode == ChangeMode.Create)
        {
            RequireOnCreate(change, errors, OlderFormRequired);
        }

        if (change.Gives("username") != change.Gives("password") && change.Mode != ChangeMode.Update)
        {
            var missing = change.Gives("username") ? "password" : "username";
            errors.Add(missing, "Send username and password together.");
        }

        if (sentOlder.Count == 0)
        {
            return;
        }

        if (storedAsString)
        {
            if (!olderComplete)
            {
                foreach (var part in sentOlder)
                {
                    errors.Add(part, "This source uses a connection string: send a new connection_string, or hostname and database_name together to replace it.");
                }

                return;
            }

            change.SetSecret(ConnectionString, null);
        }
        else if (stored is not null)
        {
            RefuseClearing(change, errors, OlderFormRequired);
        }

        change.Set(FormSetting, JsonValue.Create(ServerOrConnectionStringType.FieldsForm));
    }

    /// <summary>
    /// A connection string's secrets are its password, as written and decoded, and the values of
    /// its credential options (tlsCertificateKeyFilePassword, an AWS session token in
    /// authMechanismProperties); its hosts, user and database are not.
    /// </summary>
    public override IEnumerable<string> SecretParts(string field, string value)
    {
        if (field != ConnectionString || !MongoConnectionString.TryParse(value, out var parsed, out _))
        {
            return base.SecretParts(field, value);
        }

        var parts = new List<string>();
        if (MongoConnectionString.RawPasswordOf(value) is { } raw)
        {
            parts.Add(raw);
            parts.AddRange(MongoConnectionString.PasswordOf(value) is { } password ? [password] : []);
        }

        parts.AddRange(parsed.Options
            .Where(option => ServerOrConnectionStringType.IsSecretOption(option.Key)
                || option.Key.Equals("authMechanismProperties", StringComparison.OrdinalIgnoreCase))
            .Select(option => option.Value));
        return parts;
    }

    public override IReadOnlyList<FieldForm> Forms =>
    [
        new(ServerOrConnectionStringType.ConnectionStringForm, "Connection string", [ConnectionString], [ConnectionString]),
        new(ServerOrConnectionStringType.FieldsForm, "Individual fields (older form)", OlderForm, OlderFormRequired),
    ];

    public override bool IsFullyConfigured(ConfigView config) =>
        config.Has(ConnectionString) || OlderFormRequired.All(config.Has);
}
