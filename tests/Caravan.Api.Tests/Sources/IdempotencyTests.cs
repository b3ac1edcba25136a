using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Secrets;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// Idempotency-Key on the create routes (contract section 8): a repeat answers the first response
/// and creates nothing, another request with the key is a 409, keys belong to the organization,
/// concurrent duplicates create once, and the store keeps no secret of the request.
/// </summary>
public sealed class IdempotencyTests(CaravanApp app)
{
    private const string SourcesUrl = "/api/v1/sources/";
    private const string Conflict = """{"detail":"Idempotency-Key was already used with a different request."}""";

    public static TheoryData<string, string> CreateRoutes()
    {
        var routes = new TheoryData<string, string>
        {
            { SourcesUrl, Wire.Postgres },
            { SourcesUrl, """{"type": "snowflake", "account": "xy12345.us-east-1", "user": "keyed"}""" },
            { SourcesUrl + "add/", """{"account_name": "Legacy", "type": "clickhouse"}""" },
        };
        foreach (var type in TypeCatalog.AddRouteSlugs)
        {
            routes.Add($"{SourcesUrl}add/{type}/", TypeCatalog.ForRoute(type).ValidBody);
        }

        return routes;
    }

    [Theory]
    [MemberData(nameof(CreateRoutes))]
    public async Task A_repeated_create_answers_the_first_response_again_and_creates_nothing(string url, string body)
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();

        var first = await PostAsync(org, url, body, key);
        first.AssertStatus(HttpStatusCode.OK);
        Assert.Null(first.Replayed);
        Assert.Equal(Wire.JsonContentType, first.ContentType);
        var ids = await org.ListedIdsAsync();
        Assert.Equal([first.Json["id"]!.GetValue<long>()], ids);

        var again = await PostAsync(org, url, body, key);

        again.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(first.Body, again.Body);
        Assert.Equal(Wire.JsonContentType, again.ContentType);
        Assert.Equal("true", again.Replayed);
        Assert.Equal(ids, await org.ListedIdsAsync());
    }

    [Fact]
    public async Task The_answer_has_the_same_shape_as_without_a_key()
    {
        var org = await app.NewOrganizationAsync();
        var plain = await PostAsync(org, SourcesUrl, Wire.Postgres, key: null);
        var keyed = await PostAsync(org, SourcesUrl, Wire.Postgres, NewKey());
        var legacyPlain = await PostAsync(org, SourcesUrl + "add/", """{"account_name": "L", "type": "mysql"}""", key: null);
        var legacyKeyed = await PostAsync(org, SourcesUrl + "add/", """{"account_name": "L", "type": "mysql"}""", NewKey());

        Assert.Equal(plain.Body.Replace(Id(plain), Id(keyed), StringComparison.Ordinal), keyed.Body);
        Assert.Equal((plain.Status, plain.ContentType), (keyed.Status, keyed.ContentType));
        var expected = legacyPlain.Json.AsObject();
        expected["id"] = legacyKeyed.Json["id"]!.GetValue<long>();
        expected["created_at"] = legacyKeyed.Json["created_at"]!.GetValue<string>();
        Assert.Equal(expected.ToJsonString(), legacyKeyed.Json.ToJsonString());

        static string Id(Sent sent) => $"\"id\":{sent.Json["id"]!.GetValue<long>()}";
    }

    [Fact]
    public async Task The_same_object_sent_in_another_key_order_or_layout_is_the_same_request()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();
        var first = await PostAsync(org, SourcesUrl, """{"type": "mysql", "hostname": "db.example.com", "username": "u", "password": "p\u00e9", "database_name": "d", "selected_schemas": ["a", "b"]}""", key);

        var reordered = await PostAsync(org, SourcesUrl, "{\n  \"selected_schemas\" : [ \"a\",\"b\" ],\"database_name\":\"d\",\"password\":\"pé\",\n\"username\":\"u\",\"hostname\":\"db.example.com\",\"type\":\"mysql\"}", key);

        reordered.AssertStatus(HttpStatusCode.OK);
        Assert.Equal("true", reordered.Replayed);
        Assert.Equal(first.Body, reordered.Body);
        Assert.Equal(1, await org.CountAsync());
    }

    [Fact]
    public async Task The_same_key_with_another_body_or_on_another_route_is_a_409_and_creates_nothing()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();
        await PostAsync(org, SourcesUrl, Wire.Postgres, key);

        var changed = Wire.Postgres.Replace("\"password\": \"p\"", "\"password\": \"p2\"", StringComparison.Ordinal);
        var cases = new (string Url, string Body)[]
        {
            (SourcesUrl, changed),
            (SourcesUrl, Wire.Postgres.Replace("postgres", "POSTGRES", StringComparison.Ordinal)),
            (SourcesUrl, Wire.Postgres.Replace("}", ", \"port\": 5432}", StringComparison.Ordinal)),
            (SourcesUrl + "add/postgres/", Wire.Postgres),
            (SourcesUrl + "add/", """{"account_name": "Legacy", "type": "postgres"}"""),

            // Not even a valid create: the key already stands for another request.
            (SourcesUrl, """{"type": "postgres"}"""),
        };
        foreach (var (url, body) in cases)
        {
            var refused = await PostAsync(org, url, body, key);
            refused.AssertExactly(HttpStatusCode.Conflict, Conflict);
            Assert.Null(refused.Replayed);
        }

        Assert.Equal(1, await org.CountAsync());

        // The first request is still answered as before.
        Assert.Equal("true", (await PostAsync(org, SourcesUrl, Wire.Postgres, key)).Replayed);
    }

    [Fact]
    public async Task Keys_belong_to_the_organization()
    {
        var first = await app.NewOrganizationAsync();
        var second = await app.NewOrganizationAsync();
        var key = NewKey();

        var mine = await PostAsync(first, SourcesUrl, Wire.Postgres, key);
        var theirs = await PostAsync(second, SourcesUrl, Wire.Postgres, key);
        var theirsOther = await PostAsync(second, SourcesUrl + "add/", """{"account_name": "Other", "type": "mysql"}""", NewKey());

        theirs.AssertStatus(HttpStatusCode.OK);
        Assert.Null(theirs.Replayed);
        Assert.NotEqual(mine.Json["id"]!.GetValue<long>(), theirs.Json["id"]!.GetValue<long>());
        Assert.Equal([mine.Json["id"]!.GetValue<long>()], await first.ListedIdsAsync());
        Assert.Equal(
            [theirs.Json["id"]!.GetValue<long>(), theirsOther.Json["id"]!.GetValue<long>()],
            await second.ListedIdsAsync());

        // A different body under the same key string in another organization is no conflict either.
        var third = await app.NewOrganizationAsync();
        (await PostAsync(third, SourcesUrl, """{"type": "motherduck", "database_name": "x", "token": "t"}""", key)).AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Concurrent_duplicates_create_exactly_one_source_and_all_answer_it()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();

        // Snowflake without credentials generates a key pair: slow create work, wide race window.
        const string body = """{"type": "snowflake", "account": "xy12345.us-east-1", "user": "racer"}""";
        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => PostAsync(org, SourcesUrl, body, key))));

        Assert.All(answers, answer => answer.AssertStatus(HttpStatusCode.OK));
        Assert.Single(answers.Select(a => a.Body).Distinct());
        Assert.Single(answers, a => a.Replayed is null);
        var id = answers[0].Json["id"]!.GetValue<long>();
        Assert.Equal([id], await org.ListedIdsAsync());
    }

    [Fact]
    public async Task Concurrent_requests_with_one_key_and_different_bodies_create_one_source()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();
        var answers = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() =>
            PostAsync(org, SourcesUrl, $$"""{"type": "motherduck", "database_name": "db{{i}}", "token": "t"}""", key))));

        Assert.Single(answers, a => a.Status == HttpStatusCode.OK);
        Assert.All(answers.Where(a => a.Status != HttpStatusCode.OK), a => a.AssertExactly(HttpStatusCode.Conflict, Conflict));
        Assert.Equal(1, await org.CountAsync());
    }

    [Fact]
    public async Task A_refused_create_keeps_nothing_so_the_corrected_request_with_the_same_key_creates()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();

        var refused = await PostAsync(org, SourcesUrl, """{"type": "postgres", "hostname": "db.example.com"}""", key);
        refused.AssertStatus(HttpStatusCode.BadRequest);
        var malformed = await PostAsync(org, SourcesUrl, """{"type": "postgres", """, key);
        malformed.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal(0, await CountKeysAsync(org.Organization));

        var fixedRequest = await PostAsync(org, SourcesUrl, Wire.Postgres, key);

        fixedRequest.AssertStatus(HttpStatusCode.OK);
        Assert.Null(fixedRequest.Replayed);
        Assert.Equal([fixedRequest.Json["id"]!.GetValue<long>()], await org.ListedIdsAsync());
        Assert.Equal(1, await CountKeysAsync(org.Organization));
    }

    [Fact]
    public async Task An_expired_key_creates_a_new_source_and_then_stands_for_it()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();
        var first = await PostAsync(org, SourcesUrl, Wire.Postgres, key);

        // Just inside the 24 hours the key still holds; just past them, it no longer does.
        await AgeKeyAsync(org.Organization, key, TimeSpan.FromHours(24) - TimeSpan.FromMinutes(1));
        Assert.Equal("true", (await PostAsync(org, SourcesUrl, Wire.Postgres, key)).Replayed);
        await AgeKeyAsync(org.Organization, key, TimeSpan.FromMinutes(2));

        var second = await PostAsync(org, SourcesUrl, Wire.Postgres, key);

        second.AssertStatus(HttpStatusCode.OK);
        Assert.Null(second.Replayed);
        Assert.NotEqual(first.Body, second.Body);
        Assert.Equal(2, await org.CountAsync());
        var third = await PostAsync(org, SourcesUrl, Wire.Postgres, key);
        Assert.Equal(("true", second.Body), (third.Replayed, third.Body));

        // An expired key is free for another request too.
        await AgeKeyAsync(org.Organization, key, TimeSpan.FromDays(2));
        (await PostAsync(org, SourcesUrl, """{"type": "motherduck", "database_name": "x", "token": "t"}""", key)).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(3, await org.CountAsync());
    }

    [Fact]
    public async Task A_replay_answers_the_first_response_even_after_the_source_changed()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();
        var first = await PostAsync(org, SourcesUrl + "add/", """{"account_name": "Before", "type": "mysql"}""", key);
        var id = first.Json["id"]!.GetValue<long>();
        await org.Http.PatchJsonAsync($"{SourcesUrl}{id}/", """{"account_name": "After"}""").Expect(HttpStatusCode.OK);

        var again = await PostAsync(org, SourcesUrl + "add/", """{"account_name": "Before", "type": "mysql"}""", key);

        Assert.Equal(first.Body, again.Body);
        Assert.Equal("true", again.Replayed);
        Assert.Equal(1, await org.CountAsync());
    }

    [Fact]
    public async Task A_request_stored_under_a_master_key_no_longer_configured_cannot_be_compared_and_is_refused()
    {
        var org = await app.NewOrganizationAsync();
        var key = NewKey();
        await PostAsync(org, SourcesUrl, Wire.Postgres, key);
        await ExecuteAsync(
            "UPDATE idempotency_keys SET mac_key_id = 'deadbeef' WHERE organization_id = (SELECT id FROM organizations WHERE name = @org) AND key = @key",
            ("@org", org.Organization), ("@key", key));

        (await PostAsync(org, SourcesUrl, Wire.Postgres, key)).AssertExactly(HttpStatusCode.Conflict, Conflict);
        Assert.Equal(1, await org.CountAsync());
    }

    [Fact]
    public async Task The_store_keeps_a_keyed_MAC_of_the_request_and_no_secret_of_it()
    {
        var org = await app.NewOrganizationAsync();
        var secrets = new List<string>();
        string Secret(string label)
        {
            var value = Unique.Secret($"Pw-{label}-");
            secrets.Add(value);
            return value;
        }

        var bodies = new (string Url, JsonObject Body)[]
        {
            (SourcesUrl, new JsonObject { ["type"] = "postgres", ["hostname"] = "db.example.com", ["username"] = "u", ["password"] = Secret("pg"), ["database_name"] = "d" }),
            (SourcesUrl, new JsonObject { ["type"] = "postgres", ["connection_string"] = $"postgresql://u:{Secret("pg-uri")}@db.example.com/d" }),
            (SourcesUrl + "add/mongodb/", new JsonObject { ["connection_string"] = $"mongodb://u:{Secret("mongo")}@m.example.com/app" }),
            (SourcesUrl + "add/motherduck/", new JsonObject { ["database_name"] = "md", ["token"] = Secret("md") }),
            (SourcesUrl + "add/databricks/", new JsonObject { ["server_hostname"] = "dbc-1.cloud.databricks.com", ["http_path"] = "/sql/1", ["access_token"] = Secret("dapi") }),
            (SourcesUrl + "add/", new JsonObject { ["account_name"] = "Legacy", ["type"] = "mysql", ["password"] = Secret("legacy") }),
        };
        var keys = new List<string>();
        foreach (var (url, body) in bodies)
        {
            var key = NewKey();
            keys.Add(key);
            (await PostAsync(org, url, body.ToJsonString(), key)).AssertStatus(HttpStatusCode.OK);
            Assert.Equal("true", (await PostAsync(org, url, body.ToJsonString(), key)).Replayed);
        }

        var currentKeyId = app.Services.GetRequiredService<SecretProtector>().CurrentKeyId;
        var rows = await ReadKeysAsync(org.Organization);
        Assert.Equal(keys.Order(StringComparer.Ordinal), rows.Select(r => r.Key).Order(StringComparer.Ordinal));
        foreach (var row in rows)
        {
            Assert.Equal(32, row.Mac.Length);
            Assert.Equal(currentKeyId, row.MacKeyId);
            Assert.Equal(200, row.Status);
            Assert.NotNull(row.SourceId);
            var text = string.Join("\n", row.Key, row.MacKeyId, row.Body, Encoding.UTF8.GetString(row.Mac), Convert.ToHexString(row.Mac), Convert.ToBase64String(row.Mac));
            Assert.DoesNotContain(secrets, s => text.Contains(s, StringComparison.Ordinal));
        }

        // Different requests, different MACs.
        Assert.Equal(rows.Count, rows.Select(r => Convert.ToHexString(r.Mac)).Distinct().Count());
    }

    [Theory]
    [InlineData("   ", "This header may not be blank.")]
    [InlineData("tab\tinside", "Use printable ASCII characters only.")]
    [InlineData("caf\u00e9", "Use printable ASCII characters only.")]
    [InlineData("bell\u0007", "Use printable ASCII characters only.")]
    [InlineData(null, "Ensure this header has no more than 255 characters.")]
    public async Task A_malformed_key_is_a_400_naming_the_header_and_creates_nothing(string? key, string message)
    {
        var org = await app.NewOrganizationAsync();
        key ??= new string('k', 256);

        var refused = await PostAsync(org, SourcesUrl, Wire.Postgres, key);

        var expected = new JsonObject
        {
            ["error"] = "Invalid value for Idempotency-Key.",
            ["errors"] = new JsonObject { ["Idempotency-Key"] = new JsonArray(message) },
        };
        refused.AssertExactly(HttpStatusCode.BadRequest, expected.ToJsonString());
        Assert.Equal(0, await org.CountAsync());
    }

    [Fact]
    public async Task Two_key_headers_are_a_400_and_the_longest_and_oddest_valid_keys_work()
    {
        var org = await app.NewOrganizationAsync();
        using (var request = Request(SourcesUrl, Wire.Postgres, key: null))
        {
            request.Headers.TryAddWithoutValidation("Idempotency-Key", ["one", "two"]);
            using var response = await org.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal(
                """{"error":"Invalid value for Idempotency-Key.","errors":{"Idempotency-Key":["Send one Idempotency-Key header, not several."]}}""",
                await response.Content.ReadAsStringAsync());
        }

        // Keys belong to the organization, which is new: plain keys cannot collide with other tests.
        foreach (var key in new[] { new string('k', 255), "a", "with spaces and !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" })
        {
            (await PostAsync(org, SourcesUrl, Wire.Postgres, key)).AssertStatus(HttpStatusCode.OK);
            Assert.Equal("true", (await PostAsync(org, SourcesUrl, Wire.Postgres, key)).Replayed);
        }

        Assert.Equal(3, await org.CountAsync());
    }

    [Fact]
    public async Task A_key_is_checked_after_authentication()
    {
        using var anonymous = app.CreateClient();
        using var request = Request(SourcesUrl, Wire.Postgres, key: "");
        using var response = await anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task The_header_is_ignored_on_routes_that_do_not_create()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var key = NewKey();

        var first = await SendAsync(org, HttpMethod.Patch, $"{SourcesUrl}{id}/update-config/", """{"port": 6000}""", key);
        var second = await SendAsync(org, HttpMethod.Patch, $"{SourcesUrl}{id}/update-config/", """{"port": 6000}""", key);
        var rename = await SendAsync(org, HttpMethod.Patch, $"{SourcesUrl}{id}/", """{"account_name": "Renamed"}""", key);
        var bad = await SendAsync(org, HttpMethod.Get, $"{SourcesUrl}{id}/", null, "");

        Assert.All(new[] { first, second, rename, bad }, a => a.AssertStatus(HttpStatusCode.OK));
        Assert.All(new[] { first, second, rename, bad }, a => Assert.Null(a.Replayed));
        Assert.Equal(4, (await app.StoredSourceAsync(id)).Version);
        Assert.Equal(0, await CountKeysAsync(org.Organization));
    }

    private static string NewKey() => Unique.Secret("idem-");

    private sealed record Sent(HttpStatusCode Status, string Body, string? ContentType, string? Replayed)
    {
        public JsonNode Json => JsonNode.Parse(Body)!;

        public void AssertStatus(HttpStatusCode status) => Assert.True(Status == status, $"Expected {(int)status}, got {(int)Status}: {Body}");

        public void AssertExactly(HttpStatusCode status, string body)
        {
            AssertStatus(status);
            Assert.Equal(body, Body);
            Assert.Equal(Wire.JsonContentType, ContentType);
        }
    }

    private static Task<Sent> PostAsync(OrgClient org, string url, string body, string? key) => SendAsync(org, HttpMethod.Post, url, body, key);

    private static async Task<Sent> SendAsync(OrgClient org, HttpMethod method, string url, string? body, string? key)
    {
        using var request = Request(url, body, key);
        request.Method = method;
        using var response = await org.Http.SendAsync(request);
        return new Sent(
            response.StatusCode,
            await response.Content.ReadAsStringAsync(),
            response.Content.Headers.ContentType?.ToString(),
            response.Headers.TryGetValues("Idempotent-Replayed", out var values) ? string.Join(",", values) : null);
    }

    private static HttpRequestMessage Request(string url, string? body, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(url, UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (key is not null)
        {
            Assert.True(request.Headers.TryAddWithoutValidation("Idempotency-Key", key));
        }

        return request;
    }

    private sealed record KeyRow(string Key, byte[] Mac, string MacKeyId, int Status, string Body, long? SourceId);

    private async Task<List<KeyRow>> ReadKeysAsync(string organization)
    {
        await using var connection = await app.Services.GetRequiredService<Database>().OpenAsync();
        await using var command = connection.Command("""
            SELECT key, request_mac, mac_key_id, response_status, response_body, source_id FROM idempotency_keys
            WHERE organization_id = (SELECT id FROM organizations WHERE name = @org)
            """).With("@org", organization);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<KeyRow>();
        while (await reader.ReadAsync())
        {
            rows.Add(new KeyRow(
                reader.GetString(0), (byte[])reader.GetValue(1), reader.GetString(2), Convert.ToInt32(reader.GetValue(3), System.Globalization.CultureInfo.InvariantCulture),
                reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetInt64(5)));
        }

        return rows;
    }

    private async Task<long> CountKeysAsync(string organization) => (await ReadKeysAsync(organization)).Count;

    /// <summary>Moves a stored key back in time, as if it had been used <paramref name="by"/> earlier.</summary>
    private Task AgeKeyAsync(string organization, string key, TimeSpan by) => ExecuteAsync(
        "UPDATE idempotency_keys SET created_at = created_at - @by WHERE organization_id = (SELECT id FROM organizations WHERE name = @org) AND key = @key",
        ("@by", (long)by.TotalMilliseconds), ("@org", organization), ("@key", key));

    private async Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await app.Services.GetRequiredService<Database>().OpenAsync();
        await using var command = connection.Command(sql);
        foreach (var (name, value) in parameters)
        {
            command.With(name, value);
        }

        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }
}
