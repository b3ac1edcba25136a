using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// POSTGRES, SUPABASE and MSSQL take a connection string or the individual fields and keep one
/// configuration: a connection string is split into its parts (contract section 5).
/// </summary>
public sealed class ConnectionStringTypesTests(CaravanApp app)
{
    /// <summary>Rows of (type, connection string, host, port, user, password, database, option, option value).</summary>
    public static TheoryData<string, string, string, int?, string, string, string, string, string> Parsable() => new()
    {
        { "POSTGRES", "postgresql://analyst:s3cr%40t@db.example.com:5433/sales?sslmode=require&application_name=caravan",
            "db.example.com", 5433, "analyst", "s3cr@t", "sales", "sslmode", "require" },
        { "POSTGRES", "postgres://analyst:pw@db.example.com/sales?connect_timeout=10",
            "db.example.com", null, "analyst", "pw", "sales", "connect_timeout", "10" },
        { "POSTGRES", @"host=db.example.com port=5433 user=analyst password='p w\'x' dbname=sales sslmode=verify-full",
            "db.example.com", 5433, "analyst", "p w'x", "sales", "sslmode", "verify-full" },
        { "POSTGRES", "postgresql://u:pw@[2001:db8::1]:5432/db?sslmode=disable",
            "2001:db8::1", 5432, "u", "pw", "db", "sslmode", "disable" },
        { "SUPABASE", "postgres://postgres.abcdefgh:sb-pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres?pgbouncer=true",
            "aws-0-eu-central-1.pooler.supabase.com", 6543, "postgres.abcdefgh", "sb-pw", "postgres", "pgbouncer", "true" },
        { "SUPABASE", "host=db.abcdefgh.supabase.co user=postgres password=sb-pw dbname=postgres sslmode=require",
            "db.abcdefgh.supabase.co", null, "postgres", "sb-pw", "postgres", "sslmode", "require" },
        { "MSSQL", "Server=tcp:sql.example.com,1433;Database=sales;User ID=app;Password=p@ss;Encrypt=True;",
            "sql.example.com", 1433, "app", "p@ss", "sales", "encrypt", "True" },
        { "MSSQL", "Data Source=sql.example.com;Initial Catalog=erp;User ID=sa;Password=pw;TrustServerCertificate=True",
            "sql.example.com", null, "sa", "pw", "erp", "trustservercertificate", "True" },
        { "MSSQL", "Driver={ODBC Driver 18 for SQL Server};Server=tcp:odbc.example.com,1500;Database=x;Uid=u;Pwd={p;w};Encrypt=yes;",
            "odbc.example.com", 1500, "u", "p;w", "x", "encrypt", "yes" },
    };

    private async Task AssertPartsAsync(long id, string host, int? port, string user, string password, string database, string option, string optionValue)
    {
        var stored = await app.StoredSourceAsync(id);
        var settings = stored.Settings;
        Assert.Equal(host, settings["hostname"]!.GetValue<string>());
        Assert.Equal(port, settings["port"]?.GetValue<int>());
        Assert.Equal(user, settings["username"]!.GetValue<string>());
        Assert.Equal(database, settings["database_name"]!.GetValue<string>());
        Assert.Equal(optionValue, settings["options"]![option]!.GetValue<string>());
        Assert.Equal(password, await app.RevealAsync(id, "password"));
        Assert.False(settings.ContainsKey("connection_string"));
        Assert.False(stored.Secrets.ContainsKey("connection_string"));
        Assert.True(stored.IsFullyConfigured);
    }

    [Theory]
    [MemberData(nameof(Parsable))]
    public async Task A_connection_string_on_create_is_split_into_its_parts(
        string typeName, string connectionString, string host, int? port, string user, string password, string database, string option, string optionValue)
    {
        var org = await app.NewOrganizationAsync();

        var id = await org.Http.CreateSourceAsync(new JsonObject { ["type"] = typeName, ["connection_string"] = connectionString }.ToJsonString());

        await AssertPartsAsync(id, host, port, user, password, database, option, optionValue);
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [MemberData(nameof(Parsable))]
    public async Task A_connection_string_on_update_replaces_every_part(
        string typeName, string connectionString, string host, int? port, string user, string password, string database, string option, string optionValue)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(new JsonObject
        {
            ["type"] = typeName, ["hostname"] = "old.example.com", ["port"] = 4000, ["username"] = "old-user", ["password"] = "old-pass", ["database_name"] = "old-db",
        }.ToJsonString());

        await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["connection_string"] = connectionString }.ToJsonString()).Expect(HttpStatusCode.OK);

        await AssertPartsAsync(id, host, port, user, password, database, option, optionValue);
    }

    [Theory]
    [InlineData("POSTGRES")]
    [InlineData("SUPABASE")]
    [InlineData("MSSQL")]
    public async Task After_a_connection_string_a_field_changes_only_its_part(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var id = await org.Http.CreateSourceAsync(type.BodyFor("connection_string").ToJsonString());
        var before = (await app.StoredSourceAsync(id)).Settings;

        await org.Http.PatchJsonAsync(UpdateUrl(id), """{"password": "changed-pass"}""").Expect(HttpStatusCode.OK);

        Assert.Equal(before.ToJsonString(), (await app.StoredSourceAsync(id)).Settings.ToJsonString());
        Assert.Equal("changed-pass", await app.RevealAsync(id, "password"));
    }

    /// <summary>Rows of (type, connection string with {0} where a secret is): strings that must be refused.</summary>
    public static TheoryData<string, string> Unparsable() => new()
    {
        { "POSTGRES", "mysql://u:{0}@db.example.com/d" },
        { "POSTGRES", "http://u:{0}@db.example.com/d" },
        { "POSTGRES", "postgresql://u:{0}@db.example.com:99999/d" },
        { "POSTGRES", "postgresql://u:{0}@db.example.com:port/d" },
        { "POSTGRES", "postgresql://u:{0}@h1.example.com,h2.example.com/d" },
        { "POSTGRES", "postgresql://u:{0}@/d" },
        { "POSTGRES", "password={0} dbname=d" },
        { "POSTGRES", "host=db.example.com password='{0}" },
        { "POSTGRES", "just some words {0}" },
        { "POSTGRES", "postgresql://u:{0}@db%20example.com/d" },
        { "SUPABASE", "mongodb://u:{0}@db.example.com/d" },
        { "SUPABASE", "postgresql://u:{0}@:5432/d" },
        { "MSSQL", "Server=np:db.example.com;Password={0}" },
        { "MSSQL", "Database=x;User ID=u;Password={0}" },
        { "MSSQL", "Server=db.example.com,99999;Password={0}" },
        { "MSSQL", "Server=db.example.com;Password=\"{0}" },
        { "MSSQL", "words without any pairs {0}" },
        { "MSSQL", "postgresql://u:{0}@db.example.com/d" },
    };

    [Theory]
    [MemberData(nameof(Unparsable))]
    public async Task An_unparsable_connection_string_is_refused_without_repeating_it(string typeName, string template)
    {
        var org = await app.NewOrganizationAsync();
        var leak = Leak();
        var value = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, leak);
        var id = await org.Http.CreateSourceAsync(Get(typeName).BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);

        using var created = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject { ["type"] = typeName, ["connection_string"] = value }.ToJsonString());
        using var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["connection_string"] = value }.ToJsonString());

        foreach (var response in new[] { created, updated })
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            AssertOnlyError(JsonNode.Parse(text)!, "connection_string");
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
            Assert.DoesNotContain(value, text, StringComparison.Ordinal);
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("POSTGRES", "postgresql://u:********@db.example.com/d")]
    [InlineData("SUPABASE", "postgresql://u:XXXXXXXXXX@db.example.com/d")]
    [InlineData("MSSQL", "Server=db.example.com;User ID=u;Password=**********")]
    public async Task A_placeholder_password_inside_a_connection_string_is_refused(string typeName, string value)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject { ["type"] = typeName, ["connection_string"] = value }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "connection_string");
        Assert.Contains(Placeholder, Messages(answer, "connection_string")[0], StringComparison.Ordinal);
    }

    /// <summary>Rows of (type, individual field) to send next to a connection string.</summary>
    public static TheoryData<string, string> MixedFields()
    {
        var rows = new TheoryData<string, string>();
        foreach (var type in All.Where(t => t.HasTwoForms))
        {
            foreach (var field in new[] { "hostname", "port", "username", "password", "database_name" })
            {
                rows.Add(type.Name, field);
            }
        }

        return rows;
    }

    [Theory]
    [MemberData(nameof(MixedFields))]
    public async Task Mixing_a_connection_string_with_an_individual_field_is_a_non_field_error(string typeName, string field)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var fieldValue = JsonNode.Parse(type.ValidBody)![field]?.DeepClone() ?? 5432;
        var id = await org.Http.CreateSourceAsync(type.BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var create = type.BodyFor("connection_string");
        create[field] = fieldValue.DeepClone();
        var createAnswer = await org.Http.PostJsonAsync("/api/v1/sources/", create.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        var update = type.BodyFor("connection_string");
        update.Remove("type");
        update[field] = fieldValue.DeepClone();
        var updateAnswer = await org.Http.PatchJsonAsync(UpdateUrl(id), update.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(createAnswer, "non_field_errors");
        AssertOnlyError(updateAnswer, "non_field_errors");
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("POSTGRES")]
    [InlineData("SUPABASE")]
    [InlineData("MSSQL")]
    public async Task A_create_with_some_individual_fields_names_every_missing_one(string typeName)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", $$"""{"type": "{{typeName}}", "hostname": "db.example.com", "port": 5432}""")
            .Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["database_name", "password", "username"], ErrorKeys(answer));
        Assert.All(ErrorKeys(answer), field => Assert.Equal([TypeCatalog.Required], Messages(answer, field)));
    }

    [Theory]
    [InlineData("POSTGRES")]
    [InlineData("SUPABASE")]
    [InlineData("MSSQL")]
    public async Task A_connection_string_cannot_be_cleared_with_null(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get(typeName).BodyFor("connection_string").ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), """{"connection_string": null}""").Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "connection_string");
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }
}
