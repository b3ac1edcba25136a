using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors.Databricks;

/// <summary>A Databricks SQL warehouse, reached with a personal access token.</summary>
public sealed class DatabricksType : SourceType
{
    public override string Name => "DATABRICKS";

    public override string DisplayName => "Databricks";

    public override int Order => 100;

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Host("server_hostname", "Workspace host name, e.g. adb-1234567890.1.azuredatabricks.net").AsRequired(),
        Field.Text("http_path", "SQL warehouse HTTP path, e.g. /sql/1.0/warehouses/abc123").AsRequired(),
        Field.Secret("access_token", "Personal access token that can use the warehouse").AsRequired(),
        Field.Text("catalog", "Default Unity Catalog"),
        Field.Names("selected_schemas", "Schemas to include, as schema or catalog.schema"),
    ];

    public override void Check(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        base.Check(change, stored, errors);
        if (change.Settings.TryGetValue("http_path", out var path) && path?.GetValue<string>() is { } text && !text.StartsWith('/'))
        {
            errors.Add("http_path", "Enter the HTTP path of the SQL warehouse, starting with \"/\" (e.g. /sql/1.0/warehouses/abc123).");
        }

        if (change.Settings.TryGetValue("selected_schemas", out var schemas) && schemas is not null)
        {
            var position = 0;
            foreach (var schema in schemas.AsArray())
            {
                position++;
                var parts = schema!.GetValue<string>().Split('.');
                if (parts.Length > 2 || parts.Any(string.IsNullOrEmpty))
                {
                    errors.Add("selected_schemas", $"Item {position} must be schema or catalog.schema.");
                }
            }
        }
    }
}
