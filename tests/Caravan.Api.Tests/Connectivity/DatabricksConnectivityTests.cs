using System.Net;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>The DATABRICKS driver against a stand-in for the SQL Statement Execution API.</summary>
public sealed class DatabricksConnectivityTests
{
    private const string Token = "dapi0123456789abcdef-secret";
    private const string Source = $$"""
        {"type": "databricks", "account_name": "Lakehouse", "server_hostname": "adb-1234567890.1.azuredatabricks.net",
         "http_path": "/sql/1.0/warehouses/abc123def", "access_token": "{{Token}}", "catalog": "main", "selected_schemas": ["sales"]}
        """;

    [Fact]
    public async Task A_test_runs_statements_on_the_warehouse_and_follows_pending_results_and_chunks()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", Warehouse);
        var id = await rig.Http.CreateSourceAsync(Source);

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);

        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.Equal("resolve:ok egress:ok connect:ok tls:skipped authenticate:ok query:ok schemas:ok", Reports.Outline(report));
        var requests = rig.StandIn.Requests;
        Assert.Equal(
            ["POST /api/2.0/sql/statements", "POST /api/2.0/sql/statements", "GET /api/2.0/sql/statements/stmt-2",
             "GET /api/2.0/sql/statements/stmt-2/result/chunks/1"],
            requests.Select(r => $"{r.Method} {r.Path}"));
        Assert.All(requests, r => Assert.Equal($"Bearer {Token}", r.Header("Authorization")));
        Assert.Equal("""{"warehouse_id":"abc123def","statement":"SELECT 1","wait_timeout":"10s","catalog":"main"}""", requests[0].Json.ToJsonString());
        Assert.Equal("SHOW SCHEMAS IN `main`", requests[1].Json["statement"]!.GetValue<string>());
        Assert.Equal(["warehouse_id", "statement", "wait_timeout", "catalog"], requests[1].Json.Select(p => p.Key));
        rig.App.AssertNoSecrets([report.ToJsonString()], Token);
    }

    [Fact]
    public async Task Discovery_lists_the_catalog_schemas_without_information_schema()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", Warehouse);
        var id = await rig.Http.CreateSourceAsync(Source);

        var body = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.Equal(
            """{"kind":"schemas","results":[{"name":"default","selected":false},{"name":"sales","selected":true},{"name":"staging","selected":false}]}""",
            body.Compact());
    }

    [Fact]
    public async Task Without_a_catalog_the_default_one_is_used()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", Warehouse);
        var id = await rig.Http.CreateSourceAsync($$"""
            {"type": "databricks", "account_name": "Lakehouse", "server_hostname": "dbc-1a2b3c4d-5e6f.cloud.databricks.com",
             "http_path": "/sql/1.0/warehouses/0123456789abcdef/", "access_token": "{{Token}}"}
            """);

        await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.Equal("""{"warehouse_id":"0123456789abcdef","statement":"SHOW SCHEMAS","wait_timeout":"10s"}""", rig.StandIn.Requests[0].Json.ToJsonString());
    }

    [Theory]
    [InlineData(401, """{"error_code": "UNAUTHENTICATED", "message": "Invalid access token dapi0123456789abcdef-secret."}""", "authenticate", "auth_failed")]
    [InlineData(403, "<html><body>Error 403 Invalid access token.</body></html>", "authenticate", "auth_failed")]
    [InlineData(403, """{"error_code": "PERMISSION_DENIED", "message": "You do not have permission to use the SQL warehouse abc123def."}""", "query", "insufficient_privilege")]
    [InlineData(404, """{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "SQL warehouse abc123def does not exist."}""", "query", "database_not_found")]
    [InlineData(200, """{"statement_id": "s", "status": {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": "[NO_SUCH_CATALOG_EXCEPTION] Catalog 'main' was not found."}}}""", "query", "database_not_found")]
    [InlineData(200, """{"statement_id": "s", "status": {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": "[INSUFFICIENT_PERMISSIONS] User does not have USE CATALOG on Catalog 'main'."}}}""", "query", "insufficient_privilege")]
    [InlineData(200, """{"statement_id": "s", "status": {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": "[PARSE_SYNTAX_ERROR] Syntax error."}}}""", "query", "driver_error")]
    [InlineData(500, """{"error_code": "INTERNAL_ERROR", "message": "Something went wrong."}""", "authenticate", "driver_error")]
    public async Task API_errors_map_to_stable_codes(int status, string answer, string step, string expected)
    {
        var reply = answer.StartsWith('<') ? new Reply(status, answer, "text/html") : Reply.Json(status, answer);
        await using var rig = await Rig.StartAsync("DATABRICKS", _ => reply);
        var id = await rig.Http.CreateSourceAsync(Source);

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        Assert.False(report["ok"]!.GetValue<bool>());
        Assert.Equal("failed", Reports.Status(report, step));
        Assert.Equal(expected, Reports.Code(report, step));
        if (step == "query")
        {
            Assert.Equal("ok", Reports.Status(report, "authenticate"));
        }

        Assert.Equal("skipped", Reports.Status(report, "schemas"));
        Assert.Equal(expected, discovery["code"]!.GetValue<string>());
        rig.App.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], Token);
    }

    [Fact]
    public async Task A_cluster_path_is_refused_before_any_request()
    {
        await using var rig = await Rig.StartAsync("DATABRICKS", Warehouse);
        var id = await rig.Http.CreateSourceAsync(Source.Replace("/sql/1.0/warehouses/abc123def", "/sql/protocolv1/o/1234567890/0123-456789-abcdefgh", StringComparison.Ordinal));

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);

        Assert.Equal("driver_error", Reports.Code(report, "resolve"));
        Assert.Contains("warehouse", Reports.Step(report, "resolve")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(rig.StandIn.Requests);
    }

    [Fact]
    public async Task An_untrusted_certificate_fails_the_tls_step_and_discovery()
    {
        using var certificate = Certificates.SelfSigned("localhost");
        await using var rig = await Rig.StartAsync("DATABRICKS", Warehouse, certificate: certificate);
        Assert.StartsWith("https://", rig.StandIn.Url, StringComparison.Ordinal);
        var id = await rig.Http.CreateSourceAsync(Source);

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        Assert.Equal("resolve:ok egress:ok connect:ok tls:failed authenticate:skipped query:skipped schemas:skipped", Reports.Outline(report));
        Assert.Equal("tls_failed", Reports.Code(report, "tls"));
        Assert.Equal("tls_failed", discovery["code"]!.GetValue<string>());
        Assert.Empty(rig.StandIn.Requests);
        rig.App.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], Token);
    }

    [Fact]
    public Task A_warehouse_that_never_answers_times_out_within_the_deadline() => Rig.AssertNeverAnsweringTimesOutAsync("DATABRICKS", Source);

    /// <summary>
    /// A warehouse: SELECT 1 succeeds at once; SHOW SCHEMAS is still pending after wait_timeout, then
    /// succeeds with a second chunk of rows.
    /// </summary>
    private static Reply? Warehouse(Recorded request)
    {
        if (request.Header("Authorization") != $"Bearer {Token}")
        {
            return Reply.Json(401, """{"error_code": "UNAUTHENTICATED", "message": "Credential was not sent or was of an unsupported type."}""");
        }

        switch (request.Method, request.Path)
        {
            case ("POST", "/api/2.0/sql/statements"):
                var statement = request.Json["statement"]!.GetValue<string>();
                return statement == "SELECT 1"
                    ? Reply.Json("""
                        {"statement_id": "stmt-1", "status": {"state": "SUCCEEDED"},
                         "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 1, "columns": [{"name": "1", "type_name": "INT", "position": 0}]}, "total_chunk_count": 1, "total_row_count": 1},
                         "result": {"chunk_index": 0, "row_offset": 0, "row_count": 1, "data_array": [["1"]]}}
                        """)
                    : Reply.Json("""{"statement_id": "stmt-2", "status": {"state": "PENDING"}}""");
            case ("GET", "/api/2.0/sql/statements/stmt-2"):
                return Reply.Json("""
                    {"statement_id": "stmt-2", "status": {"state": "SUCCEEDED"},
                     "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 1, "columns": [{"name": "databaseName", "type_name": "STRING", "position": 0}]}, "total_chunk_count": 2, "total_row_count": 4},
                     "result": {"chunk_index": 0, "row_offset": 0, "row_count": 3, "data_array": [["default"], ["information_schema"], ["sales"]],
                                "next_chunk_index": 1, "next_chunk_internal_link": "/api/2.0/sql/statements/stmt-2/result/chunks/1"}}
                    """);
            case ("GET", "/api/2.0/sql/statements/stmt-2/result/chunks/1"):
                return Reply.Json("""{"chunk_index": 1, "row_offset": 3, "row_count": 1, "data_array": [["staging"]]}""");
            default:
                return Reply.Json(404, """{"error_code": "ENDPOINT_NOT_FOUND", "message": "No API found."}""");
        }
    }
}
