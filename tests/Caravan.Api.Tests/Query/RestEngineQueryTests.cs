using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Query;

/// <summary>The SNOWFLAKE, BIGQUERY and DATABRICKS query engines against local stand-ins of their REST APIs.</summary>
public sealed class RestEngineQueryTests : IDisposable
{
    private const string SnowflakeSource = """
        {"type": "snowflake", "account_name": "Snow", "account": "xy12345.us-east-1", "user": "analyst",
         "warehouse": "COMPUTE_WH", "database": "SALES", "role": "READER"}
        """;

    private const string SnowflakePassword = "pw-Secret-4711";
    private const string SnowflakePasswordSource = $$"""
        {"type": "snowflake", "account_name": "Snow", "account": "xy12345.us-east-1", "user": "analyst", "password": "{{SnowflakePassword}}",
         "warehouse": "COMPUTE_WH", "database": "SALES", "role": "READER"}
        """;

    private const string SessionToken = "session-token-0f9e8d7c";
    private const string Qrmk = "qrmk-Key-9a8b7c6d5e4f+/=";

    private const string DatabricksToken = "dapi0123456789abcdef-secret";
    private const string DatabricksSource = $$"""
        {"type": "databricks", "account_name": "Lakehouse", "server_hostname": "adb-1234567890.1.azuredatabricks.net",
         "http_path": "/sql/1.0/warehouses/abc123def", "access_token": "{{DatabricksToken}}", "catalog": "main"}
        """;

    private const string Project = "acme-analytics";
    private const string AccessToken = "ya29.stand-in-access-token-5d4c3b2a";

    private readonly RSA _key = RSA.Create(2048);

    public void Dispose() => _key.Dispose();

    // ---------------------------------------------------------------- SNOWFLAKE

    [Fact]
    public async Task Snowflake_password_source_logs_in_describes_runs_and_streams_the_next_chunk()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi(running: 1));
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, timeoutMs: 20_000);

        AssertJson(
            """[{"name":"ID","type":"NUMBER(38,0)"},{"name":"PRICE","type":"NUMBER(10,2)"},{"name":"NAME","type":"VARCHAR"},{"name":"OK","type":"BOOLEAN"},{"name":"DAY","type":"DATE"},{"name":"AT","type":"TIMESTAMP_TZ"},{"name":"DOC","type":"VARIANT"}]""",
            answer["columns"]!);
        Assert.Equal(
            """[[1,12.50,"a",true,"2024-01-02","2024-01-01T00:00:00.5Z",{"k":[1,2]}],[2,null,null,false,null,null,null],[3,1.00,"c",false,"1970-01-01","1970-01-01T00:00:00Z",null]]""",
            answer["rows"]!.Compact());
        Assert.False(answer["truncated"]!.GetValue<bool>());

        var requests = rig.StandIn.Requests;
        // Login, the statement described, the statement run, a poll while it runs, the second chunk
        // (the session stays logged in for the source's next query).
        Assert.Equal(
            ["POST /session/v1/login-request", "POST /queries/v1/query-request", "POST /queries/v1/query-request",
             "GET /queries/01b2-query/result", "GET /chunks/1"],
            requests.Select(r => $"{r.Method} {r.Path}"));
        var login = requests[0];
        Assert.Equal("?warehouse=COMPUTE_WH&databaseName=SALES&roleName=READER", login.Query);
        Assert.Equal(
            """{"data":{"ACCOUNT_NAME":"XY12345","LOGIN_NAME":"analyst","PASSWORD":"pw-Secret-4711","CLIENT_APP_ID":"caravan"}}""",
            login.Json.ToJsonString());
        Assert.Null(login.Header("Authorization"));

        var (describe, run) = (requests[1], requests[2]);
        Assert.True(describe.Json["describeOnly"]!.GetValue<bool>());
        Assert.False(run.Json["describeOnly"]!.GetValue<bool>());
        foreach (var query in new[] { describe, run })
        {
            Assert.StartsWith("?requestId=", query.Query, StringComparison.Ordinal);
            Assert.Equal("SELECT * FROM orders", query.Json["sqlText"]!.GetValue<string>());
            Assert.Equal("""{"STATEMENT_TIMEOUT_IN_SECONDS":20,"MULTI_STATEMENT_COUNT":1}""", query.Json["parameters"]!.Compact());
        }

        Assert.NotEqual(describe.Query, run.Query);
        foreach (var request in requests.Skip(1).Where(r => !r.Path.StartsWith("/chunks/", StringComparison.Ordinal)))
        {
            Assert.Equal($"Snowflake Token=\"{SessionToken}\"", request.Header("Authorization"));
        }

        // The chunk goes to the result store with the SSE-C headers for qrmk, never with the session token.
        var chunk = requests[4];
        Assert.Equal("?sig=presigned", chunk.Query);
        Assert.Null(chunk.Header("Authorization"));
        Assert.Equal("AES256", chunk.Header("x-amz-server-side-encryption-customer-algorithm"));
        Assert.Equal(Qrmk, chunk.Header("x-amz-server-side-encryption-customer-key"));
        rig.App.AssertNoSecrets([answer.ToJsonString()], SnowflakePassword, SessionToken, Qrmk);
    }

    [Fact]
    public async Task Snowflake_key_pair_source_logs_in_with_the_JWT_and_is_described_first_too()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi());
        var id = await rig.Http.CreateSourceAsync(SnowflakeSource);

        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK);

        Assert.Equal(3, QueryKit.Rows(answer).Count);
        var requests = rig.StandIn.Requests;
        Assert.Equal(
            ["POST /session/v1/login-request", "POST /queries/v1/query-request", "POST /queries/v1/query-request", "GET /chunks/1"],
            requests.Select(r => $"{r.Method} {r.Path}"));
        var data = requests[0].Json["data"]!.AsObject();
        Assert.Equal(["ACCOUNT_NAME", "AUTHENTICATOR", "CLIENT_APP_ID", "LOGIN_NAME", "TOKEN"], data.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal("SNOWFLAKE_JWT", data["AUTHENTICATOR"]!.GetValue<string>());
        var token = data["TOKEN"]!.GetValue<string>();
        var jwt = Jwt.Decode(token);
        Assert.Equal("XY12345.ANALYST", jwt.Claim("sub"));
        Assert.StartsWith("XY12345.ANALYST.SHA256:", jwt.Claim("iss"), StringComparison.Ordinal);
        Assert.True(requests[1].Json["describeOnly"]!.GetValue<bool>());
        rig.App.AssertNoSecrets([answer.ToJsonString()], await rig.App.RevealAsync(id, "private_key"), token, SessionToken, Qrmk);
    }

    [Fact]
    public async Task Snowflake_truncates_at_max_rows_without_fetching_more_chunks()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi());
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        var one = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 1);
        // Exactly the inline rows: a listed chunk proves there are more, so it is not fetched either.
        var two = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 2);

        Assert.Single(QueryKit.Rows(one));
        Assert.True(one["truncated"]!.GetValue<bool>());
        Assert.Equal(2, QueryKit.Rows(two).Count);
        Assert.True(two["truncated"]!.GetValue<bool>());
        Assert.DoesNotContain(rig.StandIn.Requests, r => r.Path.StartsWith("/chunks/", StringComparison.Ordinal));
        Assert.Single(rig.StandIn.Requests, r => r.Path == "/session/v1/login-request");
    }

    [Theory]
    [InlineData("INSERT INTO orders VALUES (1)")]
    [InlineData("WITH p AS PROCEDURE () RETURNS INT LANGUAGE SQL AS $$ BEGIN DELETE FROM t; RETURN 1; END $$ CALL p()")]
    [InlineData("WITH x AS (SELECT 1) DELETE FROM orders")]
    [InlineData("/* hi */ drop table orders")]
    [InlineData("CALL cleanup()")]
    public async Task Snowflake_refuses_an_obvious_write_without_sending_anything(string sql)
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi());
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        var answer = await rig.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest);

        // Refused as a write, or (a ';' inside a $$ string) as more than one statement: never sent, not even a login.
        var message = answer["errors"]!["sql"]![0]!.GetValue<string>();
        Assert.True(message.Contains("read-only", StringComparison.Ordinal) || sql.Contains("$$", StringComparison.Ordinal), message);
        Assert.Empty(rig.StandIn.Requests);
    }

    [Theory]
    [InlineData(0x3100, "INSERT")]
    [InlineData(0x3400, "MERGE")]
    [InlineData(0x4100, "ALTER SESSION")]
    [InlineData(0x6000, "DDL")]
    [InlineData(0x0000, "unknown")]
    public async Task Snowflake_refuses_what_the_describe_says_is_not_a_read_and_never_runs_it(long statementTypeId, string named)
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi(statementTypeId));
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        // The keyword check lets this pass; Snowflake's statement type does not.
        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.BadRequest);

        var message = answer["errors"]!["sql"]![0]!.GetValue<string>();
        Assert.Contains(named, message, StringComparison.Ordinal);
        Assert.Contains(statementTypeId.ToString("X4", System.Globalization.CultureInfo.InvariantCulture), message, StringComparison.Ordinal);
        Assert.Equal(
            ["POST /session/v1/login-request", "POST /queries/v1/query-request"],
            rig.StandIn.Requests.Select(r => $"{r.Method} {r.Path}"));
        Assert.True(rig.StandIn.Requests[1].Json["describeOnly"]!.GetValue<bool>());
        rig.App.AssertNoSecrets([answer.ToJsonString()], SnowflakePassword, SessionToken);
    }

    [Theory]
    [InlineData(0x1000, null)]
    [InlineData(0x1100, null)]
    [InlineData(0x4400, null)]
    [InlineData(0x4500, null)]
    [InlineData(0x3200, "UPDATE")]
    [InlineData(0x3300, "DELETE")]
    [InlineData(0x3600, "COPY INTO a table")]
    [InlineData(0x4301, "USE")]
    [InlineData(0x5000, "transaction control")]
    [InlineData(0x6200, "DDL")]
    [InlineData(0xA000, "several statements")]
    public void Snowflake_statement_types_that_may_run_are_SELECT_SHOW_and_DESCRIBE(long statementTypeId, string? refusal)
    {
        Assert.Equal(refusal, Caravan.Api.Connectors.Snowflake.SnowflakeQueryEngine.Refusal(statementTypeId));
    }

    [Fact]
    public async Task Snowflake_allows_writing_words_inside_strings_quoted_names_comments_and_function_calls()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi());
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        await rig.Http.QueryAsync(id, """SELECT 'delete', "UPDATE", INSERT('abc', 1, 1, 'x'), t.set -- drop it""", HttpStatusCode.OK);

        Assert.Single(rig.StandIn.Requests, r => r.Path == "/queries/v1/query-request" && !r.Json["describeOnly"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Snowflake_statement_errors_are_422_with_stable_codes_and_session_errors_502()
    {
        var session = SnowflakeSessionApi();
        await using var rig = await Rig.StartAsync("SNOWFLAKE", r => r.Path == "/queries/v1/query-request"
            ? Reply.Json("""{"data": {"sqlState": "42S02", "queryId": "01b2-query"}, "code": "002003", "message": "SQL compilation error:\nObject 'NOPE' does not exist or not authorized.", "success": false}""")
            : session(r));
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        var missing = await rig.Http.QueryAsync(id, "SELECT * FROM nope", (HttpStatusCode)422);
        Assert.Equal("undefined_object", missing["code"]!.GetValue<string>());
        Assert.Contains("does not exist", missing["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        rig.StandIn.Handler = r => r.Path == "/queries/v1/query-request"
            ? Reply.Json("""{"data": {"sqlState": "42000"}, "code": "001003", "message": "SQL compilation error: syntax error line 1 at position 7", "success": false}""")
            : session(r);
        Assert.Equal("syntax_error", (await rig.Http.QueryAsync(id, "SELECT FROM", (HttpStatusCode)422))["code"]!.GetValue<string>());

        // The describe passes; running fails on the role's privileges.
        rig.StandIn.Handler = r => r.Path == "/queries/v1/query-request" && !r.Json["describeOnly"]!.GetValue<bool>()
            ? Reply.Json("""{"data": {"sqlState": "42501"}, "code": "003001", "message": "SQL access control error: Insufficient privileges to operate on table 'ORDERS'", "success": false}""")
            : session(r);
        Assert.Equal("insufficient_privilege", (await rig.Http.QueryAsync(id, "SELECT * FROM orders", (HttpStatusCode)422))["code"]!.GetValue<string>());

        rig.StandIn.Handler = r => r.Path == "/queries/v1/query-request"
            ? Reply.Json($$"""{"data": null, "code": "390112", "message": "Your session has expired ({{SessionToken}}). Please login again.", "success": false}""")
            : session(r);
        var expired = await rig.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal("driver_error", expired["code"]!.GetValue<string>());

        rig.StandIn.Handler = r => r.Path.StartsWith("/chunks/", StringComparison.Ordinal) ? new Reply(403, "<Error><Code>AccessDenied</Code></Error>", "application/xml") : session(r);
        var chunk = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK);
        Assert.Equal(502, chunk["error"]!["status"]!.GetValue<int>());
        Assert.Contains("chunk 1", chunk["error"]!["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        rig.App.AssertNoSecrets([missing.ToJsonString(), expired.ToJsonString(), chunk.ToJsonString()], SnowflakePassword, SessionToken, Qrmk);
    }

    [Fact]
    public async Task Snowflake_wrong_password_is_502_auth_failed_without_the_password()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi());
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource.Replace(SnowflakePassword, "pw-Wrong-0815", StringComparison.Ordinal));

        var answer = await rig.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);

        Assert.Equal("auth_failed", answer["code"]!.GetValue<string>());
        Assert.Contains("Incorrect username or password", answer["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(["POST /session/v1/login-request"], rig.StandIn.Requests.Select(r => $"{r.Method} {r.Path}"));
        rig.App.AssertNoSecrets([answer.ToJsonString()], "pw-Wrong-0815");
    }

    [Fact]
    public async Task Snowflake_time_limit_aborts_the_statement_in_the_service()
    {
        var session = SnowflakeSessionApi();
        await using var rig = await Rig.StartAsync("SNOWFLAKE", r => r.Path == "/queries/v1/query-request" && !r.Json["describeOnly"]!.GetValue<bool>()
            ? null
            : session(r));
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        var clock = Stopwatch.StartNew();
        var answer = await rig.Http.QueryAsync(id, "SELECT SYSTEM$WAIT(10)", HttpStatusCode.GatewayTimeout, timeoutMs: 500);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), clock.Elapsed.ToString());
        Assert.Equal("timeout", answer["code"]!.GetValue<string>());
        var requests = rig.StandIn.Requests;
        var run = Assert.Single(requests, r => r.Path == "/queries/v1/query-request" && !r.Json["describeOnly"]!.GetValue<bool>());
        Assert.Equal(1, run.Json["parameters"]!["STATEMENT_TIMEOUT_IN_SECONDS"]!.GetValue<int>());
        var abort = Assert.Single(requests, r => r is { Method: "POST", Path: "/queries/v1/abort-request" });
        Assert.Equal(run.Query, $"?requestId={abort.Json["requestId"]!.GetValue<string>()}");
        Assert.Equal("SELECT SYSTEM$WAIT(10)", abort.Json["sqlText"]!.GetValue<string>());
        Assert.Equal($"Snowflake Token=\"{SessionToken}\"", abort.Header("Authorization"));
        rig.App.AssertNoSecrets([answer.ToJsonString()], SnowflakePassword, SessionToken);
    }

    [Fact]
    public async Task Snowflake_queries_share_one_session_per_configuration_which_a_change_logs_out()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi());
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);
        int Logins() => rig.StandIn.Requests.Count(r => r.Path == "/session/v1/login-request");

        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 1)));
        await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 1);
        Assert.Equal(1, Logins());
        Assert.DoesNotContain(rig.StandIn.Requests, r => r.Path == "/session");

        await rig.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"warehouse": "OTHER_WH"}""").Expect(HttpStatusCode.OK);
        await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 1);

        Assert.Equal(2, Logins());
        Assert.Equal("?warehouse=OTHER_WH&databaseName=SALES&roleName=READER", rig.StandIn.Requests.Last(r => r.Path == "/session/v1/login-request").Query);
        // The retired session is logged out once no query uses it (in the background, so allow it a moment).
        var clock = Stopwatch.StartNew();
        while (!rig.StandIn.Requests.Any(r => r is { Method: "POST", Path: "/session", Query: "?delete=true" }) && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Single(rig.StandIn.Requests, r => r is { Method: "POST", Path: "/session", Query: "?delete=true" });
    }

    [Fact]
    public async Task Snowflake_an_expired_session_is_replaced_by_a_new_login_and_the_query_goes_on()
    {
        var session = SnowflakeSessionApi();
        var expired = 0;
        await using var rig = await Rig.StartAsync("SNOWFLAKE", r => r.Path == "/queries/v1/query-request" && Interlocked.Increment(ref expired) == 3
            ? Reply.Json("""{"data": null, "code": "390112", "message": "Your session has expired. Please login again.", "success": false}""")
            : session(r));
        var id = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);

        await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 1);
        var again = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 1);

        Assert.Single(QueryKit.Rows(again));
        Assert.Equal(
            ["POST /session/v1/login-request", "POST /queries/v1/query-request", "POST /queries/v1/query-request",
             "POST /queries/v1/query-request", "POST /session/v1/login-request", "POST /queries/v1/query-request", "POST /queries/v1/query-request"],
            rig.StandIn.Requests.Select(r => $"{r.Method} {r.Path}"));
    }

    [Fact]
    public async Task Snowflake_uid_is_refused_for_password_and_key_pair_sources()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SnowflakeSessionApi());
        var password = await rig.Http.CreateSourceAsync(SnowflakePasswordSource);
        var keyPair = await rig.Http.CreateSourceAsync(SnowflakeSource);

        foreach (var id in new[] { password, keyPair })
        {
            var uid = await rig.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadRequest, uid: "user-1");
            Assert.Contains("uid cannot be handed", uid["errors"]!["uid"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        }

        Assert.Empty(rig.StandIn.Requests);
    }

    // ---------------------------------------------------------------- BIGQUERY

    [Fact]
    public async Task BigQuery_dry_runs_then_inserts_the_job_and_reads_every_page()
    {
        await using var rig = await Rig.StartAsync("BIGQUERY", Google("SELECT"));
        var id = await rig.Http.CreateSourceAsync(BigQuerySource());

        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM sales.orders", HttpStatusCode.OK, timeoutMs: 15_000);

        AssertJson(
            """[{"name":"id","type":"INT64"},{"name":"price","type":"NUMERIC"},{"name":"ok","type":"BOOL"},{"name":"at","type":"TIMESTAMP"},{"name":"tags","type":"ARRAY<STRING>"},{"name":"who","type":"STRUCT"}]""",
            answer["columns"]!);
        Assert.Equal(
            """[[1,12.5,true,"2024-01-01T00:00:00.5Z",["a","b"],{"name":"x","n":7}],[2,null,false,null,[],null],[3,3,true,"1970-01-01T00:00:00Z",[],null]]""",
            answer["rows"]!.Compact());

        var requests = rig.StandIn.Requests;
        var jobs = $"/bigquery/v2/projects/{Project}/jobs";
        Assert.Equal(["POST /token", $"POST {jobs}", $"POST {jobs}"], requests.Take(3).Select(r => $"{r.Method} {r.Path}"));
        Assert.Equal("""{"configuration":{"dryRun":true,"query":{"query":"SELECT * FROM sales.orders","useLegacySql":false}}}""", requests[1].Json.Compact());
        var job = requests[2].Json;
        var jobId = job["jobReference"]!["jobId"]!.GetValue<string>();
        Assert.StartsWith("caravan_", jobId, StringComparison.Ordinal);
        Assert.Equal("15000", job["configuration"]!["jobTimeoutMs"]!.GetValue<string>());
        Assert.False(job["configuration"]!["dryRun"] is not null);
        var pages = requests.Skip(3).ToList();
        Assert.Equal(3, pages.Count);
        Assert.All(pages, p => Assert.Equal($"GET /bigquery/v2/projects/{Project}/queries/{jobId}", $"{p.Method} {p.Path}"));
        Assert.Contains("maxResults=1001", pages[0].Query, StringComparison.Ordinal);
        Assert.Contains("location=EU", pages[0].Query, StringComparison.Ordinal);
        Assert.Contains("formatOptions.useInt64Timestamp=true", pages[0].Query, StringComparison.Ordinal);
        Assert.Contains("pageToken=page-2", pages[2].Query, StringComparison.Ordinal);
        Assert.All(requests.Skip(1), r => Assert.Equal($"Bearer {AccessToken}", r.Header("Authorization")));
        rig.App.AssertNoSecrets([answer.ToJsonString()], AccessToken, PemLine());
    }

    [Fact]
    public async Task BigQuery_truncates_at_max_rows_without_reading_the_next_page()
    {
        await using var rig = await Rig.StartAsync("BIGQUERY", Google("SELECT"));
        var id = await rig.Http.CreateSourceAsync(BigQuerySource());

        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM sales.orders", HttpStatusCode.OK, maxRows: 1);

        Assert.Single(QueryKit.Rows(answer));
        Assert.True(answer["truncated"]!.GetValue<bool>());
        Assert.DoesNotContain(rig.StandIn.Requests, r => r.Query.Contains("pageToken", StringComparison.Ordinal));
        Assert.Contains("maxResults=2", rig.StandIn.Requests[^1].Query, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("INSERT")]
    [InlineData("CREATE_TABLE_AS_SELECT")]
    [InlineData("SCRIPT")]
    public async Task BigQuery_refuses_what_the_dry_run_says_is_not_a_SELECT_and_never_runs_it(string statementType)
    {
        await using var rig = await Rig.StartAsync("BIGQUERY", Google(statementType));
        var id = await rig.Http.CreateSourceAsync(BigQuerySource());

        var answer = await rig.Http.QueryAsync(id, "INSERT INTO sales.orders VALUES (1)", HttpStatusCode.BadRequest);

        Assert.Contains(statementType, answer["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        var requests = rig.StandIn.Requests;
        Assert.Equal(2, requests.Count);
        Assert.True(requests[1].Json["configuration"]!["dryRun"]!.GetValue<bool>());
    }

    [Fact]
    public async Task BigQuery_errors_are_422_and_a_refused_token_is_502()
    {
        await using var rig = await Rig.StartAsync("BIGQUERY", Google("SELECT"));
        var id = await rig.Http.CreateSourceAsync(BigQuerySource());
        var google = rig.StandIn.Handler;
        rig.StandIn.Handler = r => r.Path.EndsWith("/jobs", StringComparison.Ordinal)
            ? Reply.Json(404, """{"error": {"code": 404, "message": "Not found: Table acme-analytics:sales.nope was not found in location EU", "errors": [{"reason": "notFound", "message": "Not found: Table"}]}}""")
            : google(r);

        var missing = await rig.Http.QueryAsync(id, "SELECT * FROM sales.nope", (HttpStatusCode)422);
        Assert.Equal("undefined_object", missing["code"]!.GetValue<string>());

        rig.StandIn.Handler = r => r.Path.EndsWith("/jobs", StringComparison.Ordinal)
            ? Reply.Json(400, """{"error": {"code": 400, "message": "Syntax error: Unexpected end of script at [1:12]", "errors": [{"reason": "invalidQuery"}]}}""")
            : google(r);
        var syntax = await rig.Http.QueryAsync(id, "SELECT FROM", (HttpStatusCode)422);
        Assert.Equal("syntax_error", syntax["code"]!.GetValue<string>());

        rig.StandIn.Handler = r => r.Path.EndsWith("/jobs", StringComparison.Ordinal)
            ? Reply.Json(401, $$$"""{"error": {"code": 401, "message": "Invalid token {{{AccessToken}}}"}}""")
            : google(r);
        var refused = await rig.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal("auth_failed", refused["code"]!.GetValue<string>());
        rig.App.AssertNoSecrets([missing.ToJsonString(), syntax.ToJsonString(), refused.ToJsonString()], AccessToken, PemLine());
    }

    [Fact]
    public async Task BigQuery_time_limit_cancels_the_job()
    {
        var google = Google("SELECT");
        await using var rig = await Rig.StartAsync("BIGQUERY", r => r.Path.Contains("/queries/", StringComparison.Ordinal)
            ? Reply.Json("""{"kind": "bigquery#getQueryResultsResponse", "jobComplete": false}""")
            : google(r));
        var id = await rig.Http.CreateSourceAsync(BigQuerySource());

        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM huge", HttpStatusCode.GatewayTimeout, timeoutMs: 600);

        Assert.Equal("timeout", answer["code"]!.GetValue<string>());
        var jobId = rig.StandIn.Requests[2].Json["jobReference"]!["jobId"]!.GetValue<string>();
        var cancel = Assert.Single(rig.StandIn.Requests, r => r.Path.EndsWith("/cancel", StringComparison.Ordinal));
        Assert.Equal($"/bigquery/v2/projects/{Project}/jobs/{jobId}/cancel", cancel.Path);
        Assert.Equal("?location=EU", cancel.Query);
        Assert.Equal("POST", cancel.Method);
    }

    // ---------------------------------------------------------------- DATABRICKS

    [Fact]
    public async Task Databricks_sends_the_limits_polls_and_reads_the_next_chunk()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", Databricks(running: 1));
        var id = await rig.Http.CreateSourceAsync(DatabricksSource);

        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM main.sales.orders", HttpStatusCode.OK, maxRows: 50);

        AssertJson(
            """[{"name":"id","type":"bigint"},{"name":"price","type":"decimal(10,2)"},{"name":"ok","type":"boolean"},{"name":"tags","type":"array<string>"},{"name":"name","type":"string"}]""",
            answer["columns"]!);
        Assert.Equal("""[[1,12.50,true,["a"],"x"],[2,null,false,null,null],[3,0.50,true,[],"z"]]""", answer["rows"]!.Compact());
        Assert.False(answer["truncated"]!.GetValue<bool>());

        var requests = rig.StandIn.Requests;
        Assert.Equal(["POST /api/2.0/sql/statements", "GET /api/2.0/sql/statements/st-1", "GET /api/2.0/sql/statements/st-1", "GET /api/2.0/sql/statements/st-1/result/chunks/1"],
            requests.Select(r => $"{r.Method} {r.Path}"));
        Assert.All(requests, r => Assert.Equal($"Bearer {DatabricksToken}", r.Header("Authorization")));
        var body = requests[0].Json;
        Assert.Equal("abc123def", body["warehouse_id"]!.GetValue<string>());
        Assert.Equal("SELECT * FROM main.sales.orders", body["statement"]!.GetValue<string>());
        Assert.Equal("0s", body["wait_timeout"]!.GetValue<string>());
        Assert.Equal("CONTINUE", body["on_wait_timeout"]!.GetValue<string>());
        Assert.Equal(51, body["row_limit"]!.GetValue<long>());
        Assert.True(body["byte_limit"]!.GetValue<long>() > 0);
        Assert.Equal("INLINE", body["disposition"]!.GetValue<string>());
        Assert.Equal("JSON_ARRAY", body["format"]!.GetValue<string>());
        Assert.Equal("main", body["catalog"]!.GetValue<string>());
        rig.App.AssertNoSecrets([answer.ToJsonString()], DatabricksToken);
    }

    [Fact]
    public async Task Databricks_truncates_at_max_rows_and_when_the_service_cut_the_result()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", Databricks(running: 0));
        var id = await rig.Http.CreateSourceAsync(DatabricksSource);

        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM orders", HttpStatusCode.OK, maxRows: 1);
        Assert.Single(QueryKit.Rows(answer));
        Assert.True(answer["truncated"]!.GetValue<bool>());
        Assert.DoesNotContain(rig.StandIn.Requests, r => r.Path.Contains("/chunks/", StringComparison.Ordinal));

        rig.StandIn.Handler = _ => Reply.Json("""
            {"statement_id": "st-2", "status": {"state": "SUCCEEDED"},
             "manifest": {"schema": {"columns": [{"name": "n", "type_name": "INT", "type_text": "int"}]}, "truncated": true},
             "result": {"chunk_index": 0, "data_array": [["1"]]}}
            """);
        var cut = await rig.Http.QueryAsync(id, "SELECT n FROM big", HttpStatusCode.OK);
        Assert.True(cut["truncated"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("INSERT INTO orders VALUES (1)")]
    [InlineData("WITH x AS (SELECT 1) INSERT INTO orders SELECT * FROM x")]
    [InlineData("OPTIMIZE orders")]
    [InlineData("SELECT 1; DROP TABLE orders")]
    public async Task Databricks_refuses_a_write_without_sending_it(string sql)
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", Databricks(running: 0));
        var id = await rig.Http.CreateSourceAsync(DatabricksSource);

        var answer = await rig.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest);

        Assert.NotNull(answer["errors"]!["sql"]);
        Assert.Empty(rig.StandIn.Requests);
    }

    [Fact]
    public async Task Databricks_statement_failures_are_422_and_a_refused_token_is_502()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", _ => Reply.Json("""
            {"statement_id": "st-3", "status": {"state": "FAILED", "error": {"error_code": "BAD_REQUEST",
             "message": "[TABLE_OR_VIEW_NOT_FOUND] The table or view `nope` cannot be found."}}}
            """));
        var id = await rig.Http.CreateSourceAsync(DatabricksSource);

        var missing = await rig.Http.QueryAsync(id, "SELECT * FROM nope", (HttpStatusCode)422);
        Assert.Equal("undefined_object", missing["code"]!.GetValue<string>());
        Assert.Contains("cannot be found", missing["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        rig.StandIn.Handler = _ => Reply.Json(403, $$"""{"error_code": "403", "message": "Invalid access token {{DatabricksToken}}."}""");
        var refused = await rig.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal("auth_failed", refused["code"]!.GetValue<string>());
        rig.App.AssertNoSecrets([missing.ToJsonString(), refused.ToJsonString()], DatabricksToken);
    }

    [Fact]
    public async Task Databricks_time_limit_cancels_the_statement()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", request => request.Path.EndsWith("/cancel", StringComparison.Ordinal)
            ? Reply.Json("{}")
            : Reply.Json("""{"statement_id": "st-9", "status": {"state": "RUNNING"}}"""));
        var id = await rig.Http.CreateSourceAsync(DatabricksSource);

        var clock = Stopwatch.StartNew();
        var answer = await rig.Http.QueryAsync(id, "SELECT * FROM huge", HttpStatusCode.GatewayTimeout, timeoutMs: 500);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), clock.Elapsed.ToString());
        Assert.Equal("timeout", answer["code"]!.GetValue<string>());
        Assert.Contains(rig.StandIn.Requests, r => r is { Method: "POST", Path: "/api/2.0/sql/statements/st-9/cancel" });
    }

    [Theory]
    [InlineData("SELECT 1", true)]
    [InlineData("with x as (select 1) select * from x", true)]
    [InlineData("SHOW TABLES", true)]
    [InlineData("DESC TABLE orders", true)]
    [InlineData("EXPLAIN SELECT 1", true)]
    [InlineData("/* c */ SELECT 'a''delete', \"drop\", `update`, REPLACE(a, 'x', 'y'), o.set FROM t -- update", true)]
    [InlineData("UPDATE t SET a = 1", false)]
    [InlineData("(SELECT 1) UNION (SELECT 2)", true)]
    [InlineData("(UPDATE t SET a = 1)", false)]
    [InlineData("SELECT 1 /* not closed", false)]
    [InlineData("SELECT 'it\\' delete '", true)] // only one string where backslashes escape; any other reading never ends it
    [InlineData("SELECT 'a\\' , DELETE , ''", false)]
    [InlineData("WITH a AS (SELECT 1) MERGE INTO t USING a ON true WHEN MATCHED THEN DELETE", false)]
    [InlineData("SELECT * FROM t WHERE x IN (SELECT 1) // ok\nUNION ALL SELECT 2", true)]
    public void The_warehouse_lexer_check_is_conservative(string sql, bool allowed)
    {
        Assert.Equal(allowed, Caravan.Api.Connectors.WarehouseStatements.Check(Caravan.Api.Connectors.Snowflake.SnowflakeQueryEngine.Dialect, "Snowflake").Refusal(sql) is null);
    }

    // ---------------------------------------------------------------- all three

    [Theory]
    [InlineData("SNOWFLAKE")]
    [InlineData("BIGQUERY")]
    [InlineData("DATABRICKS")]
    public async Task An_unreachable_service_is_502(string type)
    {
        await using var app = new OwnCaravan(new Dictionary<string, string?> { [$"Caravan:Connectivity:Endpoints:{type}"] = "http://127.0.0.1:1" });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Source(type, keyPair: true));

        var answer = await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);

        Assert.Equal("port_closed", answer["code"]!.GetValue<string>());
        foreach (var secret in new[] { DatabricksToken, PemLine() })
        {
            Assert.DoesNotContain(secret, answer.ToJsonString(), StringComparison.Ordinal);
            Assert.DoesNotContain(app.Logs.Lines, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("SNOWFLAKE", false)]
    [InlineData("SNOWFLAKE", true)]
    [InlineData("BIGQUERY", false)]
    [InlineData("DATABRICKS", false)]
    [InlineData("DATABRICKS", true)]
    public async Task A_row_beyond_the_bytes_left_ends_the_result_before_it_is_read_whole(string type, bool chunked)
    {
        await using var rig = await Rig.StartAsync(type, ThreeRows(type, chunked, new string('x', 200_000)),
            more: new Dictionary<string, string?> { ["Caravan:Query:MaxResultBytes"] = "100000" });
        var id = await rig.Http.CreateSourceAsync(Source(type));

        var answer = await rig.Http.QueryAsync(id, "SELECT id, v FROM t", HttpStatusCode.OK);

        Assert.Equal("""[[1,"a"]]""", answer["rows"]!.ToJsonString());
        Assert.True(answer["truncated"]!.GetValue<bool>());
        Assert.Equal("max_result_bytes", answer["truncated_by"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("SNOWFLAKE")]
    [InlineData("BIGQUERY")]
    [InlineData("DATABRICKS")]
    public async Task An_answer_larger_than_16_MiB_is_read_row_by_row(string type)
    {
        // A 20 MB value: more than a whole answer may take (RestService.MaxAnswerBytes), within the result.
        await using var rig = await Rig.StartAsync(type, ThreeRows(type, chunked: false, new string('x', 20_000_000)));
        var id = await rig.Http.CreateSourceAsync(Source(type));

        var answer = await rig.Http.QueryAsync(id, "SELECT id, v FROM t", HttpStatusCode.OK, timeoutMs: 60_000);

        var rows = QueryKit.Rows(answer);
        Assert.Equal(3, rows.Count);
        Assert.Equal(20_000_000, rows[1]![1]!.GetValue<string>().Length);
        Assert.Equal("c", rows[2]![1]!.GetValue<string>());
        Assert.False(answer["truncated"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Rows_that_come_before_their_columns_are_kept_and_written_when_the_answer_ends()
    {
        var google = Google("SELECT");
        await using var rig = await Rig.StartAsync("BIGQUERY", request =>
            request.Method == "GET" && request.Path.StartsWith($"/bigquery/v2/projects/{Project}/queries/", StringComparison.Ordinal)
                ? Reply.Json("""
                    {"rows": [{"f": [{"v": "1"}, {"v": "a"}]}, {"f": [{"v": "2"}, {"v": null}]}],
                     "schema": {"fields": [{"name": "id", "type": "INTEGER"}, {"name": "v", "type": "STRING"}]}, "jobComplete": true}
                    """)
                : google(request));
        var id = await rig.Http.CreateSourceAsync(BigQuerySource());

        var answer = await rig.Http.QueryAsync(id, "SELECT id, v FROM t", HttpStatusCode.OK);

        Assert.Equal("""[{"name":"id","type":"INT64"},{"name":"v","type":"STRING"}]""", answer["columns"]!.ToJsonString());
        Assert.Equal("""[[1,"a"],[2,null]]""", answer["rows"]!.ToJsonString());
    }

    /// <summary>
    /// A stand-in of <paramref name="type"/> whose result is (1, 'a'), (2, <paramref name="big"/>), (3, 'c'):
    /// all in the answer, or (<paramref name="chunked"/>: Snowflake, Databricks) the first row there and the others in a chunk.
    /// </summary>
    private static Func<Recorded, Reply?> ThreeRows(string type, bool chunked, string big)
    {
        switch (type)
        {
            case "SNOWFLAKE":
                var session = SnowflakeSessionApi();
                return request => request switch
                {
                    { Path: "/queries/v1/query-request" } when !request.Json["describeOnly"]!.GetValue<bool>() => Reply.Json($$"""
                        {"data": {"queryId": "q", "rowtype": [{"name": "ID", "type": "fixed", "precision": 38, "scale": 0}, {"name": "V", "type": "text"}],
                          "rowset": [["1", "a"]{{(chunked ? string.Empty : $", [\"2\", \"{big}\"], [\"3\", \"c\"]")}}],
                          "chunks": [{{(chunked ? $"{{\"url\": \"http://{request.Header("Host")}/chunks/rest?sig=x\", \"rowCount\": 2}}" : string.Empty)}}],
                          "queryResultFormat": "json"},
                         "code": null, "message": null, "success": true}
                        """),
                    { Path: "/chunks/rest" } => new Reply(200, $$"""["2", "{{big}}"], ["3", "c"]""", "application/octet-stream"),
                    _ => session(request),
                };
            case "BIGQUERY":
                var google = Google("SELECT");
                return request => request.Method == "GET" && request.Path.StartsWith($"/bigquery/v2/projects/{Project}/queries/", StringComparison.Ordinal)
                    ? Reply.Json($$"""
                        {"kind": "bigquery#getQueryResultsResponse", "schema": {"fields": [{"name": "id", "type": "INTEGER"}, {"name": "v", "type": "STRING"}]},
                         "rows": [{"f": [{"v": "1"}, {"v": "a"}]}, {"f": [{"v": "2"}, {"v": "{{big}}"}]}, {"f": [{"v": "3"}, {"v": "c"}]}],
                         "totalBytesProcessed": "10", "jobComplete": true}
                        """)
                    : google(request);
            default:
                var databricks = Databricks(running: 0);
                return request => request switch
                {
                    { Method: "GET", Path: "/api/2.0/sql/statements/st-1" } => Reply.Json($$"""
                        {"statement_id": "st-1", "status": {"state": "SUCCEEDED"},
                         "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 2, "columns": [
                            {"name": "id", "type_name": "LONG", "type_text": "bigint", "position": 0},
                            {"name": "v", "type_name": "STRING", "type_text": "string", "position": 1}]}, "truncated": false},
                         "result": {"chunk_index": 0,
                           "data_array": [["1", "a"]{{(chunked ? string.Empty : $", [\"2\", \"{big}\"], [\"3\", \"c\"]")}}]
                           {{(chunked ? ", \"next_chunk_internal_link\": \"/api/2.0/sql/statements/st-1/result/chunks/1\"" : string.Empty)}}
                         }
                        }
                        """),
                    { Method: "GET", Path: "/api/2.0/sql/statements/st-1/result/chunks/1" } => Reply.Json($$"""
                        {"chunk_index": 1, "data_array": [["2", "{{big}}"], ["3", "c"]]}
                        """),
                    _ => databricks(request),
                };
        }
    }

    private string Source(string type, bool keyPair = false) => type switch
    {
        "SNOWFLAKE" => keyPair ? SnowflakeSource : SnowflakePasswordSource,
        "BIGQUERY" => BigQuerySource(),
        _ => DatabricksSource,
    };

    /// <summary>
    /// Snowflake's session API: a login that takes the password (or any key-pair JWT), queries with
    /// the session token (describeOnly answers <paramref name="statementTypeId"/>; a run answers
    /// two inline rows and one chunk on the stand-in itself, after <paramref name="running"/> polls),
    /// the chunk (only with the qrmk's SSE-C headers), abort and logout.
    /// </summary>
    private static Func<Recorded, Reply?> SnowflakeSessionApi(long statementTypeId = 0x1000, int running = 0)
    {
        var polls = 0;
        return request =>
        {
            switch (request.Path)
            {
                case "/session/v1/login-request":
                    var data = request.Json["data"]!;
                    return data["PASSWORD"]?.GetValue<string>() == SnowflakePassword || data["AUTHENTICATOR"]?.GetValue<string>() == "SNOWFLAKE_JWT"
                        ? Reply.Json($$"""{"data": {"token": "{{SessionToken}}", "masterToken": "master-0a1b"}, "code": null, "message": null, "success": true}""")
                        : Reply.Json($$"""{"data": {"nextAction": "RETRY_LOGIN"}, "code": "390100", "message": "Incorrect username or password was specified ({{data["PASSWORD"]?.GetValue<string>()}}).", "success": false}""");
                case "/chunks/1":
                    return request.Header("x-amz-server-side-encryption-customer-key") == Qrmk && request.Header("Authorization") is null
                        ? new Reply(200, """["3", "1.00", "c", "false", "0", "0.000000000 1440", null]""", "application/octet-stream")
                        : new Reply(403, "<Error><Code>AccessDenied</Code></Error>", "application/xml");
            }

            if (request.Header("Authorization") != $"Snowflake Token=\"{SessionToken}\"")
            {
                return Reply.Json(401, """{"data": null, "code": "390104", "message": "Session no longer exists.", "success": false}""");
            }

            switch (request.Path)
            {
                case "/session" or "/queries/v1/abort-request":
                    return Reply.Json("""{"data": null, "code": null, "message": null, "success": true}""");
                case "/queries/v1/query-request" when request.Json["describeOnly"]!.GetValue<bool>():
                    return Reply.Json($$"""{"data": {"statementTypeId": {{statementTypeId}}, "rowtype": [], "queryId": "01b2-describe"}, "code": null, "success": true}""");
                case "/queries/v1/query-request" when Interlocked.Increment(ref polls) <= running:
                    return Reply.Json("""{"data": {"getResultUrl": "/queries/01b2-query/result", "queryId": "01b2-query"}, "code": "333334", "message": "Asynchronous execution in progress.", "success": true}""");
                case "/queries/v1/query-request" or "/queries/01b2-query/result":
                    return Reply.Json("""
                        {"data": {"queryId": "01b2-query", "queryResultFormat": "json", "statementTypeId": 4096, "total": 3, "returned": 2,
                          "rowtype": [
                            {"name": "ID", "type": "fixed", "precision": 38, "scale": 0},
                            {"name": "PRICE", "type": "fixed", "precision": 10, "scale": 2},
                            {"name": "NAME", "type": "text"}, {"name": "OK", "type": "boolean"}, {"name": "DAY", "type": "date"},
                            {"name": "AT", "type": "timestamp_tz", "scale": 9}, {"name": "DOC", "type": "variant"}],
                          "rowset": [["1", "12.50", "a", "true", "19724", "1704067200.500000000 1500", "{\"k\": [1, 2]}"],
                                     ["2", null, null, "false", null, null, null]],
                          "chunks": [{"url": "http://HOST/chunks/1?sig=presigned", "rowCount": 1, "uncompressedSize": 60, "compressedSize": 50}],
                          "qrmk": "QRMK"},
                         "code": null, "message": null, "success": true}
                        """.Replace("HOST", request.Header("Host"), StringComparison.Ordinal).Replace("QRMK", Qrmk, StringComparison.Ordinal));
                default:
                    return Reply.Json(404, """{"data": null, "code": "390404", "message": "no such route", "success": false}""");
            }
        };
    }

    private static Func<Recorded, Reply?> Databricks(int running)
    {
        var polls = 0;
        return request => request switch
        {
            { Method: "POST", Path: "/api/2.0/sql/statements" } => Reply.Json("""{"statement_id": "st-1", "status": {"state": "PENDING"}}"""),
            { Method: "GET", Path: "/api/2.0/sql/statements/st-1/result/chunks/1" } => Reply.Json("""
                {"chunk_index": 1, "row_offset": 2, "row_count": 1, "data_array": [["3", "0.50", "true", "[]", "z"]]}
                """),
            { Method: "GET", Path: "/api/2.0/sql/statements/st-1" } when Interlocked.Increment(ref polls) <= running =>
                Reply.Json("""{"statement_id": "st-1", "status": {"state": "RUNNING"}}"""),
            { Method: "GET", Path: "/api/2.0/sql/statements/st-1" } => Reply.Json("""
                {"statement_id": "st-1", "status": {"state": "SUCCEEDED"},
                 "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 5, "columns": [
                    {"name": "id", "type_name": "LONG", "type_text": "bigint", "position": 0},
                    {"name": "price", "type_name": "DECIMAL", "type_text": "decimal(10,2)", "position": 1},
                    {"name": "ok", "type_name": "BOOLEAN", "type_text": "boolean", "position": 2},
                    {"name": "tags", "type_name": "ARRAY", "type_text": "array<string>", "position": 3},
                    {"name": "name", "type_name": "STRING", "type_text": "string", "position": 4}]},
                  "total_chunk_count": 2, "total_row_count": 3, "truncated": false},
                 "result": {"chunk_index": 0, "row_offset": 0, "row_count": 2,
                   "data_array": [["1", "12.50", "true", "[\"a\"]", "x"], ["2", null, "false", null, null]],
                   "next_chunk_index": 1, "next_chunk_internal_link": "/api/2.0/sql/statements/st-1/result/chunks/1?row_offset=2"}}
                """),
            _ => Reply.Json(404, """{"error_code": "NOT_FOUND", "message": "no such route"}"""),
        };
    }

    private static Func<Recorded, Reply?> Google(string statementType)
    {
        var firstPageAsks = 0;
        return request => GoogleReply(request, statementType, ref firstPageAsks);
    }

    private static Reply GoogleReply(Recorded request, string statementType, ref int firstPageAsks)
    {
        var authorized = request.Header("Authorization") == $"Bearer {AccessToken}";
        if (request is { Method: "POST", Path: "/token" })
        {
            return Reply.Json($$"""{"access_token": "{{AccessToken}}", "expires_in": 3599, "token_type": "Bearer"}""");
        }

        if (!authorized)
        {
            return Reply.Json(401, """{"error": {"code": 401, "message": "Request had invalid authentication credentials."}}""");
        }

        if (request is { Method: "POST", Path: $"/bigquery/v2/projects/{Project}/jobs" })
        {
            var body = request.Json;
            var jobId = body["jobReference"]?["jobId"]?.GetValue<string>() ?? "dry";
            return body["configuration"]!["dryRun"] is not null
                ? Reply.Json("""{"kind": "bigquery#job", "status": {"state": "DONE"}, "statistics": {"query": {"statementType": "TYPE", "totalBytesProcessed": "10"}}}""".Replace("TYPE", statementType, StringComparison.Ordinal))
                : Reply.Json($$$"""{"kind": "bigquery#job", "jobReference": {"projectId": "{{{Project}}}", "jobId": "{{{jobId}}}", "location": "EU"}, "status": {"state": "RUNNING"}}""");
        }

        if (request is { Method: "POST" } && request.Path.EndsWith("/cancel", StringComparison.Ordinal))
        {
            return Reply.Json("""{"kind": "bigquery#jobCancelResponse"}""");
        }

        if (request is { Method: "GET" } && request.Path.StartsWith($"/bigquery/v2/projects/{Project}/queries/", StringComparison.Ordinal))
        {
            const string schema = """
                {"fields": [{"name": "id", "type": "INTEGER", "mode": "NULLABLE"}, {"name": "price", "type": "NUMERIC"},
                  {"name": "ok", "type": "BOOLEAN"}, {"name": "at", "type": "TIMESTAMP"}, {"name": "tags", "type": "STRING", "mode": "REPEATED"},
                  {"name": "who", "type": "RECORD", "fields": [{"name": "name", "type": "STRING"}, {"name": "n", "type": "INTEGER"}]}]}
                """;
            if (request.Query.Contains("pageToken=page-2", StringComparison.Ordinal))
            {
                return Reply.Json("""{"jobComplete": true, "schema": SCHEMA, "rows": [{"f": [{"v": "3"}, {"v": "3"}, {"v": "true"}, {"v": "0"}, {"v": []}, {"v": null}]}]}""".Replace("SCHEMA", schema, StringComparison.Ordinal));
            }

            // The first page: the job is still running the first time it is asked.
            return request.Query.Contains("pageToken", StringComparison.Ordinal) || Interlocked.Increment(ref firstPageAsks) % 2 == 0
                ? Reply.Json("""
                    {"jobComplete": true, "schema": SCHEMA, "totalRows": "3", "pageToken": "page-2",
                     "rows": [{"f": [{"v": "1"}, {"v": "12.5"}, {"v": "true"}, {"v": "1704067200500000"}, {"v": [{"v": "a"}, {"v": "b"}]}, {"v": {"f": [{"v": "x"}, {"v": "7"}]}}]},
                              {"f": [{"v": "2"}, {"v": null}, {"v": "false"}, {"v": null}, {"v": []}, {"v": null}]}]}
                    """.Replace("SCHEMA", schema, StringComparison.Ordinal))
                : Reply.Json("""{"jobComplete": false, "jobReference": {"jobId": "x"}}""");
        }

        return Reply.Json(404, """{"error": {"code": 404, "message": "no such route", "errors": [{"reason": "notFound"}]}}""");
    }

    private string BigQuerySource()
    {
        var key = new JsonObject
        {
            ["type"] = "service_account",
            ["project_id"] = Project,
            ["private_key_id"] = "key-id-77",
            ["private_key"] = _key.ExportPkcs8PrivateKeyPem(),
            ["client_email"] = "caravan@acme-analytics.iam.gserviceaccount.com",
            ["token_uri"] = "https://oauth2.googleapis.com/token",
        };
        return new JsonObject { ["type"] = "bigquery", ["account_name"] = "BQ", ["service_account_key"] = key }.ToJsonString();
    }

    private static void AssertJson(string expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), actual.ToJsonString());

    private string PemLine() => _key.ExportPkcs8PrivateKeyPem().Split('\n')[3];
}
