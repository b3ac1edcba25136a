using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Secrets;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Secrets;

/// <summary>
/// "Never returned, never logged" (contract sections 1, 5 and 7), checked end to end: every secret a
/// client sends is looked for in every response, every log line at Trace level and every byte the
/// service leaves on disk.
/// </summary>
public sealed class SecretLeakTests
{
    private const string SourcesUrl = "/api/v1/sources/";

    [Fact]
    public async Task No_secret_reaches_a_response_a_log_line_or_a_file()
    {
        var secrets = new SecretBag();
        var responses = new ConcurrentQueue<string>();
        string apiKey;
        string dataDirectory;
        LogSink logs;
        List<string> storeDump;

        await using (var app = new OwnCaravan())
        {
            dataDirectory = app.DataDirectory;
            logs = app.Logs;
            var organization = Unique.Name("leak-");
            (_, apiKey) = await app.Services.GetRequiredService<ApiKeys>().CreateAsync(organization);
            using var http = RecordingClient(app, responses, apiKey);
            using var anonymous = RecordingClient(app, responses, apiKey: null);

            // POSTGRES, individual fields, then a password change.
            var postgres = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "POSTGRES", ["hostname"] = "pg.example.com", ["username"] = "analyst",
                ["password"] = secrets.New("pg-pw"), ["database_name"] = "sales",
            }));
            await Ok(http.PatchJsonAsync(UpdateConfig(postgres), Json(new JsonObject { ["password"] = secrets.New("pg-pw2") })));

            // POSTGRES from a connection string carrying a password and a credential option.
            var pgUriPassword = secrets.New("pg-uri-pw");
            var pgSslPassword = secrets.New("pg-ssl-pw");
            var postgresUri = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "postgres",
                ["connection_string"] = $"postgresql://report:{pgUriPassword}@pg2.example.com:5433/sales?sslmode=require&sslpassword={pgSslPassword}",
            }));
            secrets.Add($"postgresql://report:{pgUriPassword}@pg2.example.com:5433/sales");
            await Ok(http.PatchJsonAsync(UpdateConfig(postgresUri), Json(new JsonObject
            {
                ["connection_string"] = $"host=pg3.example.com port=5434 user=report password={secrets.New("pg-kv-pw")} dbname=sales",
            })));

            // MYSQL, created and then deleted.
            var mysql = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["hostname"] = "my.example.com", ["username"] = "root", ["password"] = secrets.New("my-pw"), ["database_name"] = "shop",
            }), SourcesUrl + "add/mysql/");

            // SNOWFLAKE with a password, then a new one.
            var snowflakePassword = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "loader", ["password"] = secrets.New("sf-pw"),
            }));
            await Ok(http.PatchJsonAsync(UpdateConfig(snowflakePassword), Json(new JsonObject
            {
                ["password"] = secrets.New("sf-pw2"), ["warehouse"] = "COMPUTE_WH",
            })));

            // SNOWFLAKE with a generated key pair: the private key Caravan made is a secret too.
            var generated = await http.PostJsonAsync(SourcesUrl, """{"type": "snowflake", "account": "xy12345.us-east-1", "user": "keyed"}""")
                .Expect(HttpStatusCode.OK);
            var snowflakeGenerated = generated["id"]!.GetValue<long>();
            Assert.StartsWith("ALTER USER \"keyed\" SET RSA_PUBLIC_KEY='", generated["public_key_sql"]!.GetValue<string>(), StringComparison.Ordinal);
            secrets.AddPem(await app.RevealAsync(snowflakeGenerated, "private_key"));

            // SNOWFLAKE with the user's own encrypted key and its passphrase.
            using var ownKey = RSA.Create(2048);
            var passphrase = secrets.New("sf-passphrase");
            var encryptedPem = ownKey.ExportEncryptedPkcs8PrivateKeyPem(passphrase,
                new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000));
            secrets.AddPem(encryptedPem);
            secrets.AddPem(ownKey.ExportPkcs8PrivateKeyPem());
            var snowflakeOwn = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "own",
                ["private_key"] = encryptedPem, ["private_key_passphrase"] = passphrase,
            }));

            // Sending the matching public key makes the service decrypt the stored key and passphrase.
            await Ok(http.PatchJsonAsync(UpdateConfig(snowflakeOwn), Json(new JsonObject
            {
                ["public_key"] = ownKey.ExportSubjectPublicKeyInfoPem(),
            })));

            // BIGQUERY with a real RSA key in the service-account key, then a new key sent as a string.
            var bigQuery = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "BIGQUERY", ["service_account_key"] = ServiceAccountKey(secrets),
            }));
            await Ok(http.PatchJsonAsync(UpdateConfig(bigQuery), Json(new JsonObject
            {
                ["service_account_key"] = ServiceAccountKey(secrets).ToJsonString(), ["selected_datasets"] = new JsonArray("events"),
            })));

            var motherDuck = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["database_name"] = "my_db", ["token"] = secrets.New("md-token"),
            }), SourcesUrl + "add/motherduck/");
            var motherDuckToken = secrets.New("md-token2");
            await Ok(http.PatchJsonAsync(UpdateConfig(motherDuck), Json(new JsonObject { ["token"] = motherDuckToken })));

            var databricks = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "DATABRICKS", ["server_hostname"] = "adb-1234567890.1.azuredatabricks.net",
                ["http_path"] = "/sql/1.0/warehouses/abc123", ["access_token"] = secrets.New("dapi"),
            }));

            var mongoPassword = secrets.New("mongo-pw");
            var mongoString = $"mongodb://app:{mongoPassword}@m1.example.com:27017,m2.example.com:27017/app?replicaSet=rs0";
            secrets.Add(mongoString);
            var mongo = await http.CreateSourceAsync(Json(new JsonObject { ["type"] = "MONGODB", ["connection_string"] = mongoString }));
            await Ok(http.PatchJsonAsync(UpdateConfig(mongo), Json(new JsonObject
            {
                ["connection_string"] = $"mongodb+srv://app:{secrets.New("mongo-srv-pw")}@cluster0.example.com/app",
            })));

            var mssqlPassword = secrets.New("mssql-pw");
            var mssql = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "MSSQL",
                ["connection_string"] = $"Server=tcp:sql.example.com,1433;Database=erp;User ID=reporter;Password={mssqlPassword};Encrypt=True",
            }));
            await Ok(http.PatchJsonAsync(UpdateConfig(mssql), Json(new JsonObject
            {
                ["connection_string"] = $"Driver={{ODBC Driver 18 for SQL Server}};Server=sql2.example.com,1444;Database=erp;UID=reporter;PWD={secrets.New("odbc-pw")};",
            })));

            var clickHouse = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["host"] = "ch.example.com", ["username"] = "default", ["password"] = secrets.New("ch-pw"),
            }), SourcesUrl + "add/clickhouse/");

            // MCP, against a real MCP server: created, tested, its tools discovered, listed and called
            // through /mcp, then given a new token; a base_url carrying a password is refused.
            var mcpToken = secrets.New("mcp-token");
            await using var remote = await Caravan.Api.Tests.Mcp.RemoteMcpServer.StartAsync(mcpToken);
            var mcp = await http.CreateSourceAsync(Json(new JsonObject { ["type"] = "MCP", ["base_url"] = remote.BaseUrl, ["access_token"] = mcpToken }));
            await Ok(http.PostJsonAsync($"{SourcesUrl}{mcp}/test/", "{}"));
            await Ok(http.GetAsync(new Uri($"{SourcesUrl}{mcp}/schemas/", UriKind.Relative)));
            await using (var agent = await Caravan.Api.Tests.Mcp.McpKit.ConnectAsync(app, apiKey))
            {
                var tools = await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);
                responses.Enqueue(string.Join("\n", tools.Select(t => $"{t.Name} {t.Description} {t.JsonSchema.GetRawText()}")));
                responses.Enqueue(Caravan.Api.Tests.Mcp.McpKit.Text(await Caravan.Api.Tests.Mcp.McpKit.CallAsync(agent, $"{mcp}__echo", new() { ["text"] = "hello" })));
            }

            remote.Token = secrets.New("mcp-token2");
            await Ok(http.PatchJsonAsync(UpdateConfig(mcp), Json(new JsonObject { ["access_token"] = remote.Token })));
            Assert.Contains("Bearer " + mcpToken, remote.Authorizations);

            // ssh_tunnel and tls (contract section 10): a tunnel password, an encrypted key and its
            // passphrase, a client key; merged member by member, then the tunnel moved with every secret again.
            var tunnelPassphrase = secrets.New("ssh-pp");
            var (tunnelKey, _) = NetworkPaths.PathKeys.SshKey("rsa", tunnelPassphrase);
            foreach (var line in NetworkPaths.PathKeys.KeyLines(tunnelKey))
            {
                secrets.Add(line);
            }
            using var authority = new NetworkPaths.PathKeys.Authority("Leak test CA");
            var (clientCertificate, clientKey) = authority.Issue("leak-client", client: true);
            secrets.AddPem(clientKey);
            var tunnelled = await http.CreateSourceAsync(Json(new JsonObject
            {
                ["type"] = "MYSQL", ["hostname"] = "my-private.internal", ["username"] = "root", ["password"] = secrets.New("tunnelled-db-pw"), ["database_name"] = "shop",
                ["ssh_tunnel"] = new JsonObject { ["host"] = "bastion.example.com", ["username"] = "jump", ["password"] = secrets.New("ssh-pw") },
                ["tls"] = new JsonObject { ["mode"] = "verify-ca", ["ca_certificate"] = authority.CertificatePem, ["client_certificate"] = clientCertificate, ["client_key"] = clientKey },
            }));
            await Ok(http.PatchJsonAsync(UpdateConfig(tunnelled), Json(new JsonObject
            {
                ["ssh_tunnel"] = new JsonObject { ["private_key"] = tunnelKey, ["private_key_passphrase"] = tunnelPassphrase },
            })));
            await Ok(http.PatchJsonAsync(UpdateConfig(tunnelled), Json(new JsonObject
            {
                ["password"] = secrets.New("tunnelled-db-pw2"),
                ["ssh_tunnel"] = new JsonObject
                {
                    ["host"] = "bastion2.example.com", ["password"] = secrets.New("ssh-pw2"), ["private_key"] = tunnelKey,
                    ["private_key_passphrase"] = tunnelPassphrase,
                },
            })));

            // Creates with an Idempotency-Key, their replays and a conflict: the stored requests and
            // answers must hold none of the secrets.
            var keyedMySql = Json(new JsonObject
            {
                ["type"] = "MYSQL", ["hostname"] = "my2.example.com", ["username"] = "root", ["password"] = secrets.New("keyed-pw"), ["database_name"] = "shop",
            });
            const string keyedSnowflake = """{"type": "snowflake", "account": "xy12345.us-east-1", "user": "keyed-pair"}""";
            var keyedIds = new HashSet<long>();
            foreach (var (key, body) in new[] { ("leak-key-1", keyedMySql), ("leak-key-1", keyedMySql), ("leak-key-2", keyedSnowflake), ("leak-key-2", keyedSnowflake) })
            {
                var answer = await Keyed(http, key, body).Expect(HttpStatusCode.OK);
                keyedIds.Add(answer["id"]!.GetValue<long>());
                if (key == "leak-key-2")
                {
                    secrets.AddPem(await app.RevealAsync(answer["id"]!.GetValue<long>(), "private_key"));
                }
            }

            await Keyed(http, "leak-key-1", Json(new JsonObject
            {
                ["type"] = "MYSQL", ["hostname"] = "my2.example.com", ["username"] = "root", ["password"] = secrets.New("keyed-conflict-pw"), ["database_name"] = "shop",
            })).Expect(HttpStatusCode.Conflict);

            // Invalid requests that carry secrets: refused, and the refusal must not repeat them.
            var refused = new (string Method, string Url, string Body)[]
            {
                ("POST", SourcesUrl, Json(new JsonObject
                {
                    ["type"] = "MYSQL", ["hostname"] = "my.example.com", ["port"] = 70000, ["username"] = "u",
                    ["password"] = secrets.New("bad-my-pw"), ["database_name"] = "d",
                })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "POSTGRES", ["connection_string"] = "this is not a url " + secrets.New("bad-cs") })),
                ("POST", SourcesUrl, Json(new JsonObject
                {
                    ["type"] = "POSTGRES", ["connection_string"] = $"postgresql://u:{secrets.New("bad-port-pw")}@db.example.com:99999/d",
                })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "MONGODB", ["connection_string"] = $"http://u:{secrets.New("bad-mongo")}@m.example.com/" })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "MCP", ["base_url"] = $"https://u:{secrets.New("bad-mcp")}@mcp.example.com/mcp" })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "MSSQL", ["connection_string"] = $"Server=;Password={secrets.New("bad-mssql")}" })),
                ("POST", SourcesUrl, Json(new JsonObject
                {
                    ["type"] = "SNOWFLAKE", ["account"] = "xy12345", ["user"] = "u", ["private_key"] = "-----BEGIN PRIVATE KEY-----\n" + secrets.New("bad-pem") + "\n-----END PRIVATE KEY-----",
                })),
                ("POST", SourcesUrl, Json(new JsonObject
                {
                    ["type"] = "BIGQUERY",
                    ["service_account_key"] = new JsonObject { ["type"] = "service_account", ["private_key"] = secrets.New("bad-sa-key") },
                })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "BIGQUERY", ["service_account_key"] = "{\"private_key\": \"" + secrets.New("bad-sa-string") })),
                ("POST", SourcesUrl + "add/motherduck/", Json(new JsonObject { ["token"] = secrets.New("md-no-db") })),
                ("POST", SourcesUrl + "add/databricks/", Json(new JsonObject
                {
                    ["server_hostname"] = "https://adb.example.com/x", ["http_path"] = "/sql", ["access_token"] = secrets.New("bad-dapi"),
                })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "CLICKHOUSE", ["host"] = "ch", ["username"] = "u", ["password"] = secrets.New("nul-pw") + "\u0000" })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "CLICKHOUSE", ["host"] = "ch", ["username"] = "u", ["password"] = new JsonArray(secrets.New("list-pw")) })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "CLICKHOUSE", ["host"] = "ch", ["username"] = "u", ["password"] = secrets.New("long-pw") + new string('x', 9000) })),
                ("POST", SourcesUrl, Json(new JsonObject { ["type"] = "MYSQL", ["passwd"] = secrets.New("unknown-field-pw") })),
                ("POST", SourcesUrl + "add/", Json(new JsonObject { ["type"] = "MYSQL", ["password"] = secrets.New("legacy-pw") })),
                ("POST", SourcesUrl, "{\"type\": \"MYSQL\", \"password\": \"" + secrets.New("truncated-pw")),
                ("POST", SourcesUrl, "{\"type\": \"MYSQL\", \"password\": \"" + secrets.New("broken-pw") + "\" \"x\"}"),
                ("PATCH", UpdateConfig(postgres), Json(new JsonObject { ["password"] = secrets.New("with-bad-port"), ["port"] = "abc" })),
                ("PATCH", UpdateConfig(postgres), Json(new JsonObject { ["password"] = secrets.New("mixed"), ["connection_string"] = $"postgresql://u:{secrets.New("mixed-cs")}@h/d" })),
                ("PATCH", UpdateConfig(snowflakeOwn), Json(new JsonObject { ["private_key_passphrase"] = secrets.New("wrong-passphrase") })),
                ("PATCH", UpdateConfig(snowflakeOwn), Json(new JsonObject { ["private_key"] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + secrets.New("bad-enc-pem") + "\n-----END ENCRYPTED PRIVATE KEY-----" })),
                ("PATCH", UpdateConfig(mongo), Json(new JsonObject { ["connection_string"] = $"mongodb://u:{secrets.New("bad-mongo-port")}@m.example.com:0/x" })),
                ("PATCH", UpdateConfig(mssql), Json(new JsonObject { ["connection_string"] = $"Server=sql.example.com,abc;Password={secrets.New("bad-mssql-port")}" })),
                ("PATCH", UpdateConfig(databricks), Json(new JsonObject { ["access_token"] = secrets.New("type-change"), ["type"] = "POSTGRES" })),
                ("PATCH", UpdateConfig(tunnelled), Json(new JsonObject { ["ssh_tunnel"] = new JsonObject { ["private_key_passphrase"] = secrets.New("wrong-ssh-pp") } })),
                ("PATCH", UpdateConfig(tunnelled), Json(new JsonObject
                {
                    ["ssh_tunnel"] = new JsonObject { ["private_key"] = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + secrets.New("bad-ssh-key") + "\n-----END OPENSSH PRIVATE KEY-----" },
                })),
                ("PATCH", UpdateConfig(tunnelled), Json(new JsonObject { ["ssh_tunnel"] = new JsonObject { ["host"] = "evil.example.com", ["password"] = secrets.New("rebind-ssh-pw") } })),
                ("PATCH", UpdateConfig(tunnelled), Json(new JsonObject { ["ssh_tunnel"] = new JsonObject { ["passwd"] = secrets.New("unknown-member-pw") } })),
                ("PATCH", UpdateConfig(tunnelled), Json(new JsonObject { ["tls"] = new JsonObject { ["client_key"] = "-----BEGIN PRIVATE KEY-----\n" + secrets.New("bad-client-key") + "\n-----END PRIVATE KEY-----" } })),
                ("PATCH", SourcesUrl + postgres + "/", Json(new JsonObject { ["password"] = secrets.New("rename-pw") })),
                ("PUT", SourcesUrl + clickHouse + "/", Json(new JsonObject { ["account_name"] = "x", ["password"] = secrets.New("put-pw") })),
            };
            foreach (var (method, url, body) in refused)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{method} {url} answered {(int)response.StatusCode}");
            }

            // Secrets sent with the wrong media type, without a key, or with a bad key.
            using (var textPlain = new HttpRequestMessage(HttpMethod.Post, SourcesUrl)
            {
                Content = new StringContent($"{{\"type\": \"MYSQL\", \"password\": \"{secrets.New("text-plain")}\"}}", Encoding.UTF8, "text/plain"),
            })
            {
                using var response = await http.SendAsync(textPlain, TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
            }

            using (var unauthenticated = await anonymous.PostJsonAsync(SourcesUrl, Json(new JsonObject
            {
                ["type"] = "MOTHERDUCK", ["database_name"] = "d", ["token"] = secrets.New("anonymous-token"),
            })))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, unauthenticated.StatusCode);
            }

            using (var badKey = new HttpRequestMessage(HttpMethod.Post, SourcesUrl)
            {
                Content = new StringContent(Json(new JsonObject { ["type"] = "MOTHERDUCK", ["database_name"] = "d", ["token"] = secrets.New("bad-key-token") }), Encoding.UTF8, "application/json"),
            })
            {
                badKey.Headers.Add("X-API-Key", "cvn_" + secrets.New("not-a-key").Replace("-", string.Empty, StringComparison.Ordinal));
                using var response = await anonymous.SendAsync(badKey, TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            }

            // Delete one: its secrets are erased from the row, not just hidden.
            await http.DeleteAsync(new Uri(SourcesUrl + mysql + "/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.NoContent);
            var deleted = await app.StoredSourceAsync(mysql);
            Assert.NotNull(deleted.DeletedAt);
            Assert.Empty(deleted.Secrets);

            // Read everything back, so every answer that could carry a secret has been given.
            var ids = new[] { postgres, postgresUri, snowflakePassword, snowflakeGenerated, snowflakeOwn, bigQuery, motherDuck, databricks, mongo, mssql, clickHouse, mcp, tunnelled };
            foreach (var id in ids)
            {
                await http.GetAsync(new Uri($"{SourcesUrl}{id}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
                await http.GetAsync(new Uri($"{SourcesUrl}{id}/config/", UriKind.Relative), TestContext.Current.CancellationToken);
                await http.GetAsync(new Uri($"{SourcesUrl}{id}/revisions/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
            }

            // Every change was audited; the scan of every log line below covers those events too.
            Assert.Equal(
                ids.Append(mysql).Concat(keyedIds).Order(),
                logs.Events.Where(e => e.Category == Caravan.Api.Revisions.AuditLog.Category).Select(e => (long)e.Properties["SourceId"]!).Distinct().Order());

            await http.GetAsync(new Uri(SourcesUrl, UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
            await http.GetAsync(new Uri(SourcesUrl + mysql + "/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.NotFound);

            // Every value of every table of the store, whichever store this run uses.
            storeDump = await DumpStoreAsync(app);

            // The stored secrets are still what was sent last (the service did keep them, encrypted).
            Assert.Equal(motherDuckToken, await app.RevealAsync(motherDuck, "token"));
            Assert.Equal(passphrase, await app.RevealAsync(snowflakeOwn, "private_key_passphrase"));
            Assert.Equal(tunnelKey, await app.RevealAsync(tunnelled, "ssh_tunnel.private_key"));
            Assert.Equal(clientKey, await app.RevealAsync(tunnelled, "tls.client_key"));
        }

        var needles = secrets.All.Append(apiKey).ToList();
        Assert.True(needles.Count > 40, "the test should track many secret values");

        var leaksInResponses = responses.SelectMany(r => Leaks(needles, r)).Distinct().ToList();
        Assert.True(leaksInResponses.Count == 0, "Responses carry secrets: " + string.Join(", ", leaksInResponses));

        Assert.NotEmpty(logs.Lines);
        var leakingLines = logs.Lines.Where(line => Leaks(needles, line).Any()).Take(5).ToList();
        Assert.True(leakingLines.Count == 0, "Log lines carry secrets:\n" + string.Join("\n", leakingLines));

        Assert.NotEmpty(storeDump);
        var leaksInStore = storeDump.SelectMany(value => Leaks(needles, value)).Distinct().ToList();
        Assert.True(leaksInStore.Count == 0, "The store holds secrets in plain text: " + string.Join(", ", leaksInStore));

        AssertNoSecretOnDisk(dataDirectory, needles);

        // Once the pooled connections are closed, SQLite checkpoints the WAL into the main file: look again.
        ClearPool(dataDirectory);
        AssertNoSecretOnDisk(dataDirectory, needles);
    }

    /// <summary>
    /// Every message path of every type, with a secret of its own in each of the type's secret
    /// fields, scanned for any six characters of any of them: the test report and its streamed
    /// form, discovery's 502, the query route's answer, the MCP tools' errors and every log line.
    /// The HTTP services (ClickHouse, and the Snowflake, BigQuery and Databricks endpoints) are a
    /// stand-in that repeats everything it receives, headers and body, in its error answer; the
    /// others are a closed port.
    /// </summary>
    [Fact]
    public async Task No_fragment_of_a_secret_reaches_a_message_path_of_any_type()
    {
        var secrets = new List<string>();
        string New()
        {
            var secret = SecretFragments.New();
            secrets.Add(secret);
            return secret;
        }

        await using var echo = await Connectivity.StandIn.StartAsync(request => Echo(request, secrets));
        await using var app = new OwnCaravan(new Dictionary<string, string?>
        {
            ["Caravan:Connectivity:TestTimeoutSeconds"] = "2",
            ["Caravan:Connectivity:Endpoints:SNOWFLAKE"] = echo.Url,
            ["Caravan:Connectivity:Endpoints:BIGQUERY"] = echo.Url,
            ["Caravan:Connectivity:Endpoints:DATABRICKS"] = echo.Url,
        });
        var org = await app.NewOrganizationAsync();
        var closed = Loopback.ClosedPort();
        var echoPort = new Uri(echo.Url).Port;
        using var ownKey = RSA.Create(2048);
        var passphrase = New();
        var bodies = new JsonObject[]
        {
            new() { ["type"] = "POSTGRES", ["hostname"] = "127.0.0.1", ["port"] = closed, ["username"] = "u", ["password"] = New(), ["database_name"] = "d" },
            new() { ["type"] = "POSTGRES", ["connection_string"] = $"postgresql://u:{New()}@127.0.0.1:{closed}/d?sslpassword={New()}" },
            new() { ["type"] = "SUPABASE", ["hostname"] = "127.0.0.1", ["port"] = closed, ["username"] = "u", ["password"] = New(), ["database_name"] = "d" },
            new() { ["type"] = "MYSQL", ["hostname"] = "127.0.0.1", ["port"] = closed, ["username"] = "u", ["password"] = New(), ["database_name"] = "d" },
            new() { ["type"] = "SINGLESTORE", ["hostname"] = "127.0.0.1", ["port"] = closed, ["username"] = "u", ["password"] = New(), ["database_name"] = "d" },
            new() { ["type"] = "MSSQL", ["connection_string"] = $"Server=127.0.0.1,{closed};Database=d;User ID=u;Password={New()};Encrypt=False" },
            new() { ["type"] = "MONGODB", ["connection_string"] = $"mongodb://u:{New()}@127.0.0.1:{closed}/d" },
            new() { ["type"] = "CLICKHOUSE", ["host"] = "127.0.0.1", ["port"] = echoPort, ["username"] = "u", ["password"] = New(), ["secure"] = false },
            new() { ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "u", ["password"] = New() },
            new()
            {
                ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "own", ["private_key_passphrase"] = passphrase,
                ["private_key"] = ownKey.ExportEncryptedPkcs8PrivateKeyPem(passphrase, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)),
            },
            new()
            {
                ["type"] = "BIGQUERY",
                ["service_account_key"] = new JsonObject
                {
                    ["type"] = "service_account", ["project_id"] = "caravan-test", ["private_key_id"] = New(), ["private_key"] = ownKey.ExportPkcs8PrivateKeyPem(),
                    ["client_email"] = "reader@caravan-test.iam.gserviceaccount.com", ["token_uri"] = "https://oauth2.googleapis.com/token",
                },
            },
            new() { ["type"] = "MOTHERDUCK", ["database_name"] = "my_db", ["token"] = New() },
            new() { ["type"] = "DATABRICKS", ["server_hostname"] = "adb-1.azuredatabricks.net", ["http_path"] = "/sql/1.0/warehouses/abc", ["access_token"] = New() },
            new() { ["type"] = "MCP", ["base_url"] = echo.Url + "/mcp", ["access_token"] = New() },
        };
        Assert.Equal(
            Caravan.Api.Tests.Sources.Types.TypeCatalog.FieldTypes.Select(t => t.Name).Order(StringComparer.Ordinal),
            bodies.Select(b => b["type"]!.GetValue<string>()).Distinct().Order(StringComparer.Ordinal));

        var answers = new ConcurrentQueue<string>();
        await Task.WhenAll(bodies.Select(async body =>
        {
            var id = await org.Http.CreateSourceAsync(Json(body));
            foreach (var (method, url, content, accept) in new (HttpMethod, string, string?, string?)[]
            {
                (HttpMethod.Post, $"{SourcesUrl}{id}/test/", "{}", null),
                (HttpMethod.Post, $"{SourcesUrl}{id}/test/", "{}", Caravan.Api.Connectivity.StreamedTest.MediaType),
                (HttpMethod.Post, $"{SourcesUrl}test/", Json(body), null),
                (HttpMethod.Get, $"{SourcesUrl}{id}/schemas/", null, null),
                (HttpMethod.Post, $"{SourcesUrl}{id}/query/", """{"sql": "SELECT 1", "timeout_ms": 3000}""", null),
            })
            {
                using var request = new HttpRequestMessage(method, new Uri(url, UriKind.Relative));
                request.Content = content is null ? null : new StringContent(content, Encoding.UTF8, "application/json");
                if (accept is not null)
                {
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
                }

                using var response = await org.Http.SendAsync(request, TestContext.Current.CancellationToken);
                answers.Enqueue($"{(int)response.StatusCode} {method} {url}\n{response.Headers}\n{await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
            }

            await using var mcp = await Mcp.McpKit.ConnectAsync(app, org.Key);
            answers.Enqueue(Mcp.McpKit.Text(await Mcp.McpKit.CallAsync(mcp, "list_schemas", new() { ["source_id"] = id })));
            answers.Enqueue(Mcp.McpKit.Text(await Mcp.McpKit.CallAsync(mcp, "run_query", new() { ["source_id"] = id, ["sql"] = "SELECT 1", ["timeout_ms"] = 3000 })));
        }));

        // The stand-in did hear the secrets it could repeat.
        Assert.Contains(echo.Requests, r => r.Header("X-ClickHouse-Key") is { Length: > 0 } key && secrets.Contains(key));
        Assert.Contains(echo.Requests, r => r.Body.Contains("\"PASSWORD\"", StringComparison.Ordinal));
        Assert.Contains(echo.Requests, r => r.Header("Authorization") is { } authorization && secrets.Any(authorization.Contains));
        SecretFragments.AssertNone(answers, secrets, "the answers");
        SecretFragments.AssertNone(app.Logs.Lines, secrets, "the log lines");
    }

    /// <summary>
    /// An error answer that repeats the whole request on one line, in the shape each client reads a
    /// message from; the first secret it repeats is placed across the point where drivers used to
    /// cut a server's words (300 characters for ClickHouse, 200 for the REST services).
    /// </summary>
    private static Connectivity.Reply Echo(Connectivity.Recorded request, IReadOnlyList<string> secrets)
    {
        var clickHouse = request.Headers.ContainsKey("X-ClickHouse-User");
        var said = request.Body.ReplaceLineEndings(" ") + " " + string.Join(", ", request.Headers
            .OrderByDescending(h => h.Key is "Authorization" or "X-ClickHouse-Key")
            .Select(h => $"{h.Key}: {h.Value}"));
        var first = secrets.Select(secret => said.IndexOf(secret, StringComparison.Ordinal)).Where(at => at >= 0).DefaultIfEmpty(-1).Min();
        var cut = clickHouse ? 300 : 200;
        said = new string('.', first >= 0 ? Math.Max(0, cut - 10 - first) : 0) + said;
        if (clickHouse)
        {
            return new Connectivity.Reply(401, $"Code: 516. DB::Exception: {said}\n", "text/plain");
        }

        return request.Path == "/token"
            ? Connectivity.Reply.Json(400, new JsonObject { ["error"] = "invalid_grant", ["error_description"] = said }.ToJsonString())
            : Connectivity.Reply.Json(401, new JsonObject
            {
                ["success"] = false, ["code"] = "390100", ["error_code"] = "UNAUTHENTICATED", ["message"] = said,
                ["error"] = new JsonObject { ["code"] = 401, ["message"] = said },
            }.ToJsonString());
    }

    [Fact]
    public async Task A_ciphertext_moved_to_another_source_does_not_decrypt_and_the_api_fails_cleanly()
    {
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var secrets = new SecretBag();

        using var keyA = RSA.Create(2048);
        using var keyB = RSA.Create(2048);
        secrets.AddPem(keyA.ExportPkcs8PrivateKeyPem());
        secrets.AddPem(keyB.ExportPkcs8PrivateKeyPem());
        var alicePassword = secrets.New("alice-pw");
        var sourceA = await org.Http.CreateSourceAsync(Json(new JsonObject
        {
            ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "alice",
            ["password"] = alicePassword, ["private_key"] = keyA.ExportPkcs8PrivateKeyPem(),
        }));
        var sourceB = await org.Http.CreateSourceAsync(Json(new JsonObject
        {
            ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "bob",
            ["password"] = secrets.New("bob-pw"), ["private_key"] = keyB.ExportPkcs8PrivateKeyPem(),
        }));

        // Both decrypt where they belong.
        Assert.Equal(alicePassword, await app.RevealAsync(sourceA, "password"));
        Assert.Equal(keyB.ExportPkcs8PrivateKeyPem(), await app.RevealAsync(sourceB, "private_key"));

        var database = app.Services.GetRequiredService<Database>();
        await using (var connection = await database.OpenAsync(TestContext.Current.CancellationToken))
        {
            await using var command = connection.Command("UPDATE sources SET secrets = (SELECT secrets FROM sources WHERE id = @from) WHERE id = @to")
                .With("@from", sourceA).With("@to", sourceB);
            Assert.Equal(1, await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken));
        }

        var moved = await Assert.ThrowsAsync<SecretDecryptionException>(() => app.RevealAsync(sourceB, "password"));
        Assert.Equal(SecretDecryptionFailure.NotAuthentic, moved.Failure);
        await Assert.ThrowsAsync<SecretDecryptionException>(() => app.RevealAsync(sourceB, "private_key"));
        Assert.Equal(alicePassword, await app.RevealAsync(sourceA, "password"));

        // An update-config that needs the stored private key (to check a public key against it) fails cleanly.
        var before = await app.StoredSourceAsync(sourceB);
        using var response = await org.Http.PatchJsonAsync($"{SourcesUrl}{sourceB}/update-config/", Json(new JsonObject
        {
            ["public_key"] = keyB.ExportSubjectPublicKeyInfoPem(),
        }));
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.InternalServerError, $"Expected 500, got {(int)response.StatusCode}: {text}");
        var body = JsonNode.Parse(text)!.AsObject();
        Assert.Equal(["detail", "trace_id"], body.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal("Internal server error.", body["detail"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(body["trace_id"]!.GetValue<string>()));
        Assert.Empty(Leaks(secrets.All, text));
        Assert.DoesNotContain("Exception", text, StringComparison.Ordinal);
        Assert.Equal(before, await app.StoredSourceAsync(sourceB));

        var leakingLines = app.Logs.Lines.Where(line => Leaks(secrets.All, line).Any()).Take(5).ToList();
        Assert.True(leakingLines.Count == 0, "Log lines carry secrets:\n" + string.Join("\n", leakingLines));

        // The service is still fine for the source whose secrets were not touched.
        await org.Http.PatchJsonAsync($"{SourcesUrl}{sourceA}/update-config/", Json(new JsonObject
        {
            ["public_key"] = keyA.ExportSubjectPublicKeyInfoPem(),
        })).Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_master_key_file_is_created_readable_by_its_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        await using var app = new OwnCaravan();
        var path = Path.Combine(app.DataDirectory, "master.key");
        Assert.False(File.Exists(path));

        await app.NewOrganizationAsync();

        Assert.True(File.Exists(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    private static HttpClient RecordingClient(CaravanApp app, ConcurrentQueue<string> responses, string? apiKey)
    {
        var client = app.CreateDefaultClient(new RecordingHandler(responses));
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    private static async Task Ok(Task<HttpResponseMessage> pending) => await pending.Expect(HttpStatusCode.OK);

    private static async Task<HttpResponseMessage> Keyed(HttpClient http, string key, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, SourcesUrl) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", key);
        return await http.SendAsync(request, TestContext.Current.CancellationToken);
    }

    private static string UpdateConfig(long id) => $"{SourcesUrl}{id}/update-config/";

    private static string Json(JsonObject body) => body.ToJsonString();

    private static JsonObject ServiceAccountKey(SecretBag secrets)
    {
        using var rsa = RSA.Create(2048);
        var pem = rsa.ExportPkcs8PrivateKeyPem();
        secrets.AddPem(pem);
        return new JsonObject
        {
            ["type"] = "service_account",
            ["project_id"] = "caravan-test",
            ["private_key_id"] = secrets.New("sa-key-id").Replace("-", string.Empty, StringComparison.Ordinal),
            ["private_key"] = pem,
            ["client_email"] = "reader@caravan-test.iam.gserviceaccount.com",
            ["client_id"] = "100000000000000000001",
            ["token_uri"] = "https://oauth2.googleapis.com/token",
        };
    }

    /// <summary>The needles found in <paramref name="text"/>, raw or JSON-escaped.</summary>
    private static IEnumerable<string> Leaks(IEnumerable<string> needles, string text) =>
        needles.Where(needle => Variants(needle).Any(variant => text.Contains(variant, StringComparison.Ordinal)));

    /// <summary>A secret as it would appear written plainly or inside JSON (where '+' may become \u002B).</summary>
    private static IEnumerable<string> Variants(string needle)
    {
        yield return needle;
        var escaped = JsonText.Quote(needle)[1..^1];
        if (escaped != needle)
        {
            yield return escaped;
        }

        var relaxed = JsonText.Quote(needle, JavaScriptEncoder.UnsafeRelaxedJsonEscaping)[1..^1];
        if (relaxed != needle && relaxed != escaped)
        {
            yield return relaxed;
        }
    }

    /// <summary>Every value of every table, as text (blobs decoded as UTF-8 and UTF-16 too).</summary>
    private static async Task<List<string>> DumpStoreAsync(CaravanApp app)
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync(TestContext.Current.CancellationToken);
        var tables = new List<string>();
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = TestStore.IsPostgres
                ? "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                : "SELECT name FROM sqlite_master WHERE type = 'table'";
            await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                tables.Add(reader.GetString(0));
            }
        }

        Assert.Contains("sources", tables);
        Assert.Contains("idempotency_keys", tables);
        var values = new List<string>();
        foreach (var table in tables)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT * FROM \"{table.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
            await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    switch (reader.IsDBNull(i) ? null : reader.GetValue(i))
                    {
                        case null:
                            break;
                        case byte[] bytes:
                            values.Add(Encoding.UTF8.GetString(bytes));
                            values.Add(Encoding.Unicode.GetString(bytes));
                            break;
                        case var value:
                            values.Add(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty);
                            break;
                    }
                }
            }
        }

        return values;
    }

    private static void AssertNoSecretOnDisk(string dataDirectory, IReadOnlyList<string> needles)
    {
        var files = Directory.GetFiles(dataDirectory, "*", SearchOption.AllDirectories);
        if (!TestStore.IsPostgres)
        {
            Assert.Contains(files, f => Path.GetFileName(f) == "caravan.db");
        }

        Assert.Contains(files, f => Path.GetFileName(f) == "master.key");
        var patterns = needles
            .SelectMany(n => Variants(n).Select(v => (Needle: n, Bytes: new[] { Encoding.UTF8.GetBytes(v), Encoding.Unicode.GetBytes(v), Encoding.BigEndianUnicode.GetBytes(v) })))
            .ToList();
        var found = new List<string>();
        foreach (var file in files)
        {
            // master.key holds the master key by design; it must hold nothing else.
            var bytes = File.ReadAllBytes(file);
            foreach (var (needle, forms) in patterns)
            {
                if (forms.Any(form => bytes.AsSpan().IndexOf(form) >= 0))
                {
                    found.Add($"{Path.GetFileName(file)}: {needle}");
                }
            }
        }

        Assert.True(found.Count == 0, "Secrets on disk:\n" + string.Join("\n", found.Distinct().Take(20)));
    }

    private static void ClearPool(string dataDirectory)
    {
        var builder = new SqliteConnectionStringBuilder($"Data Source={Path.Combine(dataDirectory, "caravan.db")}") { Pooling = true };
        using var connection = new SqliteConnection(builder.ToString());
        SqliteConnection.ClearPool(connection);
    }

    /// <summary>The distinctive secret values of one test, and the lines of the private keys it used.</summary>
    private sealed class SecretBag
    {
        private readonly List<string> _values = [];

        public IReadOnlyList<string> All => _values;

        public string New(string label)
        {
            var value = Unique.Secret($"Pw-{label}-");
            _values.Add(value);
            return value;
        }

        public void Add(string value) => _values.Add(value);

        /// <summary>Every full base64 line of a PEM key: any one of them found anywhere is a leak.</summary>
        public void AddPem(string pem) =>
            _values.AddRange(pem.Split('\n').Select(line => line.Trim()).Where(line => line.Length == 64 && !line.StartsWith("-----", StringComparison.Ordinal)));
    }

    /// <summary>Keeps every response's status, headers and body, so the test can search them afterwards.</summary>
    private sealed class RecordingHandler(ConcurrentQueue<string> responses) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            responses.Enqueue($"{(int)response.StatusCode} {request.Method} {request.RequestUri}\n{response.Headers}{response.Content.Headers}\n{body}");
            return response;
        }
    }
}
