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
    ];

    /// <summary>The <c>secure</c> flag in force: the stored one, else true on ClickHouse's TLS ports.</summary>
    public static bool IsSecure(ConfigView config) =>
        config.Settings["secure"]?.GetValue<bool>() ?? (config.Number("port") ?? 8443) is 8443 or 9440;
}
