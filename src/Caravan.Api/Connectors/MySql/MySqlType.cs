namespace Caravan.Api.Connectors.MySql;

public class MySqlType : SourceType
{
    public override string Name => "MYSQL";

    public override string DisplayName => "MySQL";

    public override int Order => 20;

    protected virtual int DefaultPort => 3306;

    public override string SchemaKind => "databases";

    /// <summary>Databases every server of the type has; discovery leaves them out.</summary>
    public virtual IReadOnlySet<string> SystemDatabases { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "information_schema", "mysql", "performance_schema", "sys",
    };

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Host("hostname", "Server host name or IP address").AsRequired(),
        Field.Port(DefaultPort),
        Field.Text("username", "User name").AsRequired(),
        Field.Secret("password", "Password").AsRequired(),
        Field.Text("database_name", "Database name").AsRequired(),
        Field.Names("selected_schemas", "Databases to include; empty means every non-system database"),
        NetworkPathFields.SshTunnelGroup,
        NetworkPathFields.TlsGroup,
    ];
}
