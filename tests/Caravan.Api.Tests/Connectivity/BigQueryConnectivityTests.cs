using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>The BIGQUERY driver against a stand-in for Google's token endpoint and the BigQuery REST API.</summary>
public sealed class BigQueryConnectivityTests : IDisposable
{
    private const string Project = "acme-analytics";
    private const string ClientEmail = "caravan@acme-analytics.iam.gserviceaccount.com";
    private const string AccessToken = "ya29.stand-in-access-token-5d4c3b2a";
    private const string JwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    private readonly RSA _key = RSA.Create(2048);

    public void Dispose() => _key.Dispose();

    [Fact]
    public async Task A_test_gets_a_token_with_a_signed_assertion_then_queries_and_lists_datasets()
    {
        await using var rig = await Rig.StartAsync("BIGQUERY", Google);
        var id = await rig.Http.CreateSourceAsync(Source());

        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var after = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.Equal("resolve:ok egress:ok connect:ok tls:skipped authenticate:ok query:ok schemas:ok", Reports.Outline(report));
        var requests = rig.StandIn.Requests;
        Assert.Equal(
            ["POST /token", $"POST /bigquery/v2/projects/{Project}/queries", $"GET /bigquery/v2/projects/{Project}/datasets",
             $"GET /bigquery/v2/projects/{Project}/datasets"],
            requests.Select(r => $"{r.Method} {r.Path}"));

        var token = requests[0];
        Assert.StartsWith("application/x-www-form-urlencoded", token.Header("Content-Type"), StringComparison.Ordinal);
        var form = token.Form();
        Assert.Equal(JwtBearer, form["grant_type"]);
        var assertion = Jwt.Decode(form["assertion"]);
        Assert.Equal("RS256", assertion.Header["alg"]!.GetValue<string>());
        Assert.Equal("key-id-77", assertion.Header["kid"]!.GetValue<string>());
        Assert.Equal(ClientEmail, assertion.Claim("iss"));
        Assert.Equal("https://www.googleapis.com/auth/bigquery.readonly", assertion.Claim("scope"));
        // Google's documented audience of a JWT-bearer assertion, whichever address the token request goes to.
        Assert.Equal("https://oauth2.googleapis.com/token", assertion.Claim("aud"));
        Assert.InRange(assertion.Time("iat"), before - 5, after + 5);
        Assert.InRange(assertion.Time("exp") - assertion.Time("iat"), 60, 3600);
        Assert.True(assertion.VerifiesWith(_key), "the assertion's signature does not verify with the service account's public key");

        var query = requests[1];
        Assert.Equal($"Bearer {AccessToken}", query.Header("Authorization"));
        Assert.Equal("""{"query":"SELECT 1","useLegacySql":false,"dryRun":false}""", query.Json.ToJsonString());
        Assert.Equal($"Bearer {AccessToken}", requests[2].Header("Authorization"));
        Assert.Equal("?maxResults=1000", requests[2].Query);
        Assert.Equal("?maxResults=1000&pageToken=page-2", requests[3].Query);

        rig.App.AssertNoSecrets([report.ToJsonString()], AccessToken, PemLine(), form["assertion"]);
    }

    [Fact]
    public async Task Discovery_lists_every_page_of_datasets_with_the_selection()
    {
        await using var rig = await Rig.StartAsync("BIGQUERY", Google);
        var id = await rig.Http.CreateSourceAsync(Source(selected: ["sales"]));

        var body = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.Equal(
            """{"kind":"datasets","results":[{"name":"marketing","selected":false},{"name":"raw","selected":false},{"name":"sales","selected":true}]}""",
            body.Compact());
        Assert.Equal(["/token", $"/bigquery/v2/projects/{Project}/datasets", $"/bigquery/v2/projects/{Project}/datasets"],
            rig.StandIn.Requests.Select(r => r.Path));
        rig.App.AssertNoSecrets([body.ToJsonString()], AccessToken, PemLine());
    }

    [Theory]
    [InlineData(400, """{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}""", "auth_failed")]
    [InlineData(401, """{"error": "invalid_client", "error_description": "The OAuth client was not found."}""", "auth_failed")]
    [InlineData(500, """{"error": "internal_failure"}""", "driver_error")]
    public async Task Token_endpoint_errors_fail_authentication(int status, string answer, string expected)
    {
        await using var rig = await Rig.StartAsync("BIGQUERY", r => r.Path == "/token" ? Reply.Json(status, answer) : Google(r));
        var id = await rig.Http.CreateSourceAsync(Source());

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        Assert.Equal("failed", Reports.Status(report, "authenticate"));
        Assert.Equal(expected, Reports.Code(report, "authenticate"));
        Assert.Equal("skipped", Reports.Status(report, "query"));
        Assert.Equal(expected, discovery["code"]!.GetValue<string>());
        Assert.All(rig.StandIn.Requests, r => Assert.Equal("/token", r.Path));
        rig.App.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], PemLine());
    }

    [Theory]
    [InlineData(404, "notFound", "Not found: Project acme-analytics", "database_not_found")]
    [InlineData(403, "accessDenied", "Access Denied: Project acme-analytics: User does not have bigquery.jobs.create permission", "insufficient_privilege")]
    [InlineData(403, "quotaExceeded", "Quota exceeded", "driver_error")]
    [InlineData(401, "authError", "Request had invalid authentication credentials.", "auth_failed")]
    [InlineData(500, "backendError", "Backend error", "driver_error")]
    public async Task API_errors_map_to_stable_codes(int status, string reason, string message, string expected)
    {
        var error = new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["code"] = status, ["message"] = message,
                ["errors"] = new JsonArray(new JsonObject { ["message"] = message, ["domain"] = "global", ["reason"] = reason }),
            },
        }.ToJsonString();
        await using var rig = await Rig.StartAsync("BIGQUERY", r => r.Path == "/token" ? Google(r) : Reply.Json(status, error));
        var id = await rig.Http.CreateSourceAsync(Source());

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        Assert.Equal("ok", Reports.Status(report, "authenticate"));
        Assert.Equal("failed", Reports.Status(report, "query"));
        Assert.Equal(expected, Reports.Code(report, "query"));
        Assert.Equal("skipped", Reports.Status(report, "schemas"));
        Assert.Equal(expected, discovery["code"]!.GetValue<string>());
        rig.App.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], AccessToken, PemLine());
    }

    [Fact]
    public Task A_token_endpoint_that_never_answers_times_out_within_the_deadline() => Rig.AssertNeverAnsweringTimesOutAsync("BIGQUERY", Source());

    private string Source(string[]? selected = null)
    {
        var key = new JsonObject
        {
            ["type"] = "service_account",
            ["project_id"] = Project,
            ["private_key_id"] = "key-id-77",
            ["private_key"] = _key.ExportPkcs8PrivateKeyPem(),
            ["client_email"] = ClientEmail,
            ["token_uri"] = "https://oauth2.googleapis.com/token",
        };
        var source = new JsonObject { ["type"] = "bigquery", ["account_name"] = "BQ", ["service_account_key"] = key };
        if (selected is not null)
        {
            source["selected_datasets"] = new JsonArray([.. selected.Select(s => JsonValue.Create(s))]);
        }

        return source.ToJsonString();
    }

    /// <summary>One line of the private key's PEM body: key material that must never leave.</summary>
    private string PemLine() => _key.ExportPkcs8PrivateKeyPem().Split('\n')[3];

    /// <summary>Google as the driver sees it: the token endpoint, jobs.query and datasets.list in two pages.</summary>
    private static Reply? Google(Recorded request)
    {
        var authorized = request.Header("Authorization") == $"Bearer {AccessToken}";
        return (request.Method, request.Path) switch
        {
            ("POST", "/token") when request.Form().GetValueOrDefault("grant_type") == JwtBearer =>
                Reply.Json($$"""{"access_token": "{{AccessToken}}", "expires_in": 3599, "token_type": "Bearer"}"""),
            ("POST", $"/bigquery/v2/projects/{Project}/queries") when authorized => Reply.Json("""
                {"kind": "bigquery#queryResponse", "schema": {"fields": [{"name": "f0_", "type": "INTEGER", "mode": "NULLABLE"}]},
                 "jobReference": {"projectId": "acme-analytics", "jobId": "job_1", "location": "US"},
                 "totalRows": "1", "rows": [{"f": [{"v": "1"}]}], "jobComplete": true, "cacheHit": false}
                """),
            ("GET", $"/bigquery/v2/projects/{Project}/datasets") when authorized && !request.Query.Contains("pageToken", StringComparison.Ordinal) =>
                Reply.Json("""
                    {"kind": "bigquery#datasetList", "nextPageToken": "page-2", "datasets": [
                      {"kind": "bigquery#dataset", "id": "acme-analytics:sales", "datasetReference": {"datasetId": "sales", "projectId": "acme-analytics"}, "location": "US"},
                      {"kind": "bigquery#dataset", "id": "acme-analytics:marketing", "datasetReference": {"datasetId": "marketing", "projectId": "acme-analytics"}, "location": "US"}]}
                    """),
            ("GET", $"/bigquery/v2/projects/{Project}/datasets") when authorized => Reply.Json("""
                {"kind": "bigquery#datasetList", "datasets": [
                  {"kind": "bigquery#dataset", "id": "acme-analytics:raw", "datasetReference": {"datasetId": "raw", "projectId": "acme-analytics"}, "location": "EU"}]}
                """),
            _ => Reply.Json(401, """{"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}"""),
        };
    }
}
