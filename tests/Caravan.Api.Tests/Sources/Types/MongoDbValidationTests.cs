using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// MONGODB keeps a connection string whole, as a secret; on a source stored that way only a new
/// connection string or the complete older form changes the address or credentials (contract section 5).
/// </summary>
public sealed class MongoDbValidationTests(CaravanApp app)
{
    private const string StoredString = "mongodb://app:first-pass@m1.example.com:27017,m2.example.com:27017/orders?replicaSet=rs0&authSource=admin";

    private static string CreateBody(string connectionString) =>
        new JsonObject { ["type"] = "mongodb", ["connection_string"] = connectionString }.ToJsonString();

    [Theory]
    [InlineData(StoredString)]
    [InlineData("mongodb+srv://app:pw@cluster0.abcde.mongodb.net/orders?retryWrites=true&w=majority")]
    [InlineData("mongodb://mongo.example.com")]
    [InlineData("MONGODB://app:pw@[::1]:27017/orders")]
    public async Task A_connection_string_is_kept_whole_as_a_secret(string connectionString)
    {
        var org = await app.NewOrganizationAsync();

        var id = await org.Http.CreateSourceAsync(CreateBody(connectionString));

        var stored = await app.StoredSourceAsync(id);
        Assert.Equal(connectionString, await app.RevealAsync(id, "connection_string"));
        Assert.False(stored.Settings.ContainsKey("connection_string"));
        Assert.DoesNotContain(connectionString, stored.SettingsJson, StringComparison.Ordinal);
        Assert.False(stored.Settings.ContainsKey("hostname"));
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("http://app:{0}@mongo.example.com/orders")]
    [InlineData("https://app:{0}@mongo.example.com/orders")]
    [InlineData("postgresql://app:{0}@mongo.example.com/orders")]
    [InlineData("mongo.example.com:27017 {0}")]
    [InlineData("mongodb+srv://app:{0}@cluster0.example.net:27017/orders")]
    [InlineData("mongodb://app:{0}@mongo.example.com:99999/orders")]
    [InlineData("mongodb://app:{0}@/orders")]
    public async Task A_connection_string_that_is_not_mongodb_is_refused_without_repeating_it(string template)
    {
        var org = await app.NewOrganizationAsync();
        var leak = Leak();
        var value = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, leak);
        var id = await org.Http.CreateSourceAsync(CreateBody(StoredString));
        var before = await app.StoredSourceAsync(id);

        using var created = await org.Http.PostJsonAsync("/api/v1/sources/", CreateBody(value));
        using var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["connection_string"] = value }.ToJsonString());

        foreach (var response in new[] { created, updated })
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            AssertOnlyError(JsonNode.Parse(text)!, "connection_string");
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("""{"hostname": "new.example.com"}""")]
    [InlineData("""{"port": 27018}""")]
    [InlineData("""{"username": "other"}""")]
    [InlineData("""{"password": "other-pass"}""")]
    [InlineData("""{"database_name": "other"}""")]
    [InlineData("""{"username": "other", "password": "other-pass"}""")]
    [InlineData("""{"hostname": "new.example.com", "port": 27018, "username": "u", "password": "p"}""")]
    public async Task On_a_source_stored_as_a_string_a_partial_older_form_is_refused(string body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(CreateBody(StoredString));
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), body).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(JsonNode.Parse(body)!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal), ErrorKeys(answer));
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(StoredString, await app.RevealAsync(id, "connection_string"));
    }

    [Fact]
    public async Task On_a_source_stored_as_a_string_the_complete_older_form_replaces_it()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(CreateBody(StoredString));

        await org.Http.PatchJsonAsync(UpdateUrl(id), """{"hostname": "single.example.com", "database_name": "orders2", "username": "u", "password": "p2"}""")
            .Expect(HttpStatusCode.OK);

        var stored = await app.StoredSourceAsync(id);
        Assert.False(stored.Secrets.ContainsKey("connection_string"));
        Assert.Equal("single.example.com", stored.Settings["hostname"]!.GetValue<string>());
        Assert.Equal("orders2", stored.Settings["database_name"]!.GetValue<string>());
        Assert.Equal("p2", await app.RevealAsync(id, "password"));
        Assert.True(stored.IsFullyConfigured);
    }

    [Fact]
    public async Task On_a_source_stored_as_a_string_a_new_string_and_unrelated_fields_are_accepted()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(CreateBody(StoredString));
        const string next = "mongodb+srv://app:second-pass@cluster1.example.net/orders";

        await org.Http.PatchJsonAsync(UpdateUrl(id), """{"selected_schemas": ["orders"], "account_name": "Orders"}""").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["connection_string"] = next }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal(next, await app.RevealAsync(id, "connection_string"));
        Assert.Equal("""["orders"]""", (await app.StoredSourceAsync(id)).Settings["selected_schemas"]!.ToJsonString());
    }

    [Fact]
    public async Task On_a_source_stored_as_a_string_the_string_cannot_be_cleared()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(CreateBody(StoredString));
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), """{"connection_string": null}""").Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "connection_string", "This field is required for MONGODB sources.");
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task A_connection_string_replaces_the_older_form()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get("MONGODB").BodyFor().ToJsonString());

        await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["connection_string"] = StoredString }.ToJsonString()).Expect(HttpStatusCode.OK);

        var stored = await app.StoredSourceAsync(id);
        Assert.Equal(StoredString, await app.RevealAsync(id, "connection_string"));
        Assert.False(stored.Secrets.ContainsKey("password"));
        foreach (var part in new[] { "hostname", "port", "username", "database_name" })
        {
            Assert.False(stored.Settings.ContainsKey(part), part);
        }
    }

    [Fact]
    public async Task The_older_form_needs_only_hostname_and_database_name()
    {
        var org = await app.NewOrganizationAsync();

        var id = await org.Http.CreateSourceAsync("""{"type": "mongodb", "hostname": "mongo.internal", "database_name": "orders"}""");

        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("username", "password")]
    [InlineData("password", "username")]
    public async Task Username_and_password_come_together_on_create(string sent, string missing)
    {
        var org = await app.NewOrganizationAsync();
        var body = new JsonObject { ["type"] = "mongodb", ["hostname"] = "mongo.internal", ["database_name"] = "orders", [sent] = "value" };

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, missing);
    }
}
