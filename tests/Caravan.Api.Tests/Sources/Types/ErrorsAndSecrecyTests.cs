using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// Every error of a request is answered at once, and no answer (or log line) ever carries the
/// value of a secret that was sent (contract sections 1 and 6).
/// </summary>
public sealed class ErrorsAndSecrecyTests(CaravanApp app)
{
    /// <summary>A body in which every field of the type is wrong, and the keys its errors must have.</summary>
    private static (JsonObject Body, string[] Keys) EverythingWrong(TypeCase type)
    {
        var body = new JsonObject();
        foreach (var field in type.Hosts)
        {
            body[field] = "https://" + field;
        }

        foreach (var field in type.Texts)
        {
            body[field] = "";
        }

        foreach (var field in type.Secrets)
        {
            body[field] = "********";
        }

        foreach (var field in type.Lists)
        {
            body[field] = "public";
        }

        foreach (var field in type.Flags)
        {
            body[field] = "maybe";
        }

        if (type.DefaultPort is not null)
        {
            body["port"] = 0;
        }

        if (type.Name == "BIGQUERY")
        {
            body["service_account_key"] = 5;
        }

        if (type.Name == "MCP")
        {
            body["base_url"] = "ftp://mcp.example.com/";
        }

        body[type.ForeignField] = "x";

        // Every problem together (contract section 1): where a type has two forms, sending both is
        // one more, reported beside the fields' own.
        var keys = body.Select(p => p.Key).Concat(type.HasTwoForms ? ["non_field_errors"] : []);
        return (body, [.. keys.Order(StringComparer.Ordinal)]);
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task Every_bad_field_of_a_create_is_reported_at_once(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var (body, keys) = EverythingWrong(Get(typeName));
        body["type"] = typeName;

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(keys, ErrorKeys(answer));
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task Every_bad_field_of_an_update_is_reported_at_once_and_nothing_is_written(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var id = await org.Http.CreateSourceAsync(type.BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);
        var (body, keys) = EverythingWrong(type);
        body["account_name"] = "   ";

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(keys.Append("account_name").Order(StringComparer.Ordinal), ErrorKeys(answer));
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task Every_field_of_the_other_types_is_refused_by_name(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var foreign = All.SelectMany(t => t.AllFields).Except(type.AllFields).Distinct().Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(foreign);
        var id = await org.Http.CreateSourceAsync(type.BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var create = type.BodyFor();
        var update = new JsonObject();
        foreach (var field in foreign)
        {
            create[field] = "value";
            update[field] = "value";
        }

        var created = await org.Http.PostJsonAsync("/api/v1/sources/", create.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), update.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        foreach (var answer in new[] { created, updated })
        {
            Assert.Equal(foreign, ErrorKeys(answer));
            Assert.All(foreign, field => Assert.Equal([$"Not a valid field for {typeName} sources."], Messages(answer, field)));
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    /// <summary>A body whose secrets are all distinctive, valid-looking values, next to non-secret fields that are wrong.</summary>
    private static (JsonObject Body, List<string> Leaks) SecretsNextToMistakes(TypeCase type, bool withType)
    {
        var body = withType ? new JsonObject { ["type"] = type.Name } : [];
        var leaks = new List<string>();
        foreach (var field in type.Secrets.Where(s => s != "connection_string"))
        {
            var leak = Leak();
            leaks.Add(leak);
            body[field] = leak;
        }

        if (type.Name == "BIGQUERY")
        {
            var key = ServiceAccountKey();
            leaks.Add(ServiceAccountPrivateKey.Split('\n')[1]);
            body["service_account_key"] = key;
        }

        foreach (var field in type.Texts.Take(1))
        {
            body[field] = " ";
        }

        foreach (var field in type.Hosts)
        {
            body[field] = "db.example.com:1";
        }

        foreach (var field in type.Lists)
        {
            body[field] = new JsonArray("a", "a");
        }

        if (type.DefaultPort is not null)
        {
            body["port"] = "abc";
        }

        body[type.ForeignField] = "x";
        return (body, leaks);
    }

    private void AssertNoLeak(string text, IEnumerable<string> leaks) => app.AssertNoSecrets([text], [.. leaks]);

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task A_refused_create_never_repeats_a_secret_it_was_sent(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var (body, leaks) = SecretsNextToMistakes(Get(typeName), withType: true);

        using var response = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString());
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(Get(typeName).ForeignField, text, StringComparison.Ordinal);
        AssertNoLeak(text, leaks);
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task A_refused_update_never_repeats_a_secret_it_was_sent(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var id = await org.Http.CreateSourceAsync(type.BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);
        var (body, leaks) = SecretsNextToMistakes(type, withType: false);

        using var response = await org.Http.PatchJsonAsync(UpdateUrl(id), body.ToJsonString());
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertNoLeak(text, leaks);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task Accepted_secrets_appear_in_no_answer_and_no_log_line(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var leaks = new List<string>();
        JsonObject WithLeaks(JsonObject body)
        {
            foreach (var field in type.Secrets.Where(s => s is not "connection_string" and not "private_key"))
            {
                var leak = Leak();
                leaks.Add(leak);
                body[field] = leak;
            }

            return body;
        }

        using var created = await org.Http.PostJsonAsync("/api/v1/sources/", WithLeaks(type.BodyFor()).ToJsonString());
        var createdText = await created.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var id = JsonNode.Parse(createdText)!["id"]!.GetValue<long>();

        var update = WithLeaks([]);
        using var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), update.ToJsonString());
        var updatedText = await updated.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        var fetched = (await org.GetSourceAsync(id)).Compact();

        if (type.HasTwoForms)
        {
            var leak = Leak();
            leaks.Add(leak);
            var connectionString = type.BodyFor("connection_string")["connection_string"]!.GetValue<string>().Replace("-pass", leak, StringComparison.Ordinal);
            Assert.Contains(leak, connectionString, StringComparison.Ordinal);
            var other = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject { ["type"] = typeName, ["connection_string"] = connectionString }.ToJsonString())
                .Expect(HttpStatusCode.OK);
            createdText += other.Compact();
        }

        if (typeName == "BIGQUERY")
        {
            leaks.Add(ServiceAccountPrivateKey.Split('\n')[1]);
        }

        AssertNoLeak(createdText + updatedText + fetched, leaks);
    }

    [Theory]
    [InlineData("**")]
    [InlineData("XX")]
    [InlineData("xxx")]
    [InlineData("pa**word")]
    [InlineData("XXXy")]
    [InlineData("* * *")]
    public async Task Values_that_only_look_a_little_like_placeholders_are_real_secrets(string password)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("MYSQL").BodyFor();
        body["password"] = password;

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());
        await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["password"] = password }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal(password, await app.RevealAsync(id, "password"));
    }

    /// <summary>Rows of (type, secret field) for secrets checked as plain text.</summary>
    public static TheoryData<string, string> SecretFields()
    {
        var rows = new TheoryData<string, string>();
        foreach (var type in All)
        {
            foreach (var field in type.Secrets)
            {
                rows.Add(type.Name, field);
            }
        }

        return rows;
    }

    [Theory]
    [MemberData(nameof(SecretFields))]
    public async Task A_secret_refused_for_its_own_value_is_not_repeated(string typeName, string field)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var leak = Leak();
        var id = await org.Http.CreateSourceAsync(type.BodyFor(field).ToJsonString());
        var before = await app.StoredSourceAsync(id);

        // Too long, a NUL inside, and (for connection strings) not parseable: each refused under the field.
        foreach (var value in new[] { leak + new string('x', 40_000), leak + "\0", "nonsense " + leak })
        {
            if (value.StartsWith("nonsense", StringComparison.Ordinal) && field != "connection_string" && field != "private_key")
            {
                continue;
            }

            var create = type.BodyFor(field);
            create[field] = value;
            using var created = await org.Http.PostJsonAsync("/api/v1/sources/", create.ToJsonString());
            var createText = await created.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, created.StatusCode);
            Assert.Contains(field, createText, StringComparison.Ordinal);
            AssertNoLeak(createText, [leak]);

            using var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { [field] = value }.ToJsonString());
            var updateText = await updated.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, updated.StatusCode);
            Assert.Contains(field, updateText, StringComparison.Ordinal);
            AssertNoLeak(updateText, [leak]);
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
    }
}
