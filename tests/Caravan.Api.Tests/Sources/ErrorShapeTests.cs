using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>The error table of section 1: 400 malformed, 405, 413, 415 and 500, with their exact bodies.</summary>
public sealed class ErrorShapeTests(CaravanApp app)
{
    private const int Limit = 1024 * 1024;

    // ---- 405 ----

    [Theory]
    [InlineData("POST", "/api/v1/sources/{id}/")]
    [InlineData("POST", "/api/v1/sources/{id}")]
    [InlineData("GET", "/api/v1/sources/{id}/update-config/")]
    [InlineData("PUT", "/api/v1/sources/{id}/update-config/")]
    [InlineData("POST", "/api/v1/sources/{id}/update-config/")]
    [InlineData("DELETE", "/api/v1/sources/{id}/update-config/")]
    [InlineData("POST", "/api/v1/sources/{id}/revisions/")]
    [InlineData("PUT", "/api/v1/sources/{id}/revisions/")]
    [InlineData("PATCH", "/api/v1/sources/{id}/revisions")]
    [InlineData("DELETE", "/api/v1/sources/{id}/revisions/")]
    [InlineData("DELETE", "/api/v1/sources/")]
    [InlineData("DELETE", "/api/v1/sources")]
    [InlineData("PUT", "/api/v1/sources/")]
    [InlineData("PATCH", "/api/v1/sources/")]
    [InlineData("GET", "/api/v1/sources/add/")]
    [InlineData("DELETE", "/api/v1/sources/add/")]
    [InlineData("GET", "/api/v1/sources/add/postgres/")]
    [InlineData("PUT", "/api/v1/sources/add/mysql/")]
    public async Task A_method_a_route_does_not_have_is_405_with_the_drf_body(string method, string url)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        var body = method is "GET" or "DELETE" ? null : """{"account_name": "x"}""";

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        answer.AssertExactly(HttpStatusCode.MethodNotAllowed, $$"""{"detail":"Method \"{{method}}\" not allowed."}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    // ---- 415 ----

    [Theory]
    [MemberData(nameof(WriteRoutesWithMediaTypes))]
    public async Task A_body_that_is_not_json_is_415_and_nothing_is_written(string method, string url, string mediaType)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        var body = mediaType == "text/plain"
            ? """{"account_name": "Renamed", "type": "postgres"}"""
            : "account_name=Renamed&type=postgres";

        var answer = await org.Http.SendAsync(method, url.WithId(id), body, mediaType);

        answer.AssertExactly(HttpStatusCode.UnsupportedMediaType, $$"""{"detail":"Unsupported media type \"{{mediaType}}\" in request."}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(WriteRoutes))]
    public async Task Multipart_form_data_is_415(string method, string url)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(url.WithId(id), UriKind.Relative));
        using var form = new MultipartFormDataContent { { new StringContent("Renamed"), "account_name" }, { new StringContent("postgres"), "type" } };
        request.Content = form;

        var answer = await org.Http.ExchangeAsync(request);

        answer.AssertStatus(HttpStatusCode.UnsupportedMediaType);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        Assert.StartsWith("""{"detail":"Unsupported media type \"multipart/form-data""", answer.Body, StringComparison.Ordinal);
        Assert.EndsWith("""\" in request."}""", answer.Body, StringComparison.Ordinal);
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    // ---- 413 ----

    [Theory]
    [MemberData(nameof(WriteRoutes))]
    public async Task A_body_over_1_MiB_is_413_and_nothing_is_written(string method, string url)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        var body = AccountNameBodyOfLength(Limit + 1);

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        answer.AssertExactly(HttpStatusCode.RequestEntityTooLarge, """{"detail":"Request body too large."}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(WriteRoutes))]
    public async Task A_body_over_1_MiB_without_a_content_length_is_413(string method, string url)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(url.WithId(id), UriKind.Relative));
        using var content = new UnknownLengthContent(Encoding.UTF8.GetBytes(AccountNameBodyOfLength(Limit + 1)));
        request.Content = content;

        var answer = await org.Http.ExchangeAsync(request);

        answer.AssertExactly(HttpStatusCode.RequestEntityTooLarge, """{"detail":"Request body too large."}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(WriteRoutes))]
    public async Task A_body_of_exactly_1_MiB_is_read_and_validated(string method, string url)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, url.WithId(id), AccountNameBodyOfLength(Limit));

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.NotNull(answer.Json["errors"]!["account_name"]);
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    // ---- 400: not JSON, not an object ----

    [Theory]
    [MemberData(nameof(WriteRoutesWithMalformedBodies))]
    public async Task A_body_that_is_not_valid_json_is_400_malformed(string method, string url, string body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        var json = answer.Json.AsObject();
        Assert.Equal(["error", "errors"], json.Select(p => p.Key));
        Assert.StartsWith("Malformed JSON: ", json["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(json["error"]!.GetValue<string>().Length > "Malformed JSON: ".Length);
        Assert.Equal("{}", json["errors"]!.Compact());
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(WriteRoutesWithNonObjects))]
    public async Task A_json_body_that_is_not_an_object_is_400_expected_an_object(string method, string url, string body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        answer.AssertExactly(HttpStatusCode.BadRequest, """{"error":"Expected a JSON object.","errors":{}}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(WriteRoutes))]
    public async Task A_body_that_is_not_utf8_is_400_malformed(string method, string url)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(url.WithId(id), UriKind.Relative));
        using var content = new ByteArrayContent([.. "{\"account_name\": \"a"u8, 0xFF, 0xFE, .. "\"}"u8]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Content = content;

        var answer = await org.Http.ExchangeAsync(request);

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.StartsWith("Malformed JSON: ", answer.Json["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("{}", answer.Json["errors"]!.Compact());
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(WriteRoutesWithLoneSurrogates))]
    public async Task A_string_with_a_lone_surrogate_escape_is_a_400_not_a_500(string method, string url, string body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        // Not text a person can read back: refused as malformed or as a bad value, never a server error.
        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal(["error", "errors"], answer.Json.AsObject().Select(p => p.Key));
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Fact]
    public async Task The_parser_message_does_not_repeat_a_secret_from_the_body()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);

        var answer = await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"password": "Sup3rS3cretValue" oops}""");

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.StartsWith("Malformed JSON: ", answer.Json["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain("Sup3rS3cret", answer.Body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("PATCH", "/api/v1/sources/{id}/update-config/", "")]
    [InlineData("PATCH", "/api/v1/sources/{id}/update-config/", "  \n")]
    [InlineData("PATCH", "/api/v1/sources/{id}/", "")]
    public async Task An_empty_patch_body_counts_as_an_empty_object(string method, string url, string body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var settings = (await app.StoredSourceAsync(id)).SettingsJson;

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        Assert.Equal(id, answer.Json["id"]!.GetValue<long>());
        Assert.Equal(settings, (await app.StoredSourceAsync(id)).SettingsJson);
    }

    [Fact]
    public async Task An_empty_update_config_body_without_a_content_type_counts_as_an_empty_object()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);

        var answer = await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/");

        answer.AssertExactly(HttpStatusCode.OK, $$"""{"id":{{id}},"account_name":"PostgreSQL","type":"POSTGRES"}""");
    }

    // ---- 500 ----

    [Theory]
    [InlineData("GET", "/api/v1/sources/{id}/schemas/", null)]
    [InlineData("PATCH", "/api/v1/sources/{id}/update-config/", """{"port": 6543}""")]
    [InlineData("PUT", "/api/v1/sources/{id}/", """{"account_name": "x"}""")]
    public async Task An_unexpected_failure_is_500_with_a_trace_id_and_nothing_else(string method, string url, string? body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        await CorruptAsync(id);

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        answer.AssertStatus(HttpStatusCode.InternalServerError);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        var json = answer.Json.AsObject();
        Assert.Equal(["detail", "trace_id"], json.Select(p => p.Key));
        Assert.Equal("Internal server error.", json["detail"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(json["trace_id"]!.GetValue<string>()));
        Assert.DoesNotContain("at Caravan", answer.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", answer.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("not json", answer.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("db.example.com", answer.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_failures_carry_their_own_trace_ids()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        await CorruptAsync(id);

        // update-config reads the stored settings, which the corruption made unreadable.
        var first = await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 6543}""");
        var second = await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 6543}""");

        Assert.NotEqual(first.Json["trace_id"]!.GetValue<string>(), second.Json["trace_id"]!.GetValue<string>());
    }

    // ---- content type ----

    [Fact]
    public async Task Every_json_answer_is_application_json_with_utf8()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var anonymous = app.CreateClient();

        Answer[] answers =
        [
            await org.Http.GetRawAsync("/api/v1/sources/"),
            await org.Http.GetRawAsync($"/api/v1/sources/{id}/"),
            await org.Http.SendAsync("POST", "/api/v1/sources/", Wire.Postgres),
            await org.Http.SendAsync("POST", "/api/v1/sources/add/", """{"account_name": "L", "type": "mysql"}"""),
            await org.Http.SendAsync("PUT", $"/api/v1/sources/{id}/", """{"account_name": "R"}"""),
            await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/", """{"account_name": "R"}"""),
            await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 1}"""),
            await org.Http.SendAsync("POST", "/api/v1/sources/", """{"type": "nope"}"""),
            await org.Http.SendAsync("POST", "/api/v1/sources/", "{bad"),
            await anonymous.GetRawAsync("/api/v1/sources/"),
            await org.Http.GetRawAsync("/api/v1/sources/999999999999/"),
            await org.Http.GetRawAsync("/api/v1/sources/?page=9"),
            await org.Http.SendAsync("POST", $"/api/v1/sources/{id}/", "{}"),
            await org.Http.SendAsync("POST", "/api/v1/sources/", "{}", "text/plain"),
            await org.Http.SendAsync("POST", "/api/v1/sources/", AccountNameBodyOfLength(Limit + 1)),
        ];

        Assert.All(answers, answer => Assert.True(answer.ContentType == Wire.JsonContentType, answer.ToString()));
    }

    public static TheoryData<string, string> WriteRoutes() => Wire.WriteRoutes();

    public static TheoryData<string, string, string> WriteRoutesWithMediaTypes() =>
        Cross(["text/plain", "application/x-www-form-urlencoded"]);

    public static TheoryData<string, string, string> WriteRoutesWithMalformedBodies() =>
        Cross(["{bad", """{"account_name": "x" """, """{"account_name": "x"} trailing""", """{"account_name": "x"}{}""",
            """{"account_name": "a", "account_name": "b"}""", "{'account_name': 'x'}", """{"account_name": "x",}""",
            "{\"account_name\": " + new string('[', 100) + new string(']', 100) + "}"]);

    public static TheoryData<string, string, string> WriteRoutesWithLoneSurrogates() =>
        Cross(["""{"account_name": "x\ud800y", "type": "postgres"}""", """{"account_name": "\udc00"}""",
            """{"type": "postgres", "hostname": "db.example.com", "username": "u\udc00", "password": "p", "database_name": "d"}"""]);

    public static TheoryData<string, string, string> WriteRoutesWithNonObjects() =>
        Cross(["null", "[]", "[{\"account_name\": \"x\"}]", "1", "\"x\"", "true"]);

    private static TheoryData<string, string, string> Cross(string[] values)
    {
        var data = new TheoryData<string, string, string>();
        foreach (var row in Wire.WriteRoutes())
        {
            var (method, url) = row.Data;
            foreach (var value in values)
            {
                data.Add(method, url, value);
            }
        }

        return data;
    }

    /// <summary>A valid JSON object of exactly <paramref name="length"/> bytes: one long account name.</summary>
    private static string AccountNameBodyOfLength(int length)
    {
        const string prefix = "{\"account_name\": \"";
        const string suffix = "\"}";
        var body = prefix + new string('a', length - prefix.Length - suffix.Length) + suffix;
        Assert.Equal(length, Encoding.UTF8.GetByteCount(body));
        return body;
    }

    private async Task CorruptAsync(long id)
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync();
        await using var command = connection.Command("UPDATE sources SET settings = 'not json' WHERE id = @id").With("@id", id);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    /// <summary>A body sent without a Content-Length (chunked), so the limit must hold while reading.</summary>
    private sealed class UnknownLengthContent : HttpContent
    {
        private readonly byte[] _bytes;

        public UnknownLengthContent(byte[] bytes)
        {
            _bytes = bytes;
            Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) =>
            stream.WriteAsync(_bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
