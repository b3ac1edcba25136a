namespace Caravan.Api.Connectors.MySql;

/// <summary>SingleStore speaks the MySQL protocol; only its default port differs.</summary>
public sealed class SingleStoreType : MySqlType
{
    public override string Name => "SINGLESTORE";

    public override string DisplayName => "SingleStore";

    public override int Order => 80;

    protected override int DefaultPort => 3333;

    /// <summary>SingleStore's own system databases, on top of MySQL's.</summary>
    public override IReadOnlySet<string> SystemDatabases { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "information_schema", "mysql", "performance_schema", "sys", "memsql", "cluster",
    };
}
