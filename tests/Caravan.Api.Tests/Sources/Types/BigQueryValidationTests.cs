using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>
/// BIGQUERY's service_account_key: a JSON object or a string holding one, with type
/// service_account, project_id, private_key and client_email; it holds a private key, so no
/// answer may quote it (contract section 5).
/// </summary>
public sealed class BigQueryValidationTests(CaravanApp app)
{
    /// <summary>A line of the key's base64 body: if it shows up in an answer, the key leaked.</summary>
    private static readonly string KeyBodyLine = ServiceAccountPrivateKey.Split('\n')[1];

    private static string CreateBody(JsonNode? key) =>
        new JsonObject { ["type"] = "bigquery", ["service_account_key"] = key }.ToJsonString();

    [Theory]
    [InlineData("/api/v1/sources/")]
    [InlineData("/api/v1/sources/add/bigquery/")]
    public async Task A_key_object_is_accepted_and_stored_as_a_secret(string url)
    {
        var org = await app.NewOrganizationAsync();

        var id = await org.Http.CreateSourceAsync(CreateBody(ServiceAccountKey()), url);

        var stored = await app.StoredSourceAsync(id);
        var key = JsonNode.Parse(await app.RevealAsync(id, "service_account_key"))!;
        Assert.Equal("reader@caravan-tests.iam.gserviceaccount.com", key["client_email"]!.GetValue<string>());
        Assert.Equal(ServiceAccountPrivateKey, key["private_key"]!.GetValue<string>());
        Assert.DoesNotContain(KeyBodyLine, stored.SettingsJson, StringComparison.Ordinal);
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_key_as_a_JSON_string_is_accepted()
    {
        var org = await app.NewOrganizationAsync();

        var id = await org.Http.CreateSourceAsync(CreateBody(ServiceAccountKey().ToJsonString()));

        var key = JsonNode.Parse(await app.RevealAsync(id, "service_account_key"))!;
        Assert.Equal("caravan-tests", key["project_id"]!.GetValue<string>());
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    /// <summary>Rows of (name, bad key as JSON): each refused under service_account_key, as object and as string.</summary>
    public static TheoryData<string, string> BadKeys()
    {
        var rows = new TheoryData<string, string>();
        foreach (var field in new[] { "type", "project_id", "private_key", "client_email" })
        {
            var missing = ServiceAccountKey();
            missing.Remove(field);
            rows.Add($"without {field}", missing.ToJsonString());

            var blank = ServiceAccountKey();
            blank[field] = "";
            rows.Add($"blank {field}", blank.ToJsonString());

            var number = ServiceAccountKey();
            number[field] = 5;
            rows.Add($"number as {field}", number.ToJsonString());
        }

        var wrongType = ServiceAccountKey();
        wrongType["type"] = "authorized_user";
        rows.Add("authorized_user key", wrongType.ToJsonString());

        var notEmail = ServiceAccountKey();
        notEmail["client_email"] = "reader";
        rows.Add("client_email without @", notEmail.ToJsonString());

        var notPem = ServiceAccountKey();
        notPem["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        rows.Add("private_key not a key", notPem.ToJsonString());

        var placeholder = ServiceAccountKey();
        placeholder["private_key"] = "********";
        rows.Add("private_key placeholder", placeholder.ToJsonString());

        rows.Add("empty object", "{}");
        return rows;
    }

    [Theory]
    [MemberData(nameof(BadKeys))]
    public async Task An_incomplete_or_wrong_key_is_refused_without_repeating_it(string name, string key)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get("BIGQUERY").BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);

        foreach (var shape in new[] { JsonNode.Parse(key), JsonValue.Create(key) })
        {
            using var created = await org.Http.PostJsonAsync("/api/v1/sources/", CreateBody(shape!.DeepClone()));
            using var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["service_account_key"] = shape.DeepClone() }.ToJsonString());
            foreach (var response in new[] { created, updated })
            {
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: {text}");
                AssertOnlyError(JsonNode.Parse(text)!, "service_account_key");
                Assert.DoesNotContain(KeyBodyLine, text, StringComparison.Ordinal);
                Assert.DoesNotContain("BEGIN PRIVATE KEY", text, StringComparison.Ordinal);
            }
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("5")]
    [InlineData("true")]
    [InlineData("[]")]
    [InlineData("[{\"type\": \"service_account\"}]")]
    [InlineData("\"not json {0}\"")]
    [InlineData("\"[1, 2]\"")]
    [InlineData("\"{\\\"type\\\": \\\"service_account\\\", \\\"private_key\\\": \\\"{0}\\\"\"")]
    public async Task A_key_that_is_not_a_JSON_object_is_refused_without_repeating_it(string template)
    {
        var org = await app.NewOrganizationAsync();
        var leak = Leak();
        var value = JsonNode.Parse(template.Replace("{0}", leak, StringComparison.Ordinal));

        using var response = await org.Http.PostJsonAsync("/api/v1/sources/", CreateBody(value));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertOnlyError(JsonNode.Parse(text)!, "service_account_key");
        Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_private_key_that_is_not_PEM_is_refused_without_repeating_it()
    {
        var org = await app.NewOrganizationAsync();
        var leak = Leak();
        var key = ServiceAccountKey();
        key["private_key"] = leak;

        using var response = await org.Http.PostJsonAsync("/api/v1/sources/", CreateBody(key));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertOnlyError(JsonNode.Parse(text)!, "service_account_key");
        Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
    }

    // Contract section 5: "Every string has a minimum length of 1 ("This field may not be blank.")";
    // service_account_key may be sent as a string.
    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public async Task A_blank_key_string_is_refused_as_blank(string value)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", CreateBody(value)).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "service_account_key", Blank);
    }

    // Contract section 6, step 3: a secret value made only of '*', '•' or 'X', or a peer's mask, is
    // refused with the placeholder message, on create and on update-config.
    [Theory]
    [InlineData("********")]
    [InlineData("**********")]
    [InlineData("XXXXXXXXXX")]
    [InlineData("•••")]
    [InlineData("**MetabasePass**")]
    public async Task A_placeholder_key_is_refused_as_a_placeholder(string value)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get("BIGQUERY").BodyFor().ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var created = await org.Http.PostJsonAsync("/api/v1/sources/", CreateBody(value)).Expect(HttpStatusCode.BadRequest);
        var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["service_account_key"] = value }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(created, "service_account_key", Placeholder);
        AssertOnlyError(updated, "service_account_key", Placeholder);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task A_new_key_replaces_the_stored_one()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Get("BIGQUERY").BodyFor().ToJsonString());
        var key = ServiceAccountKey();
        key["private_key"] = NewPrivateKeyPem();
        key["project_id"] = "other-project";

        await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["service_account_key"] = key.ToJsonString() }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal("other-project", JsonNode.Parse(await app.RevealAsync(id, "service_account_key"))!["project_id"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""["analytics", "analytics"]""")]
    [InlineData("""["analytics", ""]""")]
    [InlineData("""["analytics", null]""")]
    [InlineData("""["analytics", 5]""")]
    [InlineData("\"analytics\"")]
    public async Task Selected_datasets_must_be_a_list_of_distinct_names(string datasets)
    {
        var org = await app.NewOrganizationAsync();
        var body = Get("BIGQUERY").BodyFor();
        body["selected_datasets"] = JsonNode.Parse(datasets);

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "selected_datasets");
    }
}
