using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// What the contract (section 5) says about one connection type, in the shape the validation
/// matrix needs: a valid create body, and the fields grouped by the rule that applies to them.
/// </summary>
public sealed record TypeCase(
    string Name,
    string? Slug,
    string DisplayName,
    string ValidBody,
    string? ConnectionStringBody,
    string[] Required,
    string[] Hosts,
    string[] Texts,
    string[] Secrets,
    string[] Lists,
    string[] Flags,
    int? DefaultPort,
    string ForeignField)
{
    /// <summary>True for POSTGRES, SUPABASE, MSSQL and MONGODB: a connection string or the individual fields.</summary>
    public bool HasTwoForms => ConnectionStringBody is not null;

    /// <summary>Every field that takes a JSON string.</summary>
    public IEnumerable<string> StringFields => Hosts.Concat(Texts).Concat(Secrets);

    /// <summary>Every field of the type.</summary>
    public IEnumerable<string> AllFields =>
        StringFields.Concat(Lists).Concat(Flags).Concat(Required).Concat(DefaultPort is null ? [] : ["port"]).Distinct();

    /// <summary>A valid create body (with <c>type</c>) to which <paramref name="field"/> can be added or changed.</summary>
    public JsonObject BodyFor(string? field = null)
    {
        var body = JsonNode.Parse(field == "connection_string" && HasTwoForms ? ConnectionStringBody! : ValidBody)!.AsObject();
        body["type"] = Name;
        return body;
    }

    public override string ToString() => Name;
}

public static class TypeCatalog
{
    public const string Blank = "This field may not be blank.";
    public const string Required = "This field is required.";
    public const string NotAString = "Not a valid string.";
    public const string NotAnInteger = "A valid integer is required.";
    public const string TooSmall = "Ensure this value is greater than or equal to 1.";
    public const string TooLarge = "Ensure this value is less than or equal to 65535.";
    public const string Placeholder = "Send the real secret, or omit the field to keep the stored one.";
    public const string NotABoolean = "Must be a valid boolean.";

    /// <summary>A real RSA key for the BigQuery service-account key, made once per run.</summary>
    public static string ServiceAccountPrivateKey { get; } = NewPrivateKeyPem();

    public static JsonObject ServiceAccountKey() => new()
    {
        ["type"] = "service_account",
        ["project_id"] = "caravan-tests",
        ["private_key_id"] = "0123456789abcdef",
        ["private_key"] = ServiceAccountPrivateKey,
        ["client_email"] = "reader@caravan-tests.iam.gserviceaccount.com",
        ["client_id"] = "1234567890",
    };

    public static IReadOnlyList<TypeCase> All { get; } =
    [
        new("POSTGRES", "postgres", "PostgreSQL",
            """{"hostname": "db.example.com", "port": 5433, "username": "analyst", "password": "pg-pass", "database_name": "sales", "selected_schemas": ["public"]}""",
            """{"connection_string": "postgresql://analyst:pg-pass@db.example.com:5433/sales?sslmode=require"}""",
            Required: ["hostname", "username", "password", "database_name"],
            Hosts: ["hostname"], Texts: ["username", "database_name"], Secrets: ["password", "connection_string"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: 5432, ForeignField: "host"),
        new("SUPABASE", null, "Supabase",
            """{"hostname": "db.abcdefgh.supabase.co", "username": "postgres", "password": "sb-pass", "database_name": "postgres"}""",
            """{"connection_string": "postgres://postgres:sb-pass@db.abcdefgh.supabase.co:6543/postgres"}""",
            Required: ["hostname", "username", "password", "database_name"],
            Hosts: ["hostname"], Texts: ["username", "database_name"], Secrets: ["password", "connection_string"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: 5432, ForeignField: "server_hostname"),
        new("MYSQL", "mysql", "MySQL",
            """{"hostname": "mysql.example.com", "port": 3307, "username": "shop", "password": "my-pass", "database_name": "shop"}""",
            null,
            Required: ["hostname", "username", "password", "database_name"],
            Hosts: ["hostname"], Texts: ["username", "database_name"], Secrets: ["password"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: 3306, ForeignField: "connection_string"),
        new("SINGLESTORE", "singlestore", "SingleStore",
            """{"hostname": "svc-1.singlestore.com", "username": "admin", "password": "s2-pass", "database_name": "events"}""",
            null,
            Required: ["hostname", "username", "password", "database_name"],
            Hosts: ["hostname"], Texts: ["username", "database_name"], Secrets: ["password"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: 3333, ForeignField: "host"),
        new("MSSQL", "mssql", "SQL Server",
            """{"hostname": "sql.example.com", "port": 1434, "username": "sa", "password": "ms-pass", "database_name": "erp"}""",
            """{"connection_string": "Server=tcp:sql.example.com,1434;Database=erp;User ID=sa;Password=ms-pass;Encrypt=True;"}""",
            Required: ["hostname", "username", "password", "database_name"],
            Hosts: ["hostname"], Texts: ["username", "database_name"], Secrets: ["password", "connection_string"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: 1433, ForeignField: "warehouse"),
        new("CLICKHOUSE", "clickhouse", "ClickHouse",
            """{"host": "ch.example.com", "username": "default", "password": "ch-pass", "database": "logs", "secure": true}""",
            null,
            Required: ["host", "username", "password"],
            Hosts: ["host"], Texts: ["username", "database"], Secrets: ["password"],
            Lists: ["selected_schemas"], Flags: ["secure"], DefaultPort: 8443, ForeignField: "hostname"),
        new("SNOWFLAKE", "snowflake", "Snowflake",
            """{"account": "xy12345.us-east-1", "user": "ANALYST", "password": "sf-pass", "warehouse": "COMPUTE_WH"}""",
            null,
            Required: ["account", "user"],
            Hosts: [], Texts: ["account", "user", "warehouse", "database", "role", "public_key"],
            Secrets: ["password", "private_key", "private_key_passphrase"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: null, ForeignField: "hostname"),
        new("BIGQUERY", "bigquery", "BigQuery",
            new JsonObject { ["service_account_key"] = ServiceAccountKey(), ["selected_datasets"] = new JsonArray("analytics") }.ToJsonString(),
            null,
            Required: ["service_account_key"],
            Hosts: [], Texts: [], Secrets: [],
            Lists: ["selected_datasets"], Flags: [], DefaultPort: null, ForeignField: "selected_schemas"),
        new("MOTHERDUCK", "motherduck", "MotherDuck",
            """{"database_name": "my_db", "token": "md-token"}""",
            null,
            Required: ["database_name", "token"],
            Hosts: [], Texts: ["database_name"], Secrets: ["token"],
            Lists: [], Flags: [], DefaultPort: null, ForeignField: "port"),
        new("MONGODB", "mongodb", "MongoDB",
            """{"hostname": "mongo.example.com", "port": 27018, "username": "app", "password": "mg-pass", "database_name": "orders"}""",
            """{"connection_string": "mongodb+srv://app:mg-pass@cluster0.example.mongodb.net/orders?retryWrites=true"}""",
            Required: ["hostname", "database_name"],
            Hosts: ["hostname"], Texts: ["username", "database_name"], Secrets: ["password", "connection_string"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: 27017, ForeignField: "host"),
        new("DATABRICKS", "databricks", "Databricks",
            """{"server_hostname": "adb-1234567890.1.azuredatabricks.net", "http_path": "/sql/1.0/warehouses/abc123", "access_token": "dapi-token", "catalog": "main"}""",
            null,
            Required: ["server_hostname", "http_path", "access_token"],
            Hosts: ["server_hostname"], Texts: ["http_path", "catalog"], Secrets: ["access_token"],
            Lists: ["selected_schemas"], Flags: [], DefaultPort: null, ForeignField: "hostname"),
        new("MCP", "mcp", "MCP server",
            """{"base_url": "https://mcp.example.com/mcp", "access_token": "mcp-token", "selected_tools": ["search"]}""",
            null,
            Required: ["base_url"],
            Hosts: [], Texts: [], Secrets: ["access_token"],
            Lists: ["selected_tools"], Flags: [], DefaultPort: null, ForeignField: "hostname"),
    ];

    /// <summary>The case of the type named <paramref name="name"/> (as <c>SourceTypes.All</c> names it).</summary>
    public static TypeCase Get(string name) =>
        All.SingleOrDefault(t => t.Name == name) ?? throw new InvalidOperationException($"No case for {name} in TypeCatalog.All: add one for the new type.");

    /// <summary>The case of the type created on <c>add/{slug}/</c>.</summary>
    public static TypeCase ForRoute(string slug) =>
        All.SingleOrDefault(t => t.Slug == slug) ?? throw new InvalidOperationException($"No case for add/{slug}/ in TypeCatalog.All: add one for the new type.");

    /// <summary>
    /// The slugs of the per-type create routes (<c>add/{slug}/</c>, section 4) from the service's own
    /// list of types, so that a new type's route is tested from the start (and needs its case here).
    /// </summary>
    public static IEnumerable<string> AddRouteSlugs => SourceTypes.All.Where(t => t.AddRoute is not null).Select(t => t.AddRoute!);

    public static TheoryData<string> AddRoutes() => [.. AddRouteSlugs];

    /// <summary>
    /// The service's types made of configuration fields, which this catalogue describes; the others
    /// (FILE sources, made of files: docs/files.md) have tests of their own.
    /// </summary>
    public static IEnumerable<SourceType> FieldTypes => SourceTypes.All.Where(t => t.CreatedElsewhere is null);

    public static TheoryData<string> Names() => [.. All.Select(t => t.Name)];

    public static TheoryData<string> NamesWithAddRoute() => [.. All.Where(t => t.Slug is not null).Select(t => t.Name)];

    public static TheoryData<string> NamesWithTwoForms() => [.. All.Where(t => t.HasTwoForms).Select(t => t.Name)];

    public static TheoryData<string> NamesWithOneForm() => [.. All.Where(t => !t.HasTwoForms).Select(t => t.Name)];

    public static TheoryData<string> NamesWithPort() => [.. All.Where(t => t.DefaultPort is not null).Select(t => t.Name)];

    public static TheoryData<string> NamesWithHosts() => [.. All.Where(t => t.Hosts.Length > 0).Select(t => t.Name)];

    public static string NewPrivateKeyPem()
    {
        using var rsa = RSA.Create(2048);
        return rsa.ExportPkcs8PrivateKeyPem();
    }

    /// <summary>A distinctive secret value: if it shows up in a response or a log line, it leaked.</summary>
    public static string Leak() => Unique.Secret("Leak-");

    public static string Url(long id) => SourceRoutes.Url(id);

    public static string UpdateUrl(long id) => SourceRoutes.Url(id, "update-config");

    public static async Task<JsonNode> GetSourceAsync(this OrgClient org, long id) =>
        await org.Http.GetAsync(new Uri(Url(id), UriKind.Relative)).Expect(HttpStatusCode.OK);

    /// <summary>The keys of a 400 body's <c>errors</c>, sorted.</summary>
    public static string[] ErrorKeys(JsonNode body) =>
        [.. body["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal)];

    public static string[] Messages(JsonNode body, string field)
    {
        var errors = body["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(field), $"No error under \"{field}\": {body.Compact()}");
        return [.. errors[field]!.AsArray().Select(m => m!.GetValue<string>())];
    }

    /// <summary>Asserts a 400 in the camelAI shape, with errors under <paramref name="field"/> only, one of them <paramref name="message"/>.</summary>
    public static void AssertOnlyError(JsonNode body, string field, string? message = null)
    {
        Assert.False(string.IsNullOrWhiteSpace(body["error"]?.GetValue<string>()), $"No summary: {body.Compact()}");
        Assert.Equal([field], ErrorKeys(body));
        if (message is not null)
        {
            Assert.Contains(message, Messages(body, field));
        }
    }
}
