using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// One bad value in one field of an otherwise valid body, for every field of every type (contract
/// section 5): refused on create and on update-config, with the DRF message under that field only,
/// and an update-config that is refused writes nothing.
/// </summary>
public static class FieldValueMatrix
{
    /// <summary>The contract fixes no wording for this refusal: any message under the field will do.</summary>
    public const string AnyMessage = "";

    private static readonly string[] Placeholders = ["\"********\"", "\"**********\"", "\"XXXXXXXXXX\"", "\"•••\"", "\"**MetabasePass**\""];

    /// <summary>Rows of (type, field, JSON value, expected message).</summary>
    public static TheoryData<string, string, string, string> Rows()
    {
        var rows = new TheoryData<string, string, string, string>();
        foreach (var type in All)
        {
            foreach (var field in type.StringFields)
            {
                rows.Add(type.Name, field, "\"\"", Blank);
                rows.Add(type.Name, field, "\"   \"", Blank);
                foreach (var wrong in new[] { "5", "1.5", "true", "{}", "[]", "[\"x\"]" })
                {
                    rows.Add(type.Name, field, wrong, NotAString);
                }
            }

            // Names and hosts: at most 255 characters, no whitespace around them, no control characters.
            // (public_key is PEM text: multi-line and long by nature.)
            foreach (var field in type.Hosts.Concat(type.Texts).Where(f => f != "public_key"))
            {
                rows.Add(type.Name, field, $"\"{new string('a', 256)}\"", "Ensure this field has no more than 255 characters.");
                rows.Add(type.Name, field, "\" name\"", AnyMessage);
                rows.Add(type.Name, field, "\"name \"", AnyMessage);
                rows.Add(type.Name, field, "\"na\\u0001me\"", AnyMessage);
                rows.Add(type.Name, field, "\"name\\n\"", AnyMessage);
            }

            foreach (var field in type.Secrets)
            {
                foreach (var placeholder in Placeholders)
                {
                    rows.Add(type.Name, field, placeholder, Placeholder);
                }
            }

            if (type.DefaultPort is not null)
            {
                rows.Add(type.Name, "port", "\"abc\"", NotAnInteger);
                rows.Add(type.Name, "port", "true", NotAnInteger);
                rows.Add(type.Name, "port", "5432.5", NotAnInteger);
                rows.Add(type.Name, "port", "\"\"", NotAnInteger);
                rows.Add(type.Name, "port", "[5432]", NotAnInteger);
                rows.Add(type.Name, "port", "0", TooSmall);
                rows.Add(type.Name, "port", "-1", TooSmall);
                rows.Add(type.Name, "port", "65536", TooLarge);
            }

            foreach (var field in type.Lists)
            {
                rows.Add(type.Name, field, "\"public\"", "Expected a list of items but got type \"str\".");
                rows.Add(type.Name, field, "5", "Expected a list of items but got type \"int\".");
                rows.Add(type.Name, field, "true", "Expected a list of items but got type \"bool\".");
                rows.Add(type.Name, field, "{}", "Expected a list of items but got type \"dict\".");
                rows.Add(type.Name, field, "[\"a\", \"\"]", "Item 2 may not be blank.");
                rows.Add(type.Name, field, "[\"a\", \"a\"]", AnyMessage);
                rows.Add(type.Name, field, "[\"a\", null]", AnyMessage);
                rows.Add(type.Name, field, "[\"a\", 5]", AnyMessage);
                rows.Add(type.Name, field, "[\"a\", [\"b\"]]", AnyMessage);
                rows.Add(type.Name, field, $"[\"{new string('a', 256)}\"]", AnyMessage);
            }

            foreach (var field in type.Flags)
            {
                foreach (var wrong in new[] { "\"maybe\"", "2", "{}", "[]" })
                {
                    rows.Add(type.Name, field, wrong, NotABoolean);
                }
            }

            rows.Add(type.Name, type.ForeignField, "\"db.example.com\"", $"Not a valid field for {type.Name} sources.");
        }

        return rows;
    }

    /// <summary>Rows of (type, list field).</summary>
    public static TheoryData<string, string> ListFields()
    {
        var rows = new TheoryData<string, string>();
        foreach (var type in All)
        {
            foreach (var field in type.Lists)
            {
                rows.Add(type.Name, field);
            }
        }

        return rows;
    }

    public static JsonArray NamesList(int count) => [.. Enumerable.Range(1, count).Select(i => (JsonNode)JsonValue.Create($"s{i}"))];

    /// <summary>Rows of (type, host field, host) that must be refused under the host field.</summary>
    public static TheoryData<string, string, string> BadHosts()
    {
        var rows = new TheoryData<string, string, string>();
        foreach (var type in All)
        {
            foreach (var field in type.Hosts)
            {
                foreach (var host in new[] { "https://db.example.com", "db.example.com/x", "db.example.com:5432", "db example.com", " db.example.com", "db.example.com ", "db\texample.com" })
                {
                    rows.Add(type.Name, field, host);
                }
            }
        }

        return rows;
    }

    /// <summary>Rows of (type, host field, host) that must be accepted: IPv6 literals bare and bracketed, IPv4.</summary>
    public static TheoryData<string, string, string> GoodHosts()
    {
        var rows = new TheoryData<string, string, string>();
        foreach (var type in All)
        {
            foreach (var field in type.Hosts)
            {
                foreach (var host in new[] { "::1", "[::1]", "2001:db8::10", "10.0.0.5", "localhost" })
                {
                    rows.Add(type.Name, field, host);
                }
            }
        }

        return rows;
    }
}

public sealed class FieldValueOnCreateTests(CaravanApp app)
{
    [Theory]
    [MemberData(nameof(FieldValueMatrix.Rows), MemberType = typeof(FieldValueMatrix))]
    public async Task A_bad_value_is_refused_under_its_field(string typeName, string field, string value, string message)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get(typeName).BodyFor(field);
        body[field] = JsonNode.Parse(value);

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, field, message == FieldValueMatrix.AnyMessage ? null : message);
    }

    [Theory]
    [MemberData(nameof(FieldValueMatrix.ListFields), MemberType = typeof(FieldValueMatrix))]
    public async Task A_list_takes_at_most_1000_names_and_an_empty_list_is_accepted(string typeName, string field)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);

        var tooMany = type.BodyFor(field);
        tooMany[field] = FieldValueMatrix.NamesList(1001);
        AssertOnlyError(await org.Http.PostJsonAsync("/api/v1/sources/", tooMany.ToJsonString()).Expect(HttpStatusCode.BadRequest), field);

        foreach (var count in new[] { 1000, 0 })
        {
            var body = type.BodyFor(field);
            body[field] = FieldValueMatrix.NamesList(count);
            var id = await org.Http.CreateSourceAsync(body.ToJsonString());
            Assert.Equal(count, (await app.StoredSourceAsync(id)).Settings[field]!.AsArray().Count);
        }
    }

    [Theory]
    [MemberData(nameof(FieldValueMatrix.BadHosts), MemberType = typeof(FieldValueMatrix))]
    public async Task A_host_with_a_scheme_path_port_or_spaces_is_refused(string typeName, string field, string host)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get(typeName).BodyFor(field);
        body[field] = host;

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, field);
    }

    [Theory]
    [MemberData(nameof(FieldValueMatrix.GoodHosts), MemberType = typeof(FieldValueMatrix))]
    public async Task IP_literals_and_plain_names_are_accepted_as_hosts(string typeName, string field, string host)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get(typeName).BodyFor(field);
        body[field] = host;

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());

        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.Names), MemberType = typeof(TypeCatalog))]
    public async Task Null_is_refused_on_create_for_every_field(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        foreach (var field in type.AllFields)
        {
            var body = type.BodyFor(field);
            body[field] = null;

            var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

            AssertOnlyError(answer, field, "This field may not be null.");
        }
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithPort), MemberType = typeof(TypeCatalog))]
    public async Task A_port_given_as_a_string_of_digits_is_stored_as_an_integer(string typeName)
    {
        var type = Get(typeName);
        var org = await app.NewOrganizationAsync();
        var body = type.BodyFor("port");
        body["port"] = "5432";

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());

        Assert.Equal(5432, (await app.StoredSourceAsync(id)).Settings["port"]!.GetValue<int>());
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithPort), MemberType = typeof(TypeCatalog))]
    public async Task Ports_1_and_65535_are_accepted(string typeName)
    {
        var type = Get(typeName);
        var org = await app.NewOrganizationAsync();
        foreach (var port in new[] { 1, 65535 })
        {
            var body = type.BodyFor("port");
            body["port"] = port;

            var id = await org.Http.CreateSourceAsync(body.ToJsonString());

            Assert.Equal(port, (await app.StoredSourceAsync(id)).Settings["port"]!.GetValue<int>());
        }
    }
}

public sealed class FieldValueOnUpdateConfigTests(CaravanApp app)
{
    [Theory]
    [MemberData(nameof(FieldValueMatrix.Rows), MemberType = typeof(FieldValueMatrix))]
    public async Task A_bad_value_is_refused_under_its_field_and_nothing_is_written(string typeName, string field, string value, string message)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get(typeName).BodyFor(field).ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { [field] = JsonNode.Parse(value) }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, field, message == FieldValueMatrix.AnyMessage ? null : message);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [MemberData(nameof(FieldValueMatrix.BadHosts), MemberType = typeof(FieldValueMatrix))]
    public async Task A_host_with_a_scheme_path_port_or_spaces_is_refused_and_nothing_is_written(string typeName, string field, string host)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get(typeName).BodyFor(field).ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { [field] = host }.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, field);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [MemberData(nameof(FieldValueMatrix.GoodHosts), MemberType = typeof(FieldValueMatrix))]
    public async Task IP_literals_and_plain_names_are_accepted_as_hosts(string typeName, string field, string host)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var id = await org.Http.CreateSourceAsync(type.BodyFor(field).ToJsonString());

        // Resending the secrets keeps the change clear of the rebind guard (contract section 8).
        var update = new JsonObject { [field] = host };
        foreach (var secret in type.Secrets.Where(s => s != "connection_string"))
        {
            update[secret] = "fresh-" + secret;
        }

        await org.Http.PatchJsonAsync(UpdateUrl(id), update.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithPort), MemberType = typeof(TypeCatalog))]
    public async Task A_port_given_as_a_string_of_digits_is_stored_as_an_integer(string typeName)
    {
        var type = Get(typeName);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(type.BodyFor("port").ToJsonString());

        await org.Http.PatchJsonAsync(UpdateUrl(id), """{"port": "6543"}""").Expect(HttpStatusCode.OK);

        Assert.Equal(6543, (await app.StoredSourceAsync(id)).Settings["port"]!.GetValue<int>());
    }

    [Theory]
    [MemberData(nameof(TypeCatalog.NamesWithOneForm), MemberType = typeof(TypeCatalog))]
    public async Task Clearing_a_required_field_is_refused_and_nothing_is_written(string typeName)
    {
        var org = await app.NewOrganizationAsync();
        var type = Get(typeName);
        var id = await org.Http.CreateSourceAsync(type.BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);

        foreach (var field in type.Required)
        {
            var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { [field] = null }.ToJsonString())
                .Expect(HttpStatusCode.BadRequest);

            AssertOnlyError(answer, field, $"This field is required for {typeName} sources.");
            Assert.Equal(before, await app.StoredSourceAsync(id));
        }
    }
}
