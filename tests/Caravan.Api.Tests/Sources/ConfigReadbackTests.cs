using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// <c>GET /api/v1/sources/{id}/config/</c> (contract section 8): every non-secret field as stored,
/// every secret of the type by state and fingerprint only, the source's ETag, and the 404 rules.
/// </summary>
public sealed partial class ConfigReadbackTests(CaravanApp app)
{
    public static TheoryData<string> Cases() => [.. ReadbackCase.Names];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Every_field_round_trips_and_every_secret_is_listed_by_state_only(string name)
    {
        var org = await app.NewOrganizationAsync();
        var sample = ReadbackCase.Create(name);
        var id = await org.Http.CreateSourceAsync(sample.Body.ToJsonString());

        var (body, text, etag) = await ReadAsync(org, id);

        Assert.Equal(["id", "type", "account_name", "version", "config", "secrets"], body.AsObject().Select(p => p.Key));
        Assert.Equal(id, body["id"]!.GetValue<long>());
        Assert.Equal(sample.Type, body["type"]!.GetValue<string>());
        Assert.Equal(sample.Body["account_name"]!.GetValue<string>(), body["account_name"]!.GetValue<string>());
        Assert.Equal(1, body["version"]!.GetValue<long>());

        // The non-secret fields, exactly as sent; nothing else (no connection string, no bookkeeping).
        var config = body["config"]!.AsObject();
        Assert.Equal(sample.Config.Select(p => p.Key).Order(StringComparer.Ordinal), config.Select(p => p.Key).Order(StringComparer.Ordinal));
        foreach (var (field, expected) in sample.Config)
        {
            Assert.True(JsonNode.DeepEquals(expected, config[field]), $"{name}.{field}: expected {expected?.ToJsonString() ?? "null"}, got {config[field]?.ToJsonString() ?? "null"}");
        }

        // Every secret of the type, in a fixed order; a set one has a time and a fingerprint, an unset one nothing else.
        var secrets = body["secrets"]!.AsObject();
        Assert.Equal(sample.ListedSecrets, secrets.Select(p => p.Key));
        foreach (var (field, state) in secrets)
        {
            if (sample.SetSecrets.Contains(field))
            {
                Assert.Equal(["set", "updated_at", "fingerprint"], state!.AsObject().Select(p => p.Key));
                Assert.True(state["set"]!.GetValue<bool>());
                Assert.Matches(Wire.RfcSecondsPattern, state["updated_at"]!.GetValue<string>());
                Assert.Matches(FingerprintPattern(), state["fingerprint"]!.GetValue<string>());
            }
            else
            {
                Assert.Equal("""{"set":false}""", state!.Compact());
            }
        }

        AssertNoSecretIn(text, sample.SecretValues);
        if (sample.ConnectionString is { } connectionString)
        {
            // Its structure (Password=, sslpassword=) is no secret; the string itself is never shown.
            Assert.DoesNotContain(connectionString, text, StringComparison.Ordinal);
            Assert.DoesNotContain("connection_string", config.Select(p => p.Key));
        }

        Assert.Equal(await RetrieveETagAsync(org, id), etag);
    }

    [Fact]
    public async Task The_etag_is_the_sources_and_follows_every_write()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var (first, _, firstTag) = await ReadAsync(org, id);

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"port": 6543}""").Expect(HttpStatusCode.OK);
        await org.Http.PutJsonAsync(TypeCatalog.Url(id), """{"account_name": "Renamed"}""").Expect(HttpStatusCode.OK);
        var (second, _, secondTag) = await ReadAsync(org, id);

        Assert.Equal($"\"{id}-1\"", firstTag);
        Assert.Equal($"\"{id}-3\"", secondTag);
        Assert.Equal(await RetrieveETagAsync(org, id), secondTag);
        Assert.Equal(1, first["version"]!.GetValue<long>());
        Assert.Equal(3, second["version"]!.GetValue<long>());
        Assert.Equal("Renamed", second["account_name"]!.GetValue<string>());
        Assert.Equal(6543, second["config"]!["port"]!.GetValue<int>());

        // The tag read here is good for If-Match on a write.
        using var request = new HttpRequestMessage(HttpMethod.Patch, new Uri(TypeCatalog.UpdateUrl(id), UriKind.Relative))
        {
            Content = new StringContent("""{"port": 6544}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("If-Match", secondTag);
        using var written = await org.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, written.StatusCode);
    }

    [Fact]
    public async Task Works_without_the_trailing_slash_and_is_not_cached()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);

        using var response = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/config", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Wire.JsonContentType, response.Content.Headers.ContentType?.ToString());
        Assert.True(response.Headers.CacheControl?.NoStore);
    }

    [Fact]
    public async Task A_cleared_field_reads_as_the_value_in_force_and_one_without_default_reads_null()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "clickhouse", "host": "ch.example.com", "username": "u", "password": "p", "port": 9000}""");
        var before = await ReadAsync(org, id);
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"port": null}""").Expect(HttpStatusCode.OK);

        var (body, _, _) = await ReadAsync(org, id);

        // Port 9000 is plain HTTP; cleared, the port is ClickHouse's default 8443 again, and with it HTTPS.
        Assert.Equal(
            """{"host":"ch.example.com","port":9000,"username":"u","database":null,"secure":false,"selected_schemas":null,"ssh_tunnel":null,"tls":null}""",
            before.Body["config"]!.Compact());
        Assert.Equal(
            """{"host":"ch.example.com","port":8443,"username":"u","database":null,"secure":true,"selected_schemas":null,"ssh_tunnel":null,"tls":null}""",
            body["config"]!.Compact());
    }

    /// <summary>Rows of (create body without port or secure, the port shown, the secure flag shown or null where the type has none).</summary>
    public static TheoryData<string, int, bool?> LeftOut() => new()
    {
        { """{"type": "postgres", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""", 5432, null },
        { """{"type": "supabase", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""", 5432, null },
        { """{"type": "mysql", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""", 3306, null },
        { """{"type": "singlestore", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""", 3333, null },
        { """{"type": "mssql", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""", 1433, null },
        { """{"type": "mongodb", "hostname": "db.example.com", "database_name": "d"}""", 27017, null },
        { """{"type": "clickhouse", "host": "ch.example.com", "username": "u", "password": "p"}""", 8443, true },
        { """{"type": "clickhouse", "host": "ch.example.com", "username": "u", "password": "p", "port": 9440}""", 9440, true },
        { """{"type": "clickhouse", "host": "ch.example.com", "username": "u", "password": "p", "port": 8123}""", 8123, false },
    };

    [Theory]
    [MemberData(nameof(LeftOut))]
    public async Task A_port_or_secure_flag_left_out_reads_as_the_value_Caravan_will_use(string create, int port, bool? secure)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(create);

        var (body, _, _) = await ReadAsync(org, id);

        Assert.Equal(port, body["config"]!["port"]!.GetValue<int>());
        Assert.Equal(secure, body["config"]!["secure"]?.GetValue<bool>());
    }

    [Fact]
    public async Task A_MongoDB_connection_string_source_shows_no_port_of_the_older_form()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "mongodb", "connection_string": "mongodb://u:pw@a.example.com:27018,b.example.com/d"}""");

        var (body, _, _) = await ReadAsync(org, id);

        Assert.Null(body["config"]!["port"]);
    }

    [Fact]
    public async Task A_legacy_source_without_fields_lists_every_secret_as_unset()
    {
        var org = await app.NewOrganizationAsync();
        var created = await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"account_name": "Later", "type": "snowflake"}""").Expect(HttpStatusCode.OK);

        var (body, _, _) = await ReadAsync(org, created["id"]!.GetValue<long>());

        Assert.Equal(
            """{"password":{"set":false},"private_key":{"set":false},"private_key_passphrase":{"set":false}}""",
            body["secrets"]!.Compact());
    }

    [Fact]
    public async Task Another_organizations_source_a_deleted_one_and_bad_ids_are_the_one_404()
    {
        var owner = await app.NewOrganizationAsync();
        var stranger = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Wire.Postgres);
        var deleted = await owner.Http.CreateSourceAsync(Wire.Postgres);
        (await owner.Http.SendAsync("DELETE", TypeCatalog.Url(deleted))).AssertStatus(HttpStatusCode.NoContent);

        (await stranger.Http.GetRawAsync($"/api/v1/sources/{id}/config/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        (await stranger.Http.GetRawAsync($"/api/v1/sources/{id}/config")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        (await owner.Http.GetRawAsync($"/api/v1/sources/{deleted}/config/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        foreach (var bad in new[] { "0", "-1", "abc", "1.5", "99999999999999999999", "0x10" })
        {
            (await owner.Http.GetRawAsync($"/api/v1/sources/{bad}/config/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        }

        await owner.Http.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative)).Expect(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    [InlineData("DELETE")]
    public async Task Other_methods_are_405(string method)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, $"/api/v1/sources/{id}/config/", method == "DELETE" ? null : "{}");

        answer.AssertExactly(HttpStatusCode.MethodNotAllowed, $$"""{"detail":"Method \"{{method}}\" not allowed."}""");
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Without_a_key_it_is_401()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var anonymous = app.CreateClient();

        (await anonymous.GetRawAsync($"/api/v1/sources/{id}/config/"))
            .AssertExactly(HttpStatusCode.Unauthorized, """{"detail":"Authentication credentials were not provided."}""");
    }

    internal static async Task<(JsonNode Body, string Text, string? ETag)> ReadAsync(OrgClient org, long id)
    {
        using var response = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Expected 200, got {(int)response.StatusCode}: {text}");
        return (JsonNode.Parse(text)!, text, response.Headers.ETag?.ToString());
    }

    internal static async Task<string?> RetrieveETagAsync(OrgClient org, long id)
    {
        using var response = await org.Http.GetAsync(new Uri(TypeCatalog.Url(id), UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response.Headers.ETag?.ToString();
    }

    /// <summary>
    /// No secret value is in the answer, and outside <c>config</c> (checked field by field above)
    /// not even six consecutive characters of one. Composite secrets (keys, JSON) are checked by
    /// their random parts: their fixed structure (PEM headers, JSON keys) is no secret.
    /// </summary>
    private static void AssertNoSecretIn(string text, IReadOnlyList<string> secretValues)
    {
        var withoutConfig = JsonNode.Parse(text)!.AsObject();
        withoutConfig.Remove("config");
        var rest = withoutConfig.ToJsonString();
        foreach (var secret in secretValues)
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            for (var i = 0; i + 6 <= secret.Length; i++)
            {
                var window = secret.Substring(i, 6);
                Assert.False(rest.Contains(window, StringComparison.Ordinal), $"\"{window}\" of a secret appears in {rest}");
            }
        }
    }

    [GeneratedRegex("^[0-9a-f]{8}$")]
    internal static partial Regex FingerprintPattern();
}

/// <summary>A create body with every field of a type, and what its config readback must show.</summary>
internal sealed record ReadbackCase(
    string Type, JsonObject Body, JsonObject Config, string[] ListedSecrets, string[] SetSecrets, IReadOnlyList<string> SecretValues,
    string? ConnectionString = null)
{
    public static readonly string[] Names =
    [
        "POSTGRES", "POSTGRES connection string", "SUPABASE", "MYSQL", "SINGLESTORE", "MSSQL", "MSSQL connection string",
        "CLICKHOUSE", "SNOWFLAKE", "BIGQUERY", "MOTHERDUCK", "MONGODB", "MONGODB connection string", "DATABRICKS",
    ];

    // No hex digits: a fingerprint or a timestamp can then never hold six characters of a secret by chance.
    private const string NonHex = "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ";

    /// <summary>A random secret value made of letters that are not hex digits.</summary>
    public static string Secret() => new(RandomNumberGenerator.GetItems<char>(NonHex, 24));

    /// <summary>The types with a host and a port, which take the ssh_tunnel and tls groups (contract section 10).</summary>
    public static readonly string[] NetworkPathTypes = ["POSTGRES", "SUPABASE", "MYSQL", "SINGLESTORE", "MSSQL", "CLICKHOUSE", "MONGODB"];

    public static ReadbackCase Create(string name)
    {
        var made = Build(name);

        // Groups the source does not have read as null, like any field without a value.
        if (NetworkPathTypes.Contains(made.Type))
        {
            made.Config["ssh_tunnel"] = null;
            made.Config["tls"] = null;
        }

        return made;
    }

    private static ReadbackCase Build(string name)
    {
        var password = Secret();
        var account = "Readback " + name;
        switch (name)
        {
            case "POSTGRES" or "SUPABASE" or "MYSQL" or "SINGLESTORE" or "MSSQL":
            {
                var type = name;
                var body = NewBody(type, account, ("hostname", "db.example.com"), ("port", 5433), ("username", "analyst"), ("password", password),
                    ("database_name", "sales"), ("selected_schemas", new JsonArray("public", "sales")));
                var config = NewConfig(("hostname", "db.example.com"), ("port", 5433), ("username", "analyst"), ("database_name", "sales"),
                    ("selected_schemas", new JsonArray("public", "sales")));
                if (type is "MYSQL" or "SINGLESTORE")
                {
                    return new(type, body, config, ["password"], ["password"], [password]);
                }

                config["options"] = null;
                return new(type, body, config, ["password", "secret_options"], ["password"], [password]);
            }

            case "POSTGRES connection string":
            {
                var sslPassword = Secret();
                var connectionString = $"postgresql://analyst:{password}@db.example.com:5433/sales?sslmode=require&application_name=bi&sslpassword={sslPassword}";
                var body = NewBody("POSTGRES", account, ("connection_string", connectionString), ("selected_schemas", new JsonArray("public")));
                var config = NewConfig(("hostname", "db.example.com"), ("port", 5433), ("username", "analyst"), ("database_name", "sales"),
                    ("selected_schemas", new JsonArray("public")), ("options", new JsonObject { ["sslmode"] = "require", ["application_name"] = "bi" }));
                return new("POSTGRES", body, config, ["password", "secret_options"], ["password", "secret_options"], [password, sslPassword], connectionString);
            }

            case "MSSQL connection string":
            {
                var connectionString = $"Server=tcp:sql.example.com,1434;Database=erp;User ID=sa;Password={password};Encrypt=True;TrustServerCertificate=False";
                var body = NewBody("MSSQL", account, ("connection_string", connectionString));
                var config = NewConfig(("hostname", "sql.example.com"), ("port", 1434), ("username", "sa"), ("database_name", "erp"),
                    ("selected_schemas", null), ("options", new JsonObject { ["encrypt"] = "True", ["trustservercertificate"] = "False" }));
                return new("MSSQL", body, config, ["password", "secret_options"], ["password"], [password], connectionString);
            }

            case "CLICKHOUSE":
            {
                var fields = new (string, JsonNode?)[]
                {
                    ("host", "ch.example.com"), ("port", 8443), ("username", "default"), ("database", "logs"), ("secure", true),
                    ("selected_schemas", new JsonArray("logs")),
                };
                var body = NewBody(name, account, [.. fields, ("password", password)]);
                return new(name, body, NewConfig(fields), ["password"], ["password"], [password]);
            }

            case "SNOWFLAKE":
            {
                var passphrase = Secret();
                using var rsa = RSA.Create(2048);
                var privateKey = rsa.ExportEncryptedPkcs8PrivateKeyPem(
                    passphrase, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000));
                var fields = new (string, JsonNode?)[]
                {
                    ("account", "xy12345.us-east-1"), ("user", "ANALYST"), ("public_key", Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo())),
                    ("warehouse", "COMPUTE_WH"), ("database", "SALES"), ("role", "READER"), ("selected_schemas", new JsonArray("PUBLIC", "SALES.RAW")),
                };
                var body = NewBody(name, account, [.. fields, ("password", password), ("private_key", privateKey), ("private_key_passphrase", passphrase)]);
                string[] secrets = ["password", "private_key", "private_key_passphrase"];
                return new(name, body, NewConfig(fields), secrets, secrets, [password, passphrase, PemBody(privateKey)]);
            }

            case "BIGQUERY":
            {
                var key = TypeCatalog.ServiceAccountKey();
                var keyId = Secret();
                var email = Secret().ToLowerInvariant();
                key["private_key_id"] = keyId;
                key["client_email"] = email + "@caravan-tests.iam.gserviceaccount.com";
                var body = NewBody(name, account, ("service_account_key", key), ("selected_datasets", new JsonArray("analytics")));
                return new(name, body, NewConfig(("selected_datasets", new JsonArray("analytics"))), ["service_account_key"], ["service_account_key"],
                    [keyId, email, PemBody(TypeCatalog.ServiceAccountPrivateKey)]);
            }

            case "MOTHERDUCK":
                return new(name, NewBody(name, account, ("database_name", "my_db"), ("token", password)), NewConfig(("database_name", "my_db")),
                    ["token"], ["token"], [password]);

            case "MONGODB":
            {
                var fields = new (string, JsonNode?)[]
                {
                    ("hostname", "mongo.example.com"), ("port", 27018), ("username", "app"), ("database_name", "orders"),
                    ("selected_schemas", new JsonArray("orders")),
                };
                var body = NewBody(name, account, [.. fields, ("password", password)]);
                return new(name, body, NewConfig(fields), ["connection_string", "password"], ["password"], [password]);
            }

            case "MONGODB connection string":
            {
                var connectionString = $"mongodb+srv://app:{password}@cluster0.example.mongodb.net/orders?retryWrites=true";
                var body = NewBody("MONGODB", account, ("connection_string", connectionString), ("selected_schemas", new JsonArray("orders")));
                var config = NewConfig(("hostname", null), ("port", null), ("username", null), ("database_name", null), ("selected_schemas", new JsonArray("orders")));
                return new("MONGODB", body, config, ["connection_string", "password"], ["connection_string"], [password], connectionString);
            }

            case "DATABRICKS":
            {
                var fields = new (string, JsonNode?)[]
                {
                    ("server_hostname", "adb-1234567890.1.azuredatabricks.net"), ("http_path", "/sql/1.0/warehouses/abc123"), ("catalog", "main"),
                    ("selected_schemas", new JsonArray("default", "main.sales")),
                };
                var body = NewBody(name, account, [.. fields, ("access_token", password)]);
                return new(name, body, NewConfig(fields), ["access_token"], ["access_token"], [password]);
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }

    private static JsonObject NewBody(string type, string accountName, params (string Name, JsonNode? Value)[] fields)
    {
        var body = new JsonObject { ["type"] = type, ["account_name"] = accountName };
        foreach (var (name, value) in fields)
        {
            body[name] = value?.DeepClone();
        }

        return body;
    }

    private static JsonObject NewConfig(params (string Name, JsonNode? Value)[] fields)
    {
        var config = new JsonObject();
        foreach (var (name, value) in fields)
        {
            config[name] = value?.DeepClone();
        }

        return config;
    }

    /// <summary>The base64 body of a PEM block: its random part.</summary>
    private static string PemBody(string pem) =>
        string.Concat(pem.Split('\n').Where(line => !line.StartsWith("-----", StringComparison.Ordinal)).Select(line => line.Trim()));
}
