using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Query;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// Issue #12, item 1: a server whose error page repeats the request puts the password in the
/// message, and where a message was cut before it was masked, the part of the secret before the cut
/// got through. Servers that do this (a ClickHouse echoing the request headers, warehouses quoting
/// the request), with the secret placed so that it straddles each cut; every message path (test
/// report, streamed test, discovery 502, query 422/502/504, MCP tool errors, log lines) is searched
/// for any six characters of it.
/// </summary>
public sealed class EchoedSecretTests(CaravanApp app)
{
    /// <summary>
    /// The user name of the issue's example, padded to 104 characters: a user name is no secret, so
    /// whoever may edit a source can move the password in the echo to where a cut falls.
    /// </summary>
    private static readonly string PaddedUser = "report_" + new string('u', 97);

    private const string ClickHouseWords = "Request failed; the request's headers were";

    [Theory]
    [InlineData(280)] // The issue's example: ClickHouse's text was cut at 300, after 20 of the password's 21 characters.
    [InlineData(TestRun.MessageLimit - 56)] // Across the cut of a test step's and a discovery's message.
    [InlineData(QueryRun.MessageLimit - 56)] // Across the cut of a query's message.
    public async Task A_password_that_a_ClickHouse_error_page_repeats_leaves_through_no_message_path(int passwordAt)
    {
        var password = SecretFragments.New(21);
        await using var clickHouse = await StandIn.StartAsync(request => ClickHouseEcho(request, passwordAt));
        var org = await app.NewOrganizationAsync();
        var body = new JsonObject
        {
            ["type"] = "clickhouse", ["account_name"] = "Echo", ["host"] = "127.0.0.1", ["port"] = new Uri(clickHouse.Url).Port,
            ["username"] = PaddedUser, ["password"] = password, ["secure"] = false,
        }.ToJsonString();
        var id = await org.Http.CreateSourceAsync(body);

        var report = await SendAsync(org.Http, HttpMethod.Post, $"/api/v1/sources/{id}/test/", "{}");
        var answers = new List<string>
        {
            report,
            await SendAsync(org.Http, HttpMethod.Post, $"/api/v1/sources/{id}/test/", "{}", StreamedTest.MediaType),
            await SendAsync(org.Http, HttpMethod.Post, "/api/v1/sources/test/", body),
            await SendAsync(org.Http, HttpMethod.Get, $"/api/v1/sources/{id}/schemas/"),
            await SendAsync(org.Http, HttpMethod.Post, $"/api/v1/sources/{id}/query/", """{"sql": "SELECT 1"}"""),
            await SendAsync(org.Http, HttpMethod.Post, $"/api/v1/sources/{id}/query/", """{"sql": "SELECT syntax_error"}"""),
            await SendAsync(org.Http, HttpMethod.Post, $"/api/v1/sources/{id}/query/", """{"sql": "SELECT sleep_a_while"}"""),
        };
        await using (var mcp = await McpKit.ConnectAsync(app, org.Key))
        {
            answers.Add(McpKit.Text(await mcp.CallAsync("list_schemas", new() { ["source_id"] = id })));
            answers.Add(McpKit.Text(await mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT 1" })));
            answers.Add(McpKit.Text(await mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT syntax_error" })));
        }

        SecretFragments.AssertNone(answers, [password], "the answers");
        SecretFragments.AssertNone(app.Logs.Lines, [password], "the log lines");

        // The echo did reach every path: the refusal, the syntax error and the time-out are the server's.
        Assert.Contains("\"code\":\"auth_failed\"", report, StringComparison.Ordinal);
        Assert.Contains(ClickHouseWords, report, StringComparison.Ordinal);
        Assert.StartsWith("502 ", answers[3], StringComparison.Ordinal);
        Assert.StartsWith("502 ", answers[4], StringComparison.Ordinal);
        Assert.Contains(SecretScrubber.Mask, answers[4], StringComparison.Ordinal);
        Assert.StartsWith("422 ", answers[5], StringComparison.Ordinal);
        Assert.StartsWith("504 ", answers[6], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Databricks_error_that_repeats_the_access_token_leaves_no_part_of_it()
    {
        var token = "dapi" + SecretFragments.New(32);
        var answers = await AllPathsAsync("DATABRICKS", DatabricksEcho, token, new JsonObject
        {
            ["type"] = "databricks", ["account_name"] = "Lakehouse", ["server_hostname"] = "adb-1234567890.1.azuredatabricks.net",
            ["http_path"] = "/sql/1.0/warehouses/abc123def", ["access_token"] = token,
        });

        Assert.Contains("\"code\":\"auth_failed\"", answers[0], StringComparison.Ordinal);
        Assert.StartsWith("422 ", answers[4], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Snowflake_login_error_that_repeats_the_request_leaves_no_part_of_the_password()
    {
        var password = SecretFragments.New(24);
        var answers = await AllPathsAsync("SNOWFLAKE", SnowflakeLoginEcho, password, new JsonObject
        {
            ["type"] = "snowflake", ["account_name"] = "Snow", ["account"] = "xy12345.us-east-1", ["user"] = "analyst", ["password"] = password,
        });

        Assert.Contains("\"code\":\"auth_failed\"", answers[0], StringComparison.Ordinal);
        Assert.StartsWith("502 ", answers[3], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Snowflake_statement_error_that_repeats_the_session_token_leaves_no_part_of_it()
    {
        var sessionToken = SecretFragments.New(40);
        await using var rig = await Rig.StartAsync("SNOWFLAKE", request => SnowflakeStatementEcho(request, sessionToken));
        var id = await rig.Http.CreateSourceAsync(new JsonObject
        {
            ["type"] = "snowflake", ["account_name"] = "Snow", ["account"] = "xy12345.us-east-1", ["user"] = "analyst", ["password"] = "pw-Secret-4711",
        }.ToJsonString());

        var answer = await SendAsync(rig.Http, HttpMethod.Post, $"/api/v1/sources/{id}/query/", """{"sql": "SELECT syntax_error"}""");

        SecretFragments.AssertNone([answer], [sessionToken], "the answer");
        SecretFragments.AssertNone(rig.App.Logs.Lines, [sessionToken], "the log lines");
        Assert.StartsWith("422 ", answer, StringComparison.Ordinal);
        Assert.Contains(SecretScrubber.Mask, answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_BigQuery_error_that_repeats_the_access_token_leaves_no_part_of_it()
    {
        var accessToken = "ya29." + SecretFragments.New(60);
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var answers = await AllPathsAsync("BIGQUERY", request => BigQueryEcho(request, accessToken), accessToken, new JsonObject
        {
            ["type"] = "bigquery", ["account_name"] = "BQ",
            ["service_account_key"] = new JsonObject
            {
                ["type"] = "service_account", ["project_id"] = "acme-analytics", ["private_key_id"] = "key-id-77",
                ["private_key"] = key.ExportPkcs8PrivateKeyPem(), ["client_email"] = "caravan@acme-analytics.iam.gserviceaccount.com",
                ["token_uri"] = "https://oauth2.googleapis.com/token",
            },
        });

        Assert.Contains("\"code\":\"insufficient_privilege\"", answers[0], StringComparison.Ordinal);
        Assert.StartsWith("422 ", answers[4], StringComparison.Ordinal);
    }

    /// <summary>
    /// A source on a stand-in of the type's service, through every path: the test report, the
    /// streamed test, discovery, a query the service refuses and one with a syntax error, and MCP's
    /// list_schemas and run_query. Asserts that no answer and no log line holds any six
    /// characters of <paramref name="secret"/>, and returns the answers in that order.
    /// </summary>
    private static async Task<List<string>> AllPathsAsync(string type, Func<Recorded, Reply?> service, string secret, JsonObject source)
    {
        await using var rig = await Rig.StartAsync(type, service);
        var id = await rig.Http.CreateSourceAsync(source.ToJsonString());
        var answers = new List<string>
        {
            await SendAsync(rig.Http, HttpMethod.Post, $"/api/v1/sources/{id}/test/", "{}"),
            await SendAsync(rig.Http, HttpMethod.Post, $"/api/v1/sources/{id}/test/", "{}", StreamedTest.MediaType),
            await SendAsync(rig.Http, HttpMethod.Get, $"/api/v1/sources/{id}/schemas/"),
            await SendAsync(rig.Http, HttpMethod.Post, $"/api/v1/sources/{id}/query/", """{"sql": "SELECT 1"}"""),
            await SendAsync(rig.Http, HttpMethod.Post, $"/api/v1/sources/{id}/query/", """{"sql": "SELECT syntax_error"}"""),
        };
        await using var mcp = await McpKit.ConnectAsync(rig.App, rig.Org.Key);
        answers.Add(McpKit.Text(await mcp.CallAsync("list_schemas", new() { ["source_id"] = id })));
        answers.Add(McpKit.Text(await mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT syntax_error" })));
        SecretFragments.AssertNone(answers, [secret], "the answers");
        SecretFragments.AssertNone(rig.App.Logs.Lines, [secret], "the log lines");
        return answers;
    }

    private static async Task<string> SendAsync(HttpClient client, HttpMethod method, string url, string? json = null, string? accept = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(url, UriKind.Relative));
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        if (accept is not null)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        }

        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        return $"{(int)response.StatusCode} {response.Headers} {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}";
    }

    /// <summary>
    /// Text that puts what follows it at <paramref name="at"/>: a server's words padded out, as a
    /// longer page or a longer user name would.
    /// </summary>
    private static string Lead(string words, int at, int between) => words + new string('.', at - words.Length - between);

    /// <summary>
    /// A ClickHouse that answers every statement with an error repeating the request's headers, the
    /// password starting <paramref name="passwordAt"/> characters into the text the driver quotes:
    /// a refused login, or for the statements the query tests send a syntax error or a time-out.
    /// </summary>
    private static Reply ClickHouseEcho(Recorded request, int passwordAt)
    {
        var (code, status) = request.Body.Contains("syntax_error", StringComparison.Ordinal) ? (62, 400)
            : request.Body.Contains("sleep_a_while", StringComparison.Ordinal) ? (159, 500)
            : (516, 401);
        var user = "X-ClickHouse-User: " + request.Header("X-ClickHouse-User") + ", X-ClickHouse-Key: ";
        var line = $"Code: {code}. DB::Exception: {Lead(ClickHouseWords, passwordAt, user.Length)}{user}"
            + $"{request.Header("X-ClickHouse-Key")}, User-Agent: {request.Header("User-Agent")}. (version 23.8.1.1)";
        return new Reply(status, line + "\n", "text/plain");
    }

    /// <summary>
    /// Databricks refusing every statement with a message that repeats the Authorization header
    /// across the 200th character (where the driver used to cut), and failing the query tests'
    /// statement the same way.
    /// </summary>
    private static Reply DatabricksEcho(Recorded request)
    {
        string Said(string words) => Lead(words, 180 - "Authorization: Bearer ".Length, 0) + "Authorization: " + request.Header("Authorization") + ".";
        var statement = request.Method == "POST" && request.Body.Length > 0 ? request.Json["statement"]?.GetValue<string>() : null;
        return statement?.Contains("syntax_error", StringComparison.Ordinal) == true
            ? Reply.Json(new JsonObject
            {
                ["statement_id"] = "s",
                ["status"] = new JsonObject
                {
                    ["state"] = "FAILED",
                    ["error"] = new JsonObject { ["error_code"] = "BAD_REQUEST", ["message"] = Said("[PARSE_SYNTAX_ERROR] Syntax error; request") },
                },
            }.ToJsonString())
            : Reply.Json(401, new JsonObject { ["error_code"] = "UNAUTHENTICATED", ["message"] = Said("Invalid access token") }.ToJsonString());
    }

    /// <summary>Snowflake refusing the login with a message that quotes the request, the password across the 200th character.</summary>
    private static Reply SnowflakeLoginEcho(Recorded request)
    {
        var login = request.Body;
        var passwordAt = login.IndexOf("\"PASSWORD\":\"", StringComparison.Ordinal) + "\"PASSWORD\":\"".Length;
        var said = Lead("Incorrect username or password was specified", 180 - passwordAt, 0) + login;
        return Reply.Json(new JsonObject { ["data"] = null, ["code"] = "390100", ["message"] = said, ["success"] = false }.ToJsonString());
    }

    /// <summary>Snowflake accepting the login, then failing the statement with a message that quotes the session token across the 200th character.</summary>
    private static Reply SnowflakeStatementEcho(Recorded request, string sessionToken)
    {
        if (request.Path == "/session/v1/login-request")
        {
            return Reply.Json(new JsonObject { ["data"] = new JsonObject { ["token"] = sessionToken }, ["success"] = true }.ToJsonString());
        }

        const string header = "Authorization: ";
        var said = Lead("SQL compilation error: syntax error line 1 at position 7; request", 185 - header.Length - "Snowflake Token=\"".Length, 0)
            + header + request.Header("Authorization");
        return Reply.Json(new JsonObject { ["data"] = null, ["code"] = "001003", ["message"] = said, ["success"] = false }.ToJsonString());
    }

    /// <summary>Google granting the token, then BigQuery refusing every call with a message that repeats the token across the 200th character.</summary>
    private static Reply BigQueryEcho(Recorded request, string accessToken)
    {
        if (request.Path == "/token")
        {
            return Reply.Json(new JsonObject { ["access_token"] = accessToken, ["expires_in"] = 3599, ["token_type"] = "Bearer" }.ToJsonString());
        }

        const string header = "Authorization: Bearer ";
        var said = Lead("Access Denied: Project acme-analytics: the request", 180 - header.Length, 0) + header + accessToken;
        return Reply.Json(403, new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["code"] = 403, ["message"] = said,
                ["errors"] = new JsonArray(new JsonObject { ["message"] = said, ["domain"] = "global", ["reason"] = "accessDenied" }),
            },
        }.ToJsonString());
    }
}
