using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors.SqlServer;

/// <summary>SQL Server: an ADO.NET or ODBC connection string, or the individual fields.</summary>
public sealed class MsSqlType : ServerOrConnectionStringType
{
    public override string Name => "MSSQL";

    public override string DisplayName => "SQL Server";

    public override int Order => 90;

    protected override int DefaultPort => 1433;

    protected override string ConnectionStringDescription =>
        "ADO.NET (Server=...;User ID=...) or ODBC (Driver={...};Server=...) connection string; use instead of the individual fields";

    public override void Check(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        base.Check(change, stored, errors);
        SqlServerTls.Check(new GroupChange(NetworkPathFields.TlsGroup, change, stored), errors);
    }

    protected override bool TryParse(string value, out ParsedConnectionString? parsed, out string? problem) =>
        SqlServerConnectionString.TryParse(value, out parsed, out problem);
}
