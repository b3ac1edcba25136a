using System.Text.Json.Nodes;

namespace Caravan.Api.Connectors.ClickHouse;

/// <summary>ClickHouse over its HTTP interface; <c>secure</c> (an extension) picks HTTPS.</summary>
public sealed class ClickHouseType : SourceType
{
    public override string Name => "CLICKHOUSE";

    public override string DisplayName => "ClickHouse";

    public override int Order => 60;

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Host("host", "Server host name or IP address").AsRequired(),
        Field.Port(8443),
        Field.Text("username", "User name").AsRequired(),
        Field.Secret("password", "Password").AsRequired(),
        Field.Text("database", "Default database"),
        Field.Flag("secure", "Use HTTPS; defaults to true on ports 8443 and 9440, false otherwise"),
        Field.Names("selected_schemas", "Databases to include; empty means every non-system database"),
        NetworkPathFields.SshTunnelGroup,
        NetworkPathFields.TlsGroup,
    ];

    public override string SchemaKind => "databases";

    /// <summary>The <c>secure</c> flag in force: the stored one, else true on ClickHouse's TLS ports (8443, 9440).</summary>
    public static bool IsSecure(SourceConnection connection) => connection.Effective["secure"]?.GetValue<bool>() is true;

    /// <summary>The settings in force, with <c>secure</c> filled in from the port when the source leaves it out.</summary>
    public override JsonObject Effective(JsonObject settings)
    {
        var effective = base.Effective(settings);
        effective["secure"] ??= effective["port"]?.GetValue<int>() is 8443 or 9440;
        return effective;
    }
}
