using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// The API pieces the web console stands on, over HTTP on this run's store: the source-types
/// route, the list's search and include=last_test, the streaming test mode, and how /console/ is served.
/// </summary>
public sealed partial class ConsoleApiTests(CaravanApp app)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // ---- GET /api/v1/source-types/ ----

    [Fact]
    public async Task Source_types_list_every_type_and_field_the_API_validates_with()
    {
        var org = await app.NewOrganizationAsync();

        var body = await org.Http.GetAsync("/api/v1/source-types/", Ct).Expect(HttpStatusCode.OK);

        var listed = body["results"]!.AsArray();
        Assert.Equal(SourceTypes.All.Select(t => t.Name), listed.Select(t => t!["type"]!.GetValue<string>()));
        foreach (var type in SourceTypes.All)
        {
            var entry = listed.Single(t => t!["type"]!.GetValue<string>() == type.Name)!;
            Assert.Equal(type.DisplayName, entry["display_name"]!.GetValue<string>());
            var fields = entry["fields"]!.AsArray();
            Assert.Equal(type.Fields.Select(f => f.Name), fields.Select(f => f!["name"]!.GetValue<string>()));
            foreach (var field in type.Fields)
            {
                var described = fields.Single(f => f!["name"]!.GetValue<string>() == field.Name)!;
                Assert.Equal(field.IsSecret, described["secret"]!.GetValue<bool>());
                Assert.Equal(field.Required, described["required"]!.GetValue<bool>());
                Assert.Equal(field.Description, described["help"]!.GetValue<string>());
                Assert.False(string.IsNullOrWhiteSpace(described["label"]!.GetValue<string>()));
                Assert.Equal(field.Default?.ToString(), described["default"]?.ToJsonString());
            }

            Assert.Equal(type.Forms.Select(f => f.Name), entry["forms"]!.AsArray().Select(f => f!["name"]!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task Source_types_describe_the_two_forms_of_PostgreSQL_and_the_Snowflake_key_pair()
    {
        var org = await app.NewOrganizationAsync();

        var body = await org.Http.GetAsync("/api/v1/source-types", Ct).Expect(HttpStatusCode.OK);

        var postgres = body["results"]!.AsArray().Single(t => t!["type"]!.GetValue<string>() == "POSTGRES")!;
        Assert.Equal(
            """[{"name":"fields","label":"Individual fields","fields":["hostname","port","username","password","database_name"],"required":["hostname","username","password","database_name"]},{"name":"connection_string","label":"Connection string","fields":["connection_string"],"required":["connection_string"]}]""",
            postgres["forms"]!.Compact());
        var port = postgres["fields"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == "port")!;
        Assert.Equal("""{"name":"port","label":"Port","kind":"port","required":false,"default":5432,"secret":false,"minimum":1,"maximum":65535,"max_length":null,"max_items":null,"help":"Port number"}""", port.Compact());
        Assert.Null(postgres["key_pair"]);
        var snowflake = body["results"]!.AsArray().Single(t => t!["type"]!.GetValue<string>() == "SNOWFLAKE")!;
        Assert.Equal("""{"unless":["password","public_key","private_key"]}""", snowflake["key_pair"]!.Compact());
    }

    [Fact]
    public async Task Source_types_need_an_API_key()
    {
        using var client = app.CreateClient();

        var body = await client.GetAsync("/api/v1/source-types/", Ct).Expect(HttpStatusCode.Unauthorized);

        Assert.Equal("""{"detail":"Authentication credentials were not provided."}""", body.Compact());
    }

    // ---- search ----

    [Fact]
    public async Task Search_filters_by_a_case_insensitive_part_of_the_name_and_keeps_the_pagination()
    {
        var org = await app.NewOrganizationAsync();
        foreach (var name in new[] { "Warehouse east", "Sales", "warehouse WEST", "Old WAREHOUSE", "Marketing" })
        {
            await org.Http.CreateSourceAsync(MotherDuck(name));
        }

        var first = await org.Http.GetAsync("/api/v1/sources/?search=wareHouse&page_size=2", Ct).Expect(HttpStatusCode.OK);
        Assert.Equal(3, first["count"]!.GetValue<long>());
        Assert.Equal(["Warehouse east", "warehouse WEST"], Names(first));
        Assert.Null(first["previous"]);
        Assert.Equal("http://localhost/api/v1/sources/?search=wareHouse&page_size=2&page=2", first["next"]!.GetValue<string>());

        var second = await org.Http.GetAsync("/api/v1/sources/?search=wareHouse&page_size=2&page=2", Ct).Expect(HttpStatusCode.OK);
        Assert.Equal(["Old WAREHOUSE"], Names(second));
        Assert.Null(second["next"]);
        Assert.Equal("http://localhost/api/v1/sources/?search=wareHouse&page_size=2", second["previous"]!.GetValue<string>());

        var last = await org.Http.GetAsync("/api/v1/sources/?search=warehouse&page_size=2&page=last", Ct).Expect(HttpStatusCode.OK);
        Assert.Equal(["Old WAREHOUSE"], Names(last));
        Assert.Equal("""{"detail":"Invalid page."}""",
            (await org.Http.GetAsync("/api/v1/sources/?search=warehouse&page_size=2&page=3", Ct).Expect(HttpStatusCode.NotFound)).Compact());
        var none = await org.Http.GetAsync("/api/v1/sources/?search=nothing-like-it", Ct).Expect(HttpStatusCode.OK);
        Assert.Equal("""{"count":0,"next":null,"previous":null,"results":[]}""", none.Compact());
    }

    [Fact]
    public async Task Search_treats_wildcards_as_text_sees_only_the_callers_live_sources_and_an_empty_search_is_the_plain_list()
    {
        var org = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        await org.Http.CreateSourceAsync(MotherDuck("100% sure"));
        await org.Http.CreateSourceAsync(MotherDuck("100 percent"));
        await org.Http.CreateSourceAsync(MotherDuck("a_b"));
        await org.Http.CreateSourceAsync(MotherDuck("axb"));
        var deleted = await org.Http.CreateSourceAsync(MotherDuck("100% gone"));
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{deleted}/", UriKind.Relative), Ct).Expect(HttpStatusCode.NoContent);
        await other.Http.CreateSourceAsync(MotherDuck("100% theirs"));

        Assert.Equal(["100% sure"], Names(await org.Http.GetAsync("/api/v1/sources/?search=0%25", Ct).Expect(HttpStatusCode.OK)));
        Assert.Equal(["a_b"], Names(await org.Http.GetAsync("/api/v1/sources/?search=_", Ct).Expect(HttpStatusCode.OK)));
        var plain = await org.Http.GetAsync("/api/v1/sources/", Ct).Expect(HttpStatusCode.OK);
        Assert.Equal(plain.Compact(), (await org.Http.GetAsync("/api/v1/sources/?search=%20", Ct).Expect(HttpStatusCode.OK)).Compact()
            .Replace("?search=%20", string.Empty, StringComparison.Ordinal));
        Assert.Equal(4, plain["count"]!.GetValue<long>());
    }

    // ---- include=last_test ----

    [Fact]
    public async Task The_last_test_of_each_source_is_kept_and_listed_on_request_only()
    {
        var org = await app.NewOrganizationAsync();
        var password = Unique.Secret("lasttest-");
        var closed = Loopback.ClosedPort();
        var tested = await org.Http.CreateSourceAsync(Postgres("Tested", closed, password));
        var untested = await org.Http.CreateSourceAsync(Postgres("Untested", closed, password));
        var before = await org.Http.GetAsync("/api/v1/sources/", Ct).Expect(HttpStatusCode.OK);

        var report = await org.Http.PostJsonAsync($"/api/v1/sources/{tested}/test/", "").Expect(HttpStatusCode.OK);
        Assert.False(report["ok"]!.GetValue<bool>());

        Assert.Equal(before.Compact(), (await org.Http.GetAsync("/api/v1/sources/", Ct).Expect(HttpStatusCode.OK)).Compact());
        var listed = await org.Http.GetAsync("/api/v1/sources/?include=last_test", Ct).Expect(HttpStatusCode.OK);
        var results = listed["results"]!.AsArray();
        var last = results.Single(r => r!["id"]!.GetValue<long>() == tested)!["last_test"]!;
        Assert.False(last["ok"]!.GetValue<bool>());
        Assert.Equal("connect", last["failed_step"]!.GetValue<string>());
        Assert.Equal("port_closed", last["code"]!.GetValue<string>());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", last["at"]!.GetValue<string>());
        Assert.Equal(["ok", "failed_step", "code", "duration_ms", "at"], last.AsObject().Select(p => p.Key));
        Assert.Null(results.Single(r => r!["id"]!.GetValue<long>() == untested)!["last_test"]);
        Assert.Equal(
            ["id", "account_name", "type", "created_at", "is_fully_configured", "last_test"],
            results[0]!.AsObject().Select(p => p.Key));
        Assert.DoesNotContain(password, listed.Compact(), StringComparison.Ordinal);

        var searched = await org.Http.GetAsync("/api/v1/sources/?include=last_test&search=untest", Ct).Expect(HttpStatusCode.OK);
        Assert.Equal("""[{"id":ID,"account_name":"Untested","type":"POSTGRES","created_at":"AT","is_fully_configured":true,"last_test":null}]""",
            Regex.Replace(searched["results"]!.Compact().Replace(untested.ToString(System.Globalization.CultureInfo.InvariantCulture), "ID", StringComparison.Ordinal), "\"created_at\":\"[^\"]+\"", "\"created_at\":\"AT\""));
    }

    [Fact]
    public async Task An_unsaved_test_stores_no_last_test_and_a_deleted_source_records_none()
    {
        var org = await app.NewOrganizationAsync();
        var closed = Loopback.ClosedPort();
        var id = await org.Http.CreateSourceAsync(Postgres("Kept", closed, Unique.Secret("x-")));

        await org.Http.PostJsonAsync("/api/v1/sources/test/", Postgres("Unsaved", closed, Unique.Secret("y-"))).Expect(HttpStatusCode.OK);

        var listed = await org.Http.GetAsync("/api/v1/sources/?include=last_test", Ct).Expect(HttpStatusCode.OK);
        Assert.Null(listed["results"]![0]!["last_test"]);
        Assert.Equal(id, listed["results"]![0]!["id"]!.GetValue<long>());
    }

    // ---- streaming test mode ----

    [Fact]
    public async Task A_streamed_test_sends_the_plan_each_step_as_it_finishes_and_the_report_last()
    {
        var org = await app.NewOrganizationAsync();
        var password = Unique.Secret("stream-");
        var closed = Loopback.ClosedPort();
        var id = await org.Http.CreateSourceAsync(Postgres("Streamed", closed, password));
        var plain = await org.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "").Expect(HttpStatusCode.OK);

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/sources/{id}/test/");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        using var response = await org.Http.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        var lines = (await response.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();

        Assert.Equal("""{"plan":["resolve","egress","connect","tls","authenticate","query","schemas"]}""", lines[0].Compact());
        var steps = lines.Skip(1).SkipLast(1).Select(l => l["step"]!).ToList();
        Assert.Equal(["resolve", "egress", "connect"], steps.Select(s => s["name"]!.GetValue<string>()));
        Assert.Equal("failed", steps[^1]["status"]!.GetValue<string>());
        var report = lines[^1]["report"]!;
        Assert.Equal(Shape(plain), Shape(report));
        Assert.DoesNotContain(password, string.Join('\n', lines.Select(l => l.Compact())), StringComparison.Ordinal);
        var listed = await org.Http.GetAsync("/api/v1/sources/?include=last_test", Ct).Expect(HttpStatusCode.OK);
        Assert.Equal("port_closed", listed["results"]![0]!["last_test"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Streamed_steps_arrive_while_the_test_is_still_running()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "3" });
        var org = await own.NewOrganizationAsync();
        using var silent = LoopbackListener.Silent();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/sources/test/")
        {
            Content = new StringContent(Postgres("Silent", silent.Port, Unique.Secret("silent-")), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        var clock = Stopwatch.StartNew();

        using var response = await org.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        var lines = new List<(JsonNode Line, TimeSpan At)>();
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            lines.Add((JsonNode.Parse(line)!, clock.Elapsed));
        }

        var connect = lines.Single(l => l.Line["step"]?["name"]?.GetValue<string>() == "connect");
        Assert.Equal("ok", connect.Line["step"]!["status"]!.GetValue<string>());
        var report = lines[^1];
        Assert.False(report.Line["report"]!["ok"]!.GetValue<bool>());
        Assert.True(report.At - connect.At > TimeSpan.FromSeconds(1), $"connect at {connect.At}, report at {report.At}: the steps were not streamed");
    }

    [Fact]
    public async Task A_streamed_unsaved_test_with_an_invalid_body_is_the_usual_400()
    {
        var org = await app.NewOrganizationAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/sources/test/")
        {
            Content = new StringContent("""{"type":"postgres","hostname":"db.example.com"}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));

        var body = await org.Http.SendAsync(request, Ct).Expect(HttpStatusCode.BadRequest);

        Assert.NotNull(body["errors"]!["password"]);
    }

    // ---- /console/ ----

    [Theory]
    [InlineData("/console/", "text/html")]
    [InlineData("/console/app.js", "text/javascript")]
    [InlineData("/console/console.css", "text/css")]
    public async Task The_console_is_served_with_strict_security_headers(string path, string mediaType)
    {
        using var client = app.CreateClient();

        using var response = await client.GetAsync(path, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        var csp = response.AssertBrowserPageHeaders();
        Assert.Contains("script-src 'self';", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", csp, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_console_without_its_slash_redirects_and_unknown_files_are_404()
    {
        using var client = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        using var redirect = await client.GetAsync("/console", Ct);
        using var missing = await client.GetAsync("/console/nothing.js", Ct);

        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        Assert.Equal("/console/", redirect.Headers.Location?.ToString());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task The_console_loads_nothing_from_another_origin_and_has_no_inline_script()
    {
        using var client = app.CreateClient();
        var files = Caravan.Api.WebConsole.ConsoleSite.Files.Keys.ToList();
        Assert.Contains("index.html", files);
        Assert.Contains("app.js", files);

        foreach (var file in files)
        {
            var text = await client.GetStringAsync("/console/" + file, Ct);
            Assert.DoesNotMatch(OriginPattern(), text);
            Assert.DoesNotContain("innerHTML", text, StringComparison.Ordinal);
            Assert.DoesNotContain("localStorage", text, StringComparison.Ordinal);
            Assert.DoesNotContain("document.cookie", text, StringComparison.Ordinal);
            if (file.EndsWith(".html", StringComparison.Ordinal))
            {
                Assert.DoesNotMatch(InlineScriptPattern(), text);
                Assert.DoesNotMatch(InlineHandlerPattern(), text);
                Assert.DoesNotContain("style=", text, StringComparison.Ordinal);
            }
        }
    }

    private static string MotherDuck(string name) =>
        new JsonObject { ["type"] = "motherduck", ["account_name"] = name, ["database_name"] = "db", ["token"] = Unique.Secret("tok-") }.ToJsonString();

    private static string Postgres(string name, int port, string password) =>
        Pg.Body("127.0.0.1", port, password, username: "someone", database: "db", accountName: name);

    private static List<string> Names(JsonNode page) => [.. page["results"]!.AsArray().Select(r => r!["account_name"]!.GetValue<string>())];

    private static string Shape(JsonNode report) => Regex.Replace(report.Compact(), "\"duration_ms\":\\d+", "\"duration_ms\":0");

    [GeneratedRegex(@"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}")]
    private static partial Regex OriginPattern();

    [GeneratedRegex(@"<[^>]*\son[a-z]+\s*=", RegexOptions.IgnoreCase)]
    private static partial Regex InlineHandlerPattern();

    [GeneratedRegex(@"<script(?![^>]*\bsrc=)[^>]*>")]
    private static partial Regex InlineScriptPattern();
}
