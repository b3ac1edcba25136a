using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>The SNOWFLAKE driver against a stand-in for Snowflake's SQL API and session API.</summary>
public sealed partial class SnowflakeConnectivityTests
{
    private const string KeyPairSource = """
        {"type": "snowflake", "account_name": "Snow", "account": "xy12345.us-east-1", "user": "analyst",
         "warehouse": "COMPUTE_WH", "database": "SALES", "role": "READER", "selected_schemas": ["PUBLIC"]}
        """;

    private const string PasswordSource = """
        {"type": "snowflake", "account_name": "Snow", "account": "xy12345.us-east-1", "user": "analyst",
         "password": "pw-Secret-4711", "warehouse": "COMPUTE_WH", "role": "READER"}
        """;

    private const string SessionToken = "session-token-0f9e8d7c";

    [Fact]
    public async Task A_key_pair_test_calls_the_SQL_API_with_a_signed_JWT()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SqlApi);
        var created = await rig.Http.PostJsonAsync("/api/v1/sources/", KeyPairSource).Expect(HttpStatusCode.OK);
        var id = created["id"]!.GetValue<long>();
        using var publicKey = PublicKeyFrom(created["public_key_sql"]!.GetValue<string>());

        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var after = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.Equal("resolve:ok egress:ok connect:ok tls:skipped authenticate:ok query:ok schemas:ok", Reports.Outline(report));
        Assert.Contains("plain http", Reports.Step(report, "tls")["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var requests = rig.StandIn.Requests;
        Assert.Equal(2, requests.Count);
        foreach (var request in requests)
        {
            Assert.Equal("POST", request.Method);
            Assert.Equal("/api/v2/statements", request.Path);
            Assert.Equal("KEYPAIR_JWT", request.Header("X-Snowflake-Authorization-Token-Type"));
            Assert.Equal("caravan", request.Header("User-Agent"));
            Assert.Equal("application/json", request.Header("Accept"));
            Assert.StartsWith("application/json", request.Header("Content-Type"), StringComparison.Ordinal);
            var body = request.Json;
            Assert.Equal(["database", "role", "statement", "timeout", "warehouse"], body.Select(p => p.Key).Order(StringComparer.Ordinal));
            Assert.Equal("COMPUTE_WH", body["warehouse"]!.GetValue<string>());
            Assert.Equal("SALES", body["database"]!.GetValue<string>());
            Assert.Equal("READER", body["role"]!.GetValue<string>());
            Assert.InRange(body["timeout"]!.GetValue<int>(), 1, 10);

            var authorization = request.Header("Authorization")!;
            Assert.StartsWith("Bearer ", authorization, StringComparison.Ordinal);
            var jwt = Jwt.Decode(authorization["Bearer ".Length..]);
            Assert.Equal("RS256", jwt.Header["alg"]!.GetValue<string>());
            var fingerprint = Convert.ToBase64String(SHA256.HashData(publicKey.ExportSubjectPublicKeyInfo()));
            Assert.Equal($"XY12345.ANALYST.SHA256:{fingerprint}", jwt.Claim("iss"));
            Assert.Equal("XY12345.ANALYST", jwt.Claim("sub"));
            Assert.InRange(jwt.Time("iat"), before - 5, after + 5);
            Assert.Equal(59 * 60, jwt.Time("exp") - jwt.Time("iat"));
            Assert.True(jwt.VerifiesWith(publicKey), "the JWT's signature does not verify with the registered public key");
        }

        Assert.Equal("SELECT 1", requests[0].Json["statement"]!.GetValue<string>());
        Assert.StartsWith("SELECT SCHEMA_NAME FROM SALES.INFORMATION_SCHEMA.SCHEMATA", requests[1].Json["statement"]!.GetValue<string>(), StringComparison.Ordinal);

        var jwtText = requests[0].Header("Authorization")!["Bearer ".Length..];
        rig.App.AssertNoSecrets([report.ToJsonString(), created.ToJsonString()], await rig.App.RevealAsync(id, "private_key"), jwtText);
    }

    [Fact]
    public async Task Discovery_lists_the_database_schemas_without_INFORMATION_SCHEMA()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SqlApi);
        var id = await rig.Http.CreateSourceAsync(KeyPairSource);

        var body = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.Equal("""{"kind":"schemas","results":[{"name":"ANALYTICS","selected":false},{"name":"PUBLIC","selected":true}]}""", body.Compact());
        Assert.Equal(2, rig.StandIn.Requests.Count);
    }

    [Fact]
    public async Task Without_a_database_discovery_uses_SHOW_SCHEMAS_and_qualifies_the_names()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SqlApi);
        var id = await rig.Http.CreateSourceAsync("""
            {"type": "snowflake", "account_name": "Snow", "account": "xy12345", "user": "analyst", "selected_schemas": ["SALES.PUBLIC"]}
            """);

        var body = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas", UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.Equal("""{"kind":"schemas","results":[{"name":"LAKE.RAW","selected":false},{"name":"SALES.PUBLIC","selected":true}]}""", body.Compact());
        var show = rig.StandIn.Requests[^1].Json;
        Assert.Equal("SHOW SCHEMAS", show["statement"]!.GetValue<string>());
        Assert.Equal(["statement", "timeout"], show.Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task An_own_encrypted_private_key_signs_the_JWT_with_the_organization_account_name()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SqlApi);
        using var rsa = RSA.Create(2048);
        const string passphrase = "key-Passphrase-31337";
        var pem = rsa.ExportEncryptedPkcs8PrivateKeyPem(passphrase,
            new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000));
        var create = new JsonObject
        {
            ["type"] = "SNOWFLAKE", ["account_name"] = "Snow", ["account"] = "myorg-myaccount", ["user"] = "Robot_User",
            ["private_key"] = pem, ["private_key_passphrase"] = passphrase,
        };
        var id = await rig.Http.CreateSourceAsync(create.ToJsonString());

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);

        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        var first = rig.StandIn.Requests[0];
        Assert.Equal(["statement", "timeout"], first.Json.Select(p => p.Key).Order(StringComparer.Ordinal));
        var jwt = Jwt.Decode(first.Header("Authorization")!["Bearer ".Length..]);
        var fingerprint = Convert.ToBase64String(SHA256.HashData(rsa.ExportSubjectPublicKeyInfo()));
        Assert.Equal($"MYORG-MYACCOUNT.ROBOT_USER.SHA256:{fingerprint}", jwt.Claim("iss"));
        Assert.Equal("MYORG-MYACCOUNT.ROBOT_USER", jwt.Claim("sub"));
        Assert.True(jwt.VerifiesWith(rsa));
        rig.App.AssertNoSecrets([report.ToJsonString()], passphrase, pem.Split('\n')[2]);
    }

    [Theory]
    [InlineData(401, "390144", "JWT token is invalid.", "authenticate", "auth_failed")]
    [InlineData(401, "", "Unauthorized", "authenticate", "auth_failed")]
    [InlineData(422, "002003", "SQL compilation error:\nDatabase 'SALES' does not exist or not authorized.", "query", "database_not_found")]
    [InlineData(422, "390201", "The requested warehouse does not exist or not authorized.", "query", "database_not_found")]
    [InlineData(422, "003001", "SQL access control error:\nInsufficient privileges to operate on warehouse 'COMPUTE_WH'", "query", "insufficient_privilege")]
    [InlineData(422, "001003", "SQL compilation error:\nsyntax error line 1", "query", "driver_error")]
    [InlineData(503, "", "Service Unavailable", "authenticate", "driver_error")]
    public async Task SQL_API_errors_map_to_stable_codes(int status, string code, string message, string step, string expected)
    {
        var error = new JsonObject { ["message"] = message, ["sqlState"] = "02000" };
        if (code.Length > 0)
        {
            error["code"] = code;
        }

        await using var rig = await Rig.StartAsync("SNOWFLAKE", _ => Reply.Json(status, error.ToJsonString()));
        var id = await rig.Http.CreateSourceAsync(KeyPairSource);

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);

        Assert.False(report["ok"]!.GetValue<bool>());
        Assert.Equal("failed", Reports.Status(report, step));
        Assert.Equal(expected, Reports.Code(report, step));
        Assert.Equal("skipped", Reports.Status(report, "schemas"));
        if (step == "query")
        {
            Assert.Equal("ok", Reports.Status(report, "authenticate"));
        }

        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        Assert.Equal(expected, discovery["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_password_logs_in_through_the_session_API_and_logs_out()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", SessionApi);
        var id = await rig.Http.CreateSourceAsync(PasswordSource);

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);

        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.Equal("resolve:ok egress:ok connect:ok tls:skipped authenticate:ok query:ok schemas:ok", Reports.Outline(report));
        var requests = rig.StandIn.Requests;
        Assert.Equal(
            ["POST /session/v1/login-request", "POST /queries/v1/query-request", "POST /queries/v1/query-request", "POST /session"],
            requests.Select(r => $"{r.Method} {r.Path}"));
        var login = requests[0];
        Assert.Equal("?warehouse=COMPUTE_WH&roleName=READER", login.Query);
        Assert.Equal(
            """{"data":{"ACCOUNT_NAME":"XY12345","LOGIN_NAME":"analyst","PASSWORD":"pw-Secret-4711","CLIENT_APP_ID":"caravan"}}""",
            login.Json.ToJsonString());
        Assert.Null(login.Header("Authorization"));
        Assert.Equal("""{"sqlText":"SELECT 1"}""", requests[1].Json.ToJsonString());
        Assert.Equal("""{"sqlText":"SHOW SCHEMAS"}""", requests[2].Json.ToJsonString());
        foreach (var request in requests.Skip(1))
        {
            Assert.Equal($"Snowflake Token=\"{SessionToken}\"", request.Header("Authorization"));
        }

        Assert.Equal("?delete=true", requests[3].Query);

        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal("""{"kind":"schemas","results":[{"name":"LAKE.RAW","selected":false},{"name":"SALES.PUBLIC","selected":false}]}""", discovery.Compact());
        rig.App.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], "pw-Secret-4711", SessionToken);
    }

    [Fact]
    public async Task A_refused_password_is_auth_failed_and_never_echoed()
    {
        await using var rig = await Rig.StartAsync("SNOWFLAKE", _ => Reply.Json("""
            {"data": {"nextAction": "RETRY_LOGIN"}, "code": "390100",
             "message": "Incorrect username or password was specified (pw-Secret-4711).", "success": false}
            """));
        var id = await rig.Http.CreateSourceAsync(PasswordSource);

        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        Assert.Equal("auth_failed", Reports.Code(report, "authenticate"));
        Assert.Equal("skipped", Reports.Status(report, "query"));
        Assert.Contains("Incorrect username or password", Reports.Step(report, "authenticate")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("auth_failed", discovery["code"]!.GetValue<string>());
        Assert.Equal(["POST /session/v1/login-request", "POST /session/v1/login-request"], rig.StandIn.Requests.Select(r => $"{r.Method} {r.Path}"));
        rig.App.AssertNoSecrets([report.ToJsonString(), discovery.ToJsonString()], "pw-Secret-4711");
    }

    [Fact]
    public async Task A_service_that_never_answers_times_out_within_the_deadline()
    {
        var report = await Rig.AssertNeverAnsweringTimesOutAsync("SNOWFLAKE", KeyPairSource);

        Assert.False(report["ok"]!.GetValue<bool>());
    }

    /// <summary>A SQL API that knows SELECT 1, the INFORMATION_SCHEMA query and SHOW SCHEMAS.</summary>
    private static Reply? SqlApi(Recorded request)
    {
        if (request is not { Method: "POST", Path: "/api/v2/statements" })
        {
            return Reply.Json(404, """{"code": "390404", "message": "Not found"}""");
        }

        var statement = request.Json["statement"]!.GetValue<string>();
        if (statement == "SELECT 1")
        {
            return Statement("""[{"name": "1", "type": "fixed"}]""", """[["1"]]""");
        }

        if (statement.StartsWith("SELECT SCHEMA_NAME", StringComparison.Ordinal))
        {
            return Statement("""[{"name": "SCHEMA_NAME", "type": "text"}]""", """[["ANALYTICS"], ["INFORMATION_SCHEMA"], ["PUBLIC"]]""");
        }

        return statement == "SHOW SCHEMAS"
            ? Statement(ShowSchemasColumns, ShowSchemasRows)
            : Reply.Json(422, """{"code": "001003", "message": "SQL compilation error"}""");
    }

    private const string ShowSchemasColumns = """
        [{"name": "created_on"}, {"name": "name"}, {"name": "is_default"}, {"name": "is_current"}, {"name": "database_name"}, {"name": "owner"}]
        """;

    private const string ShowSchemasRows = """
        [["2024-01-01", "PUBLIC", "N", "N", "SALES", "SYSADMIN"],
         ["2024-01-01", "INFORMATION_SCHEMA", "N", "N", "SALES", ""],
         ["2024-01-01", "RAW", "N", "N", "LAKE", "SYSADMIN"]]
        """;

    private static Reply Statement(string rowType, string data) => Reply.Json($$"""
        {"resultSetMetaData": {"numRows": 1, "format": "jsonv2", "rowType": {{rowType}}, "partitionInfo": [{"rowCount": 1}]},
         "data": {{data}}, "code": "090001", "statementStatusUrl": "/api/v2/statements/01b2?requestId=1",
         "sqlState": "00000", "statementHandle": "01b2", "message": "Statement executed successfully."}
        """);

    /// <summary>The session API: login, queries with the session token, logout.</summary>
    private static Reply? SessionApi(Recorded request)
    {
        switch (request.Path)
        {
            case "/session/v1/login-request":
                return Reply.Json($$"""{"data": {"token": "{{SessionToken}}", "masterToken": "master-0a1b"}, "code": null, "message": null, "success": true}""");
            case "/session":
                return Reply.Json("""{"data": null, "code": null, "message": null, "success": true}""");
            case "/queries/v1/query-request" when request.Header("Authorization") == $"Snowflake Token=\"{SessionToken}\"":
                var sql = request.Json["sqlText"]!.GetValue<string>();
                var (columns, rows) = sql == "SHOW SCHEMAS" ? (ShowSchemasColumns, ShowSchemasRows) : ("""[{"name": "1"}]""", """[["1"]]""");
                return Reply.Json($$"""{"data": {"rowtype": {{columns}}, "rowset": {{rows}}, "queryResultFormat": "json"}, "code": null, "message": null, "success": true}""");
            default:
                return Reply.Json(401, """{"data": null, "code": "390104", "message": "Session no longer exists.", "success": false}""");
        }
    }

    private static RSA PublicKeyFrom(string alterUserSql)
    {
        var body = PublicKeyPattern().Match(alterUserSql).Groups[1].Value;
        var rsa = RSA.Create();
        rsa.ImportSubjectPublicKeyInfo(Convert.FromBase64String(body), out _);
        return rsa;
    }

    [GeneratedRegex("RSA_PUBLIC_KEY='([A-Za-z0-9+/=]+)'")]
    private static partial Regex PublicKeyPattern();
}
