
namespace Caravan.Api.Connectors.Postgres;

/// <summary>PostgreSQL: a connection string (URI or libpq key=value) or the individual fields.</summary>
public class PostgresType : ServerOrConnectionStringType
{
    public override string Name => "POSTGRES";

    public override string DisplayName => "PostgreSQL";

    public override int Order => 10;

    protected override int DefaultPort => 5432;

    protected override string ConnectionStringDescription =>
        "postgres:// or postgresql:// URI, or libpq key=value pairs; use instead of the individual fields";

    protected override bool TryParse(string value, out ParsedConnectionString? parsed, out string? problem) =>
        PostgresConnectionString.TryParse(value, out parsed, out problem);
}
