using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;

namespace Caravan.Api.Tests.Secrets;

/// <summary>
/// No configuration makes Caravan log a key or a secret (issue #12): a real Caravan process with
/// every log category at Trace, on the console as JSON with scopes, is driven through requests that
/// carry its API key and secrets (malformed headers, creates and updates, connection tests, discovery
/// and queries against the local database servers and a stand-in, MCP calls), and everything it
/// wrote is searched for each of them and for every 6-character piece of them.
/// </summary>
public sealed class TraceLoggingTests
{
    private const string Base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    private const int Piece = 6;

    /// <summary>What an operator could set to see everything: every level, every category, every provider.</summary>
    private static readonly Dictionary<string, string?> EverythingAtTrace = new()
    {
        ["Logging:LogLevel:Default"] = "Trace",
        ["Logging:LogLevel:Microsoft"] = "Trace",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Trace",
        ["Logging:LogLevel:Microsoft.AspNetCore.Server.Kestrel"] = "Trace",
        ["Logging:LogLevel:Microsoft.AspNetCore.Server.Kestrel.BadRequests"] = "Trace",
        ["Logging:LogLevel:*.BadRequests"] = "Trace",
        ["Logging:LogLevel:System.Net.Http.HttpClient"] = "Trace",
        ["Logging:LogLevel:ModelContextProtocol"] = "Trace",
        ["Logging:LogLevel:ModelContextProtocol.Server.McpServer"] = "Trace",
        ["Logging:Console:LogLevel:Default"] = "Trace",
        ["Logging:Console:LogLevel:Microsoft.AspNetCore.Server.Kestrel.BadRequests"] = "Trace",
        ["Logging:Console:LogLevel:ModelContextProtocol"] = "Trace",
        ["Logging:Console:FormatterName"] = "json",
        ["Logging:Console:FormatterOptions:IncludeScopes"] = "true",
    };

    [Fact]
    public async Task With_every_category_at_Trace_no_key_or_secret_reaches_the_output()
    {
        var directory = CaravanApp.NewDataDirectory();
        var key = "cvn_" + Secret(44);
        var pieces = new List<string> { key[4..] };
        var whole = new List<string> { key };
        await using var warehouse = await StandIn.StartAsync(_ => Reply.Json(401, """{"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}"""));
        var settings = new Dictionary<string, string?>(EverythingAtTrace)
        {
            ["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key"),
            ["Caravan:BootstrapApiKey"] = key,
            ["Caravan:Connectivity:TestTimeoutSeconds"] = "8",
            ["Caravan:Connectivity:Endpoints:DATABRICKS"] = warehouse.Url,
        };
        foreach (var (name, value) in TestStore.NewStoreSettings(directory))
        {
            settings[name] = value;
        }

        using var server = await CaravanProcess.Server.StartAsync(settings, directory);
        using var http = server.Client(key);
        string New()
        {
            var value = Secret(24);
            pieces.Add(value);
            return value;
        }

        // Malformed requests that carry the key: Kestrel refuses them itself (400), and at Debug quoted
        // the line; or they pass its parser and the key is refused (401).
        var answers = new List<string>();
        foreach (var malformed in new[]
        {
            $"Authorization: Bearer {key}\u0001",
            $"Authorization : Bearer {key}",
            $"Authorization Bearer {key}",
            $"X-API-Key: {key}\u0000",
            $"X-API-Key: {key}\r\n {key}",
        })
        {
            answers.Add(await RawAsync(server.Address, $"GET /api/v1/sources/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{malformed}\r\n\r\n"));
        }

        Assert.All(answers, answer => Assert.Matches("^HTTP/1.1 40[01] ", answer));
        Assert.True(answers.Count(a => a.StartsWith("HTTP/1.1 400", StringComparison.Ordinal)) >= 3, string.Join(" | ", answers.Select(a => a[..12])));

        Assert.StartsWith("HTTP/1.1 400", await RawAsync(server.Address, $"GET /api/v1/sources/?key={key} HTTP/1.1 x\r\nHost: 127.0.0.1\r\n\r\n"), StringComparison.Ordinal);
        using (var badKey = new HttpRequestMessage(HttpMethod.Get, "/api/v1/sources/"))
        {
            badKey.Headers.TryAddWithoutValidation("X-API-Key", "cvn_" + New());
            using var anonymous = new HttpClient { BaseAddress = server.Address };
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(badKey, TestContext.Current.CancellationToken)).StatusCode);
        }

        // Creates and updates with secrets, valid and refused.
        var snowflake = await http.CreateSourceAsync(Body(new() { ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "loader", ["password"] = New() }));
        await http.PatchJsonAsync($"/api/v1/sources/{snowflake}/update-config/", Body(new() { ["password"] = New() })).Expect(HttpStatusCode.OK);
        await http.CreateSourceAsync(Body(new() { ["type"] = "MOTHERDUCK", ["database_name"] = "my_db", ["token"] = New() }));
        await http.PostJsonAsync("/api/v1/sources/", "{\"type\": \"MYSQL\", \"password\": \"" + New()).Expect(HttpStatusCode.BadRequest);
        await http.PostJsonAsync("/api/v1/sources/", Body(new() { ["type"] = "POSTGRES", ["connection_string"] = $"postgresql://u:{New()}@db.example.com:99999/d" }))
            .Expect(HttpStatusCode.BadRequest);

        // A MongoDB that never answers, and a REST warehouse that refuses the token.
        using var silent = LoopbackListener.Silent();
        var mongo = await http.CreateSourceAsync(Body(new() { ["type"] = "MONGODB", ["connection_string"] = $"mongodb://reader:{New()}@127.0.0.1:{silent.Port}/app" }));
        var databricks = await http.CreateSourceAsync(Body(new()
        {
            ["type"] = "DATABRICKS", ["server_hostname"] = "adb-1234567890.1.azuredatabricks.net", ["http_path"] = "/sql/1.0/warehouses/abc123", ["access_token"] = New(),
        }));
        // The silent MongoDB takes the whole deadline (long enough for the local servers below on a loaded machine): at once.
        await Task.WhenAll(new[] { mongo, databricks }.SelectMany(id => new[]
        {
            http.PostJsonAsync($"/api/v1/sources/{id}/test/", "").Expect(HttpStatusCode.OK),
            http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.BadGateway),
        }));

        await http.PostJsonAsync($"/api/v1/sources/{databricks}/query/", """{"sql": "SELECT 1"}""").Expect(HttpStatusCode.BadGateway);

        // The local servers: a working source, a wrong password, a query that returns a marker.
        var sources = new List<long>();
        if (!Pg.Missing)
        {
            await using var db = await ScratchDatabase.CreateAsync(schemaCount: 1, password: New());
            var id = await http.CreateSourceAsync(db.Body());
            sources.Add(id);
            await http.PostJsonAsync("/api/v1/sources/test/", db.Body(b => b["password"] = New())).Expect(HttpStatusCode.OK);
            await http.PostJsonAsync($"/api/v1/sources/{id}/test/", "").Expect(HttpStatusCode.OK);
            await http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
            await http.PostJsonAsync($"/api/v1/sources/{id}/query/", Body(new() { ["sql"] = $"SELECT '{New()}' AS marker" })).Expect(HttpStatusCode.OK);
            await http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", Body(new() { ["password"] = New() })).Expect(HttpStatusCode.OK);
            Assert.False((await http.PostJsonAsync($"/api/v1/sources/{id}/test/", "").Expect(HttpStatusCode.OK))["ok"]!.GetValue<bool>());
            await http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", Body(new() { ["password"] = db.Password })).Expect(HttpStatusCode.OK);
            await McpCallsAsync(server, key, id, New);
        }

        foreach (var (type, admin, password) in new[]
        {
            ("MYSQL", Environment.GetEnvironmentVariable("CARAVAN_TEST_MYSQL"), null as string),
            ("CLICKHOUSE", Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE"), Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_PASSWORD")),
        })
        {
            if (string.IsNullOrEmpty(admin))
            {
                continue;
            }

            var (body, adminPassword) = AdminBody(type, admin, password);
            whole.Add(adminPassword);
            var id = await http.CreateSourceAsync(body.ToJsonString());
            body["password"] = New();
            await http.PostJsonAsync("/api/v1/sources/test/", body.ToJsonString()).Expect(HttpStatusCode.OK);
            await http.PostJsonAsync($"/api/v1/sources/{id}/test/", "").Expect(HttpStatusCode.OK);
            await http.PostJsonAsync($"/api/v1/sources/{id}/query/", Body(new() { ["sql"] = $"SELECT '{New()}' AS marker" })).Expect(HttpStatusCode.OK);
        }

        await server.StopAsync();
        var output = server.Output.Concat(server.Error).ToList();
        foreach (var line in File.ReadAllLines(Path.Combine(directory, "master.key")).Where(l => l.Length > 0 && !l.StartsWith('#')))
        {
            pieces.Add(line);
        }

        // The operator's settings took effect: framework categories did write at Debug and Trace.
        Assert.Contains(output, line => line.Contains("\"LogLevel\":\"Debug\"", StringComparison.Ordinal) && line.Contains("\"Category\":\"Microsoft.AspNetCore", StringComparison.Ordinal));
        Assert.Contains(output, line => line.Contains("\"LogLevel\":\"Trace\"", StringComparison.Ordinal));
        var leaks = whole.Concat(pieces).SelectMany(secret => Leaks(secret, output, pieces.Contains(secret))).Distinct().ToList();
        Assert.True(leaks.Count == 0, "The output carries keys or secrets:\n" + string.Join("\n", leaks.Take(30)));
    }

    private static async Task McpCallsAsync(CaravanProcess.Server server, string key, long source, Func<string> secret)
    {
        foreach (var asApiKeyHeader in new[] { false, true })
        {
            await using var mcp = await McpKit.ConnectAsync(new HttpClient { BaseAddress = server.Address }, key, asApiKeyHeader);
            await mcp.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);
            (await mcp.CallAsync("list_sources")).Ok();
            (await mcp.CallAsync("list_schemas", new() { ["source_id"] = source })).Ok();
            (await mcp.CallAsync("run_query", new() { ["source_id"] = source, ["sql"] = $"SELECT '{secret()}' AS marker", ["uid"] = secret() })).Ok();
        }

        using var raw = McpKit.Message("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}""");
        raw.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
        using var http = new HttpClient { BaseAddress = server.Address };
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(raw, TestContext.Current.CancellationToken)).StatusCode);
    }

    /// <summary>A source on a local server with its administrator's login (its password is returned, to look for whole).</summary>
    private static (JsonObject Body, string Password) AdminBody(string type, string admin, string? password)
    {
        if (type == "MYSQL")
        {
            var mysql = new MySqlConnector.MySqlConnectionStringBuilder(admin);
            return (new JsonObject
            {
                ["type"] = type, ["hostname"] = mysql.Server, ["port"] = (int)mysql.Port, ["username"] = mysql.UserID, ["password"] = mysql.Password, ["database_name"] = "mysql",
            }, mysql.Password);
        }

        var server = new Uri(admin);
        return (new JsonObject
        {
            ["type"] = type, ["host"] = server.Host, ["port"] = server.Port, ["secure"] = false,
            ["username"] = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_USER") ?? "default", ["password"] = password ?? string.Empty,
        }, password ?? string.Empty);
    }

    /// <summary>Where <paramref name="secret"/>, or (for a random one) any 6-character piece of it, appears in the output.</summary>
    private static IEnumerable<string> Leaks(string secret, IReadOnlyList<string> output, bool byPieces)
    {
        var needles = new HashSet<string>(StringComparer.Ordinal) { secret, JsonSerializer.Serialize(secret)[1..^1] };
        if (byPieces)
        {
            for (var start = 0; start + Piece <= secret.Length; start++)
            {
                needles.Add(secret.Substring(start, Piece));
            }
        }

        // One entry per secret and log category (or output line, when it is not a log event).
        return output
            .Where(line => needles.Any(n => n.Length >= Piece && line.Contains(n, StringComparison.Ordinal)))
            .Select(line => $"{secret[..Math.Min(8, secret.Length)]}… in {Category(line) ?? line[..Math.Min(300, line.Length)]}");
    }

    private static string? Category(string line)
    {
        try
        {
            return JsonNode.Parse(line)?["Category"]?.GetValue<string>();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Sends raw bytes over one connection and returns the start of the answer.</summary>
    private static async Task<string> RawAsync(Uri server, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(server.Host, server.Port, TestContext.Current.CancellationToken);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request), TestContext.Current.CancellationToken);
        var buffer = new byte[512];
        var read = await stream.ReadAsync(buffer, TestContext.Current.CancellationToken);
        return Encoding.Latin1.GetString(buffer, 0, read);
    }

    private static string Body(JsonObject body) => body.ToJsonString();

    private static string Secret(int length) => RandomNumberGenerator.GetString(Base62, length);
}
