using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;
using FsCheck.Fluent;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// Hostile input on every write route: junk bytes, broken UTF-8, deep nesting, huge numbers, NULs,
/// wrong types for every field of every type and random JSON. Whatever arrives, the answer is one of
/// the contract's shapes (section 1), never a 5xx, and a refused write changes nothing.
/// </summary>
public sealed class RobustnessTests(CaravanApp app)
{
    private const string SourcesUrl = "/api/v1/sources/";
    private const string Json = "application/json";

    private static readonly string[] AddRoutes = [.. SourceTypes.All.Where(t => t.AddRoute is not null).Select(t => t.AddRoute!)];

    private static readonly Lazy<(string Pem, string PublicPem, string EncryptedPem, string EcPem)> Keys = new(() =>
    {
        using var rsa = RSA.Create(2048);
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return (rsa.ExportPkcs8PrivateKeyPem(), rsa.ExportSubjectPublicKeyInfoPem(),
            rsa.ExportEncryptedPkcs8PrivateKeyPem("passphrase-1", new PbeParameters(PbeEncryptionAlgorithm.Aes128Cbc, HashAlgorithmName.SHA256, 1000)),
            ec.ExportPkcs8PrivateKeyPem());
    });

    private enum Kind
    {
        Create,
        Legacy,
        Rename,
        UpdateConfig,
    }

    private sealed record Target(string Method, string Url, Kind Kind, Seed? Seed)
    {
        public override string ToString() => $"{Method} {Url}";
    }

    private sealed record Seed(long Id, string Type, string Label);

    private sealed record Failure(string Route, string Body, string Problem, string Answer);

    private sealed record Shot(string Description, byte[] Body, string? ContentType = Json, bool Chunked = false);

    /// <summary>One organization with a source of every type (and of every form), and the routes to hit.</summary>
    private sealed class Arena(OrgClient org, IReadOnlyList<Seed> seeds)
    {
        public OrgClient Org => org;

        public IReadOnlyList<Seed> Seeds => seeds;

        public List<Failure> Failures { get; } = [];

        public int Requests { get; set; }

        public static IEnumerable<Target> CreateTargets =>
            [new("POST", SourcesUrl, Kind.Create, null), .. AddRoutes.Select(r => new Target("POST", $"{SourcesUrl}add/{r}/", Kind.Create, null)),
             new("POST", SourcesUrl + "add/", Kind.Legacy, null)];

        /// <summary>update-config on every seed (its rules depend on the type); PUT and PATCH, which do not, on one.</summary>
        public IEnumerable<Target> SeedTargets =>
            [.. seeds.Select(s => new Target("PATCH", $"{SourcesUrl}{s.Id}/update-config/", Kind.UpdateConfig, s)),
             new("PUT", $"{SourcesUrl}{seeds[0].Id}/", Kind.Rename, seeds[0]),
             new("PATCH", $"{SourcesUrl}{seeds[^1].Id}/", Kind.Rename, seeds[^1])];

        /// <summary>The last stored state seen of each seed, to tell whether a refused request wrote anything.</summary>
        public Dictionary<long, StoredSource> Known { get; } = [];

        public IEnumerable<Target> AllTargets => [.. CreateTargets, .. SeedTargets];
    }

    [Fact]
    public async Task Malformed_bodies_on_every_write_route_get_a_contract_answer()
    {
        var arena = await ArenaAsync();
        var shots = MalformedBodies().ToList();
        Assert.True(shots.Count >= 100, $"only {shots.Count} bodies");

        foreach (var target in arena.AllTargets)
        {
            foreach (var shot in shots)
            {
                await FireAsync(arena, target, shot);
            }
        }

        await AssertSurvivedAsync(arena);
    }

    [Fact]
    public async Task Wrong_values_for_every_field_of_every_type_are_refused_cleanly()
    {
        var arena = await ArenaAsync();
        var values = 0;
        foreach (var type in TypeCatalog.FieldTypes)
        {
            foreach (var field in type.Fields.Select(f => f.Name).Append("account_name").Append("type"))
            {
                var candidates = BadValues(field).ToList();
                for (var i = 0; i < candidates.Count; i++)
                {
                    var value = candidates[i];
                    values++;

                    // A create: the type's valid body with the field replaced, through both create routes in turn.
                    var body = TypeCatalog.Get(type.Name).BodyFor(field);
                    body[field] = "\u0001placeholder";
                    var text = body.ToJsonString().Replace("\"\\u0001placeholder\"", value, StringComparison.Ordinal);
                    var shot = new Shot($"{type.Name}.{field} = {value}", Encoding.UTF8.GetBytes(text));
                    if (type.AddRoute is not null && i % 2 == 1)
                    {
                        body.Remove("type");
                        var routed = body.ToJsonString().Replace("\"\\u0001placeholder\"", value, StringComparison.Ordinal);
                        await FireAsync(arena, new Target("POST", $"{SourcesUrl}add/{type.AddRoute}/", Kind.Create, null), shot with { Body = Encoding.UTF8.GetBytes(routed) });
                    }
                    else
                    {
                        await FireAsync(arena, new Target("POST", SourcesUrl, Kind.Create, null), shot);
                    }

                    // The legacy route validates the same fields, none required (every other value, to keep the run short).
                    if (i % 2 == 0 || field is "account_name" or "type")
                    {
                        var legacy = field switch
                        {
                            "account_name" => $$"""{"type": "{{type.Name}}", "account_name": {{value}}}""",
                            "type" => $$"""{"account_name": "Legacy", "type": {{value}}}""",
                            _ => $$"""{"account_name": "Legacy", "type": "{{type.Name}}", "{{field}}": {{value}}}""",
                        };
                        await FireAsync(arena, new Target("POST", SourcesUrl + "add/", Kind.Legacy, null), new Shot(shot.Description, Encoding.UTF8.GetBytes(legacy)));
                    }

                    // update-config on the stored forms of the type in turn (fields, connection string, key pair...).
                    var forms = arena.Seeds.Where(s => s.Type == type.Name).ToList();
                    var seed = forms[i % forms.Count];
                    var update = $$"""{"{{field}}": {{value}}}""";
                    await FireAsync(arena, new Target("PATCH", $"{SourcesUrl}{seed.Id}/update-config/", Kind.UpdateConfig, seed), new Shot(shot.Description, Encoding.UTF8.GetBytes(update)));
                }
            }
        }

        Assert.True(values > 500, $"only {values} values were tried");
        await AssertSurvivedAsync(arena);
    }

    [Fact]
    public async Task Random_json_from_fscheck_never_causes_a_server_error()
    {
        var arena = await ArenaAsync();
        var samples = RandomBodies().Sample(12, 300);
        var targets = arena.AllTargets.ToList();
        for (var i = 0; i < samples.Length; i++)
        {
            var (typeName, text) = samples[i];
            var shot = new Shot("fscheck: " + text, Encoding.UTF8.GetBytes(text));

            // Each body goes to the routes where its type matters, and to one more route in turn.
            var type = SourceTypes.Find(typeName);
            await FireAsync(arena, new Target("POST", SourcesUrl, Kind.Create, null), shot);
            if (type?.AddRoute is { } route)
            {
                await FireAsync(arena, new Target("POST", $"{SourcesUrl}add/{route}/", Kind.Create, null), shot);
            }

            if (arena.Seeds.FirstOrDefault(s => s.Type == type?.Name) is { } seed)
            {
                await FireAsync(arena, new Target("PATCH", $"{SourcesUrl}{seed.Id}/update-config/", Kind.UpdateConfig, seed), shot);
            }

            await FireAsync(arena, targets[i % targets.Count], shot);
        }

        await AssertSurvivedAsync(arena);
    }

    [Fact]
    public async Task Bodies_too_large_or_of_the_wrong_media_type_get_413_and_415()
    {
        var arena = await ArenaAsync();
        var large = Encoding.UTF8.GetBytes($$"""{"account_name": "{{new string('x', (2 * 1024 * 1024) + 10)}}"}""");
        var justOver = Encoding.UTF8.GetBytes($$"""{"account_name": "{{new string('x', (1024 * 1024) - 19)}}"}""");
        Assert.Equal((1024 * 1024) + 1, justOver.Length);
        var body = Encoding.UTF8.GetBytes("""{"type": "postgres", "account_name": "x"}""");
        var cases = new (Shot Shot, HttpStatusCode Status)[]
        {
            (new Shot("2 MiB", large), HttpStatusCode.RequestEntityTooLarge),
            (new Shot("1 MiB + 1", justOver), HttpStatusCode.RequestEntityTooLarge),
            (new Shot("2 MiB chunked", large, Json, Chunked: true), HttpStatusCode.RequestEntityTooLarge),
            (new Shot("text/plain", body, "text/plain"), HttpStatusCode.UnsupportedMediaType),
            (new Shot("no content type", body, null), HttpStatusCode.UnsupportedMediaType),
            (new Shot("form", Encoding.UTF8.GetBytes("type=postgres&account_name=x"), "application/x-www-form-urlencoded"), HttpStatusCode.UnsupportedMediaType),
            (new Shot("multipart", body, "multipart/form-data; boundary=xyz"), HttpStatusCode.UnsupportedMediaType),
            (new Shot("xml", Encoding.UTF8.GetBytes("<a/>"), "application/xml"), HttpStatusCode.UnsupportedMediaType),
            (new Shot("json-ish", body, "application/jsonx"), HttpStatusCode.UnsupportedMediaType),
        };

        foreach (var target in arena.AllTargets)
        {
            foreach (var (shot, status) in cases)
            {
                var outcome = await FireAsync(arena, target, shot);
                if (outcome is { } answered && answered != status)
                {
                    arena.Failures.Add(new Failure(target.ToString(), shot.Description, $"expected {(int)status}, got {(int)answered}", string.Empty));
                }
            }
        }

        await AssertSurvivedAsync(arena);
    }

    [Theory]
    [InlineData("C328")]
    [InlineData("FF")]
    [InlineData("C0AF")]
    [InlineData("EDA080")]
    [InlineData("E282")]
    public async Task Invalid_utf8_inside_a_string_is_malformed_json(string hex)
    {
        var org = await app.NewOrganizationAsync();
        var body = Encoding.UTF8.GetBytes("{\"type\": \"motherduck\", \"database_name\": \"d\", \"token\": \"t-")
            .Concat(Convert.FromHexString(hex)).Concat(Encoding.UTF8.GetBytes("\"}")).ToArray();
        using var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", Json);

        var answer = await org.Http.PostAsync(new Uri(SourcesUrl, UriKind.Relative), content, TestContext.Current.CancellationToken).Expect(HttpStatusCode.BadRequest);

        Assert.StartsWith("Malformed JSON", answer["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("{}", answer["errors"]!.Compact());
    }

    [Theory]
    [InlineData("""{"type": "motherduck", "database_name": "d", "token": "\ud800"}""")]
    [InlineData("""{"type": "motherduck", "database_name": "x\udc00y", "token": "t"}""")]
    [InlineData("""{"type": "motherduck", "account_name": "\ud800", "database_name": "d", "token": "t"}""")]
    [InlineData("""{"type": "\ud800"}""")]
    [InlineData("""{"\udc00": 1, "type": "motherduck"}""")]
    [InlineData("""{"type": "postgres", "hostname": "db.example.com", "port": "\ud800", "username": "u", "password": "p", "database_name": "d"}""")]
    public async Task Escaped_lone_surrogates_are_refused_with_a_400(string json)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync(SourcesUrl, json).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["error", "errors"], answer.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Escaped_lone_surrogates_in_update_config_are_refused_and_nothing_changes()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "motherduck", "database_name": "d", "token": "t"}""");
        var before = await app.StoredSourceAsync(id);

        foreach (var json in new[] { """{"token": "\ud800"}""", """{"database_name": "\udfff"}""", """{"type": "\ud800"}""", """{"account_name": "a\udc00"}""" })
        {
            await org.Http.PatchJsonAsync($"{SourcesUrl}{id}/update-config/", json).Expect(HttpStatusCode.BadRequest);
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("""{"type":"service_account","type":"x"}""")]
    [InlineData("""{"a":1,"a":2}""")]
    public async Task A_service_account_key_string_with_duplicate_keys_is_a_400_on_the_field(string key)
    {
        var org = await app.NewOrganizationAsync();
        var json = new JsonObject { ["type"] = "BIGQUERY", ["service_account_key"] = key }.ToJsonString();

        var answer = await org.Http.PostJsonAsync(SourcesUrl, json).Expect(HttpStatusCode.BadRequest);

        Assert.True(answer["errors"]!.AsObject().ContainsKey("service_account_key"), answer.Compact());
    }

    private async Task<Arena> ArenaAsync()
    {
        var org = await app.NewOrganizationAsync();
        var seeds = new List<Seed>();
        foreach (var type in TypeCatalog.FieldTypes)
        {
            var id = await org.Http.CreateSourceAsync(TypeCatalog.Get(type.Name).BodyFor().ToJsonString());
            seeds.Add(new Seed(id, type.Name, "fields"));
        }

        async Task Extra(string type, string label, string json) => seeds.Add(new Seed(await org.Http.CreateSourceAsync(json), type, label));
        await Extra("POSTGRES", "connection string", """{"type": "POSTGRES", "connection_string": "postgresql://u:pg-pw@db.example.com:5432/d?sslmode=require&sslpassword=x1"}""");
        await Extra("MSSQL", "connection string", """{"type": "MSSQL", "connection_string": "Server=tcp:sql.example.com,1433;Database=d;User ID=u;Password=ms-pw"}""");
        await Extra("MONGODB", "several hosts", """{"type": "MONGODB", "connection_string": "mongodb://u:pw@m1.example.com:27017,m2.example.com/d"}""");
        await Extra("SNOWFLAKE", "generated key", """{"type": "SNOWFLAKE", "account": "xy12345.us-east-1", "user": "keyed"}""");
        await Extra("SNOWFLAKE", "encrypted key", new JsonObject
        {
            ["type"] = "SNOWFLAKE", ["account"] = "xy12345.us-east-1", ["user"] = "own",
            ["private_key"] = Keys.Value.EncryptedPem, ["private_key_passphrase"] = "passphrase-1",
        }.ToJsonString());
        var legacy = await org.Http.PostJsonAsync(SourcesUrl + "add/", """{"account_name": "Empty", "type": "clickhouse"}""").Expect(HttpStatusCode.OK);
        seeds.Add(new Seed(legacy["id"]!.GetValue<long>(), "CLICKHOUSE", "legacy, unconfigured"));
        return new Arena(org, seeds);
    }

    /// <summary>Raw JSON values that are wrong (or odd) for a field; the field's kind adds its own.</summary>
    private static IEnumerable<string> BadValues(string field)
    {
        string[] generic =
        [
            "null", "true", "false", "0", "-1", "1.5", "-0", "1e400", "-1e400", "1e-400", "123456789012345678901234567890",
            "-123456789012345678901234567890", "9223372036854775808", "5432.0000000000000000000001", "6.5535e4", "65536", "1E5",
            "\"\"", "\" \"", "\"\\t\"", "\"\\u0000\"", "\"a\\u0000b\"", "\"\\ud800\"", "\"x\\udc00y\"", "\"\\u202e\\u200b\"", "\"\\uffff\"",
            "\"" + new string('x', 256) + "\"", "\"" + new string('y', 40_000) + "\"", "\" x\"", "\"x \"", "\"*****\"", "\"**Mask**\"", "\"•••\"",
            "[]", "[null]", "[1]", "[\"\"]", "[\"a\", \"a\"]", "[[]]", "[{}]", "[\"\\u0000\"]", "[\"" + new string('z', 300) + "\"]",
            "[" + string.Join(",", Enumerable.Range(0, 1001).Select(i => $"\"s{i}\"")) + "]",
            "{}", "{\"a\": 1}", "{\"\": null}", "{\"type\": \"service_account\"}", "\"65535\"", "\"0\"", "\"-5\"", "\"１２３\"", "\"5432 \"", "\"99999999999999999999\"",
        ];
        foreach (var value in generic)
        {
            yield return value;
        }

        IEnumerable<string> specific = field switch
        {
            "hostname" or "host" or "server_hostname" =>
            [
                "::1", "[::1]", "[::1", "::1]", "[fe80::1%eth0]", "fe80::1%25eth0", "[::ffff:1.2.3.4]", "1.2.3.256", "999999999999", "0x7f.1",
                "a..b", "-a.com", "a-.com", "xn--", "xn--zz", "xn--a.com", "bücher.de", "\u200b", "ﬀ.com", "a:b", "a/b", "http://a", "a b", "%",
                ".", "..", "a.", ".a", new string('a', 64) + ".com", string.Join(".", Enumerable.Repeat("a", 200)), "[]", "[", "]", "a\u0000", "\u0085",
            ],
            "connection_string" =>
            [
                "postgres://", "postgresql://", "postgresql://u:p@[::1", "postgresql://u:p@host:99999/db", "postgresql://%zz@h/d", "postgresql://u:p@h:0/d",
                "postgresql://u:p@h:abc/d", "postgresql://h/d?sslmode", "postgresql://h/d?=x&&=", "postgresql://h,h2:5/d", "postgresql://:@/", "postgresql://u:%@h",
                "host=", "host='unterminated", "host=h port=x", "host=h port=70000", "=", "a=b=c", "host=h password=\\", "host=h user='a\\'",
                "mongodb://", "mongodb+srv://a:b@host:27017", "mongodb+srv://h", "mongodb://h/?authSource=", "mongodb://u:p@h:99999", "mongodb://[::1",
                "mongodb://%", "mongodb://h1,,h2/", "mongodb://@/", "Server=;", "Driver={x;Server=h", "Driver={}}};Server=h", "Server=tcp:h,abc",
                "Server=h,70000", "=;=;", ";;;;", "Server='x;Password=\"y", "Data Source=(localdb)\\a;Password=*****", "Server=h;Password=*****",
                "postgresql://u:*****@h/d", "mongodb://u:****@h/d", "\u0000", "postgresql://u:p@h/" + new string('d', 300),
            ],
            "service_account_key" =>
            [
                "{\"type\":\"service_account\",\"type\":\"x\"}", "{}", "[]", "{\"a\":" + new string('[', 100) + new string(']', 100) + "}",
                "{\"type\":\"service_account\",\"project_id\":\"p\",\"client_email\":\"a@b\",\"private_key\":\"*****\"}",
                "{\"type\":\"service_account\",\"project_id\":\"p\",\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\"}",
                "{\"type\":\"service_account\",\"project_id\":\"p\",\"client_email\":\"a@b\",\"private_key\":" + JsonText.Quote(Keys.Value.EcPem) + "}",
                "{\"type\":\"service_account\",\"project_id\":1,\"client_email\":[],\"private_key\":{}}", "{\"type\":null}", "\u0000", "{\"\\u0000\":1}",
            ],
            "private_key" =>
            [
                Keys.Value.EcPem, Keys.Value.PublicPem, Keys.Value.EncryptedPem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----\n!!!\n-----END RSA PRIVATE KEY-----",
                "ENCRYPTED", Keys.Value.Pem[..(Keys.Value.Pem.Length / 2)],
            ],
            "public_key" =>
            [
                Keys.Value.PublicPem, Keys.Value.Pem, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", "AAAA", "====", "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----",
                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + new string('A', 88), "\n\n", "-----BEGIN-----",
            ],
            "private_key_passphrase" => ["wrong", "passphrase-1"],
            "account" => ["https://xy12345.snowflakecomputing.com", "xy12345.snowflakecomputing.com", "a b", "a/b", "ä"],
            "type" => ["POSTGRES", "postgres ", "SUPABASE", "unknown", "\u0130NSTANCE", "ＰＯＳＴＧＲＥＳ"],
            "port" => ["5432", "65535", "1"],
            "secure" => ["\"true\"", "1"],
            _ => [],
        };

        foreach (var value in specific)
        {
            yield return value.StartsWith('"') || value is "1" ? value : JsonText.Quote(value);
        }
    }

    /// <summary>Hundreds of bodies that are not what any route expects.</summary>
    private static IEnumerable<Shot> MalformedBodies()
    {
        static Shot Text(string description, string text) => new(description, Encoding.UTF8.GetBytes(text));
        static byte[] Concat(params object[] parts) =>
            [.. parts.SelectMany(p => p is string s ? Encoding.UTF8.GetBytes(s) : (byte[])p)];

        string[] texts =
        [
            "not json", "{", "}", "{\"a\"", "{\"a\":}", "{'a': 1}", "{a: 1}", "[", "]", "{\"a\":1,}", "{\"a\":1 /*c*/}", "// c\n{}",
            "{\"a\":1}{\"b\":2}", "{\"a\":1} x", "\uFEFF{}", "\uFEFF{\"account_name\": \"bom\"}", "{\"a\": NaN}", "{\"a\": Infinity}", "{\"a\": -}",
            "{\"a\": 01}", "{\"a\": 1.}", "{\"a\": .5}", "{\"a\": +1}", "{\"a\": 0x10}", "{\"a\": tru}", "{\"a\": nul}", "{\"a\": \"\\x\"}",
            "{\"a\": \"\\u12\"}", "{\"a\": \"unterminated}", "{\"a\"\"b\"}", "{\"a\" 1}", "{,}", "{\"a\":1,,\"b\":2}", "null", "[]", "[{}]", "1", "-1",
            "\"s\"", "true", "false", "  \n\t ", "{\"a\":\"\u0001\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"line\nbreak\"}", "{\"\u0001\":1}",
            "{}", "{} ", " {}", "{\"account_name\": \"ok\"}", "{\"type\": null}", "{\"type\": \"\"}", "{\"type\": \"nope\"}", "{\"type\": 1}",
            "{\"account_name\": null}", "{\"account_name\": \"\"}", "{\"account_name\": \"   \"}", "{\"account_name\": \"a\\u0000b\"}",
            "{\"\\u0000\": 1}", "{\"pass\\u0000word\": \"x\"}", "{\"type\": \"postgres\\u0000\"}", "{\"type\": \"\\u0000\"}",
            "{\"account_name\": \"\\ud800\"}", "{\"\\udc00\": 1}", "{\"type\": \"\\ud800\"}", "{\"password\": \"\\ud800x\"}", "{\"hostname\": \"\\udfff\"}",
            "{\"account_name\": \"\\ud83d\\ude00 emoji\"}", "{\"account_name\": \"e\\u0301\\u0301\\u0301\"}", "{\"account_name\": \"\\u202e\\u200b\"}",
            "{\"\": 1}", "{\"\": \"\"}", "{\"\": null, \"type\": \"postgres\"}", "{\"a\":1,\"a\":2}", "{\"type\":\"postgres\",\"type\":\"mysql\"}",
            "{\"account_name\":\"a\",\"account_name\":\"b\"}", "{\"type\": []}", "{\"type\": {}}", "{\"type\": [\"postgres\"]}", "{\"account_name\": [\"x\"]}",
            "{\"account_name\": {\"a\":1}}", "{\"account_name\": 1e400}", "{\"id\": 1}", "{\"id\": \"x\", \"created_at\": []}", "{\"is_fully_configured\": true}",
            "{\"port\": 1e400}", "{\"port\": -1e400}", "{\"port\": 1e-400}", "{\"port\": 123456789012345678901234567890}", "{\"port\": 5432.0000000000000000001}",
            "{\"port\": 9223372036854775808}", "{\"port\": -9223372036854775809}", "{\"port\": 1e309}", "{\"port\": 6.5535e4}", "{\"port\": -0}",
            "{\"port\": 1E5}", "{\"port\": \"99999999999999999999999\"}", "{\"port\": \"\"}", "{\"port\": \" 5432 \"}", "{\"port\": [5432]}",
            "{\"selected_schemas\": 1e400}", "{\"selected_schemas\": [1e400]}", "{\"selected_schemas\": \"public\"}", "{\"selected_schemas\": {\"a\": \"b\"}}",
            "{\"secure\": \"yes\"}", "{\"service_account_key\": \"{\\\"type\\\":\\\"service_account\\\",\\\"type\\\":\\\"x\\\"}\"}",
            "{\"type\": \"bigquery\", \"service_account_key\": \"{\\\"a\\\":1,\\\"a\\\":2}\"}",
            "{\"type\": \"postgres\", \"connection_string\": \"postgresql://u:p@h/d\", \"hostname\": \"h\"}",
            "{\"type\": \"supabase\", \"connection_string\": \"postgresql://[::1]:5432/d\"}",
            "{\"type\": \"mongodb\", \"connection_string\": null}", "{\"type\": \"snowflake\", \"account\": \"a\", \"user\": \"u\", \"public_key\": \"AAAA\"}",
            "{\"type\": \"snowflake\", \"account\": \"a\", \"user\": \"u\", \"private_key_passphrase\": \"p\"}",
            "{\"type\": \"POSTGRES\", \"hostname\": \"h\", \"username\": \"u\", \"password\": \"p\", \"database_name\": \"d\", \"port\": \"5432\", \"extra\": 1}",
        ];
        foreach (var text in texts)
        {
            yield return Text(text, text);
        }

        // Bytes that are not JSON, or not UTF-8.
        var random = new Random(20261127);
        for (var i = 0; i < 40; i++)
        {
            var junk = new byte[random.Next(1, 300)];
            random.NextBytes(junk);
            yield return new Shot($"random bytes #{i}", junk);
        }

        byte[][] invalidUtf8 =
        [
            [0xC3, 0x28], [0xFF], [0xFE, 0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF8, 0x88, 0x80, 0x80, 0x80],
            [0xF4, 0x90, 0x80, 0x80], [0x80], [0xBF, 0xBF], [0xEF, 0xBF, 0xBE], [0x00],
        ];
        foreach (var bad in invalidUtf8)
        {
            var hex = Convert.ToHexString(bad);
            yield return new Shot($"invalid UTF-8 {hex} in a value", Concat("{\"account_name\": \"a", bad, "b\"}"));
            yield return new Shot($"invalid UTF-8 {hex} in a key", Concat("{\"", bad, "\": 1}"));
            yield return new Shot($"invalid UTF-8 {hex} in type", Concat("{\"type\": \"post", bad, "\"}"));
            yield return new Shot($"invalid UTF-8 {hex} in a secret", Concat("{\"type\": \"motherduck\", \"database_name\": \"d\", \"token\": \"", bad, "\"}"));
            yield return new Shot($"invalid UTF-8 {hex} in a host", Concat("{\"hostname\": \"h", bad, "\", \"port\": 1}"));
            yield return new Shot($"invalid UTF-8 {hex} outside strings", Concat("{", bad, "}"));
        }

        yield return new Shot("UTF-16 body", Encoding.Unicode.GetBytes("{\"type\": \"postgres\", \"account_name\": \"x\"}"));
        yield return new Shot("UTF-16 BE body", Encoding.BigEndianUnicode.GetBytes("{\"account_name\": \"x\"}"));
        yield return new Shot("UTF-32 body", Encoding.UTF32.GetBytes("{\"account_name\": \"x\"}"));
        yield return new Shot("raw NUL in a string", Concat("{\"account_name\": \"a", new byte[] { 0 }, "b\"}"));
        yield return new Shot("raw NUL in a key", Concat("{\"a", new byte[] { 0 }, "\": 1}"));
        yield return new Shot("NUL after the object", Concat("{}", new byte[] { 0 }));

        // Deep nesting.
        yield return Text("1000 nested arrays", new string('[', 1000) + new string(']', 1000));
        yield return Text("1000 nested objects", string.Concat(Enumerable.Repeat("{\"a\":", 1000)) + "1" + new string('}', 1000));
        yield return Text("1000 nested arrays in a field", "{\"selected_schemas\": " + new string('[', 1000) + new string(']', 1000) + "}");
        yield return Text("1000 nested objects in a secret", "{\"type\": \"bigquery\", \"service_account_key\": " + string.Concat(Enumerable.Repeat("{\"a\":", 1000)) + "1" + new string('}', 1000) + "}");
        yield return Text("63 nested arrays in a field", "{\"selected_schemas\": " + new string('[', 63) + new string(']', 63) + "}");
        yield return Text("nesting in a string", "{\"type\": \"bigquery\", \"service_account_key\": " + JsonText.Quote(new string('[', 5000) + new string(']', 5000)) + "}");
        yield return Text("100000 unclosed arrays", new string('[', 100_000));
        yield return Text("100000 unclosed objects", string.Concat(Enumerable.Repeat("{\"a\":", 20_000)));

        // Size: long strings, many keys, long lists (all under the 1 MiB limit).
        yield return Text("account_name of 100k characters", $$"""{"account_name": "{{new string('n', 100_000)}}"}""");
        yield return Text("key of 100k characters", $$"""{"{{new string('k', 100_000)}}": 1}""");
        yield return Text("type of 100k characters", $$"""{"type": "{{new string('t', 100_000)}}"}""");
        yield return Text("value of 900k characters", $$"""{"type": "motherduck", "database_name": "d", "token": "{{new string('v', 900_000)}}"}""");
        yield return Text("10000 keys", "{" + string.Join(",", Enumerable.Range(0, 10_000).Select(i => $"\"k{i}\": {i}")) + "}");
        yield return Text("50000 list items", "{\"selected_schemas\": [" + string.Join(",", Enumerable.Range(0, 50_000).Select(i => $"\"s{i}\"")) + "]}");
        yield return Text("50000 escaped characters", "{\"account_name\": \"" + string.Concat(Enumerable.Repeat("\\u0041", 50_000)) + "\"}");
        yield return Text("escaped surrogate pairs", "{\"account_name\": \"" + string.Concat(Enumerable.Repeat("\\ud83d\\ude00", 100)) + "\"}");
        yield return new Shot("empty body", []);
        yield return new Shot("whitespace body", Encoding.UTF8.GetBytes(" \r\n\t"));
        yield return new Shot("json+suffix media type", Encoding.UTF8.GetBytes("{\"account_name\": 5}"), "application/vnd.caravan+json");
        yield return new Shot("charset parameter", Encoding.UTF8.GetBytes("{\"account_name\": 5}"), "application/json; charset=latin1");
        yield return new Shot("odd media type parameters", Encoding.UTF8.GetBytes("{\"account_name\": 5}"), "application/json; a=\"b;c\"; ;;");
    }

    /// <summary>Random JSON objects with keys mostly drawn from the real field names, and the type they name.</summary>
    private static FsCheck.Gen<(string Type, string Json)> RandomBodies()
    {
        var typeNames = SourceTypes.All.Select(t => t.Name).ToArray();
        var fieldNames = SourceTypes.All.SelectMany(t => t.Fields.Select(f => f.Name)).Append("account_name").Append("type").Distinct().ToArray();
        var oddChars = new[] { '\0', '\u0001', '\u001f', '\u007f', '\u0085', '\u00a0', '\u200b', '\u202e', '\ud800', '\udc00', '\uffff', '"', '\\', '/', ' ', '\n', 'é', '中' };
        var chars = Gen.Frequency(
            (6, Gen.Elements("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789.-_:@/[]%".ToCharArray())),
            (2, Gen.Elements(oddChars)),
            (1, Gen.Choose(0, 0xFFFF).Select(i => (char)i)));
        var freeText = Gen.ArrayOf(chars).Select(cs => new string(cs));
        var stringText = Gen.Frequency(
            (4, freeText),
            (2, Gen.Elements(fieldNames)),
            (2, Gen.Elements(typeNames.Concat(typeNames.Select(n => n.ToLowerInvariant())).ToArray())),
            (1, Gen.Elements("db.example.com", "::1", "[::1]", "postgresql://u:p@h:5432/d", "mongodb://h/d", "Server=h;Password=p", "*****", "**x**", "xy12345.us-east-1")));
        var stringLiteral = stringText.Select(s => JsonText.Quote(s));
        var numberLiteral = Gen.OneOf(
            Gen.Choose(-70000, 70000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            Gen.Elements("1e400", "-1e400", "1e-400", "0.5", "-0", "5432.0", "1E3", "123456789012345678901234567890", "9223372036854775807", "65535.000000000000001"));
        var leaf = Gen.Frequency(
            (1, Gen.Constant("null")),
            (1, Gen.Elements("true", "false")),
            (3, numberLiteral),
            (5, stringLiteral));

        FsCheck.Gen<string> Value(int size) => size <= 0
            ? leaf
            : Gen.Frequency(
                (6, leaf),
                (1, Gen.ListOf(Gen.Sized(Value).Resize(size / 2)).Select(items => "[" + string.Join(",", items) + "]")),
                (1, Gen.ListOf(Gen.Zip(stringLiteral, Gen.Sized(Value).Resize(size / 2))).Select(pairs => "{" + string.Join(",", pairs.Select(p => p.Item1 + ":" + p.Item2)) + "}")));

        var member = Gen.Zip(
            Gen.Frequency((5, Gen.Elements(fieldNames)), (1, freeText)).Select(k => JsonText.Quote(k)),
            Gen.Sized(Value));
        var typeGen = Gen.Frequency((8, Gen.Elements(typeNames)), (1, Gen.Constant(string.Empty)));
        return typeGen.SelectMany(type => Gen.ListOf(member).Select(members =>
        {
            var all = members.Select(m => m.Item1 + ":" + m.Item2).ToList();
            if (type.Length > 0 && !members.Any(m => m.Item1 == "\"type\""))
            {
                all.Insert(0, "\"type\":" + JsonText.Quote(type));
            }

            return (type, "{" + string.Join(",", all) + "}");
        }));
    }

    /// <summary>Sends one body to one route and checks the answer's shape; returns the status, or null when there was none.</summary>
    private async Task<HttpStatusCode?> FireAsync(Arena arena, Target target, Shot shot)
    {
        arena.Requests++;
        var before = target.Seed is { } seed
            ? arena.Known.TryGetValue(seed.Id, out var known) ? known : await app.StoredSourceAsync(seed.Id)
            : null;
        HttpContent content = shot.Chunked ? new StreamContent(new MemoryStream(shot.Body)) : new ByteArrayContent(shot.Body);
        if (shot.ContentType is not null)
        {
            // Without validation: a hostile client is not bound by HttpClient's header rules.
            content.Headers.TryAddWithoutValidation("Content-Type", shot.ContentType);
        }

        if (shot.Chunked)
        {
            content.Headers.ContentLength = null;
        }

        using var request = new HttpRequestMessage(new HttpMethod(target.Method), target.Url) { Content = content };
        if (shot.Chunked)
        {
            request.Headers.TransferEncodingChunked = true;
        }

        var what = Preview(shot.Description);
        HttpResponseMessage response;
        try
        {
            response = await arena.Org.Http.SendAsync(request, TestContext.Current.CancellationToken);
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException or InvalidOperationException)
        {
            arena.Failures.Add(new Failure(target.ToString(), what, "no answer", $"{exception.GetType().Name}: {Preview(exception.Message)}"));
            return null;
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            var problem = Check(target, status, text);
            if (problem is not null)
            {
                arena.Failures.Add(new Failure(target.ToString(), what, $"{status} {problem}", Preview(text)));
            }

            if (before is not null)
            {
                var after = await app.StoredSourceAsync(target.Seed!.Id);
                if (status != 200 && after != before)
                {
                    arena.Failures.Add(new Failure(target.ToString(), what, $"{status} but the stored source changed", Preview(text)));
                }

                arena.Known[target.Seed.Id] = after;
            }

            return response.StatusCode;
        }
    }

    /// <summary>Null when the answer is one of the contract's shapes for the route; otherwise what is wrong.</summary>
    private static string? Check(Target target, int status, string text)
    {
        if (status >= 500)
        {
            return "server error";
        }

        if (status is not (200 or 400 or 413 or 415))
        {
            return "unexpected status";
        }

        JsonObject body;
        try
        {
            body = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException)
        {
            return "body is not a JSON object";
        }

        var keys = body.Select(p => p.Key).Order(StringComparer.Ordinal).ToArray();
        switch (status)
        {
            case 400:
                if (!keys.SequenceEqual(["error", "errors"], StringComparer.Ordinal)
                    || body["error"] is not JsonValue error || error.GetValueKind() != JsonValueKind.String || error.GetValue<string>().Length == 0
                    || body["errors"] is not JsonObject errors)
                {
                    return "400 is not {\"error\": string, \"errors\": object}";
                }

                if (errors.Any(e => e.Value is not JsonArray messages || messages.Count == 0
                    || messages.Any(m => m is not JsonValue v || v.GetValueKind() != JsonValueKind.String || v.GetValue<string>().Length == 0)))
                {
                    return "400 errors are not lists of messages";
                }

                return null;
            case 413 or 415:
                return keys.SequenceEqual(["detail"], StringComparer.Ordinal) && body["detail"]!.GetValueKind() == JsonValueKind.String
                    ? null
                    : $"{status} is not {{\"detail\": string}}";
            default:
                string[] expected = target.Kind switch
                {
                    Kind.Create => body.ContainsKey("public_key_sql") ? ["id", "public_key_sql"] : ["id"],
                    Kind.UpdateConfig => ["account_name", "id", "type"],
                    _ => ["account_name", "created_at", "id", "is_fully_configured", "type"],
                };
                if (!keys.SequenceEqual(expected, StringComparer.Ordinal) || body["id"]!.GetValueKind() != JsonValueKind.Number)
                {
                    return $"200 is not the {target.Kind} answer";
                }

                return target.Seed is { } seed && body["id"]!.GetValue<long>() != seed.Id ? "200 names another source" : null;
        }
    }

    /// <summary>Fails with every problem found, then checks that every seed source still answers a valid Connection.</summary>
    private static async Task AssertSurvivedAsync(Arena arena)
    {
        // The same body usually fails alike on every route: one line per body and problem, with how many routes it hit.
        var grouped = arena.Failures
            .GroupBy(f => (f.Body, f.Problem))
            .Select(g => $"{g.Count(),3}x {g.Key.Problem} [{g.Key.Body}] e.g. {g.First().Route}: {g.First().Answer}")
            .ToList();
        Assert.True(arena.Failures.Count == 0,
            $"{arena.Failures.Count} of {arena.Requests} requests got a wrong answer ({grouped.Count} distinct):\n" + string.Join("\n", grouped.Take(100)));

        foreach (var seed in arena.Seeds)
        {
            var connection = await arena.Org.Http.GetAsync(new Uri($"{SourcesUrl}{seed.Id}/", UriKind.Relative), TestContext.Current.CancellationToken)
                .Expect(HttpStatusCode.OK);
            Assert.Equal(["account_name", "created_at", "id", "is_fully_configured", "type"], connection.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
            Assert.Equal(seed.Id, connection["id"]!.GetValue<long>());
            Assert.Equal(seed.Type, connection["type"]!.GetValue<string>());
            var name = connection["account_name"]!.GetValue<string>();
            Assert.InRange(name.Length, 1, 255);
            Assert.Equal(name.Trim(), name);
            Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", connection["created_at"]!.GetValue<string>());
            Assert.Contains(connection["is_fully_configured"]!.GetValueKind(), new[] { JsonValueKind.True, JsonValueKind.False });
        }

        var list = await arena.Org.Http.GetAsync(new Uri(SourcesUrl + "?page_size=1000", UriKind.Relative), TestContext.Current.CancellationToken)
            .Expect(HttpStatusCode.OK);
        var listed = list["results"]!.AsArray().Select(r => r!["id"]!.GetValue<long>()).ToHashSet();
        Assert.All(arena.Seeds, seed => Assert.Contains(seed.Id, listed));
    }

    private static string Preview(string text)
    {
        var clean = new string([.. text.Select(c => char.IsControl(c) || char.IsSurrogate(c) ? '·' : c)]);
        return clean.Length > 160 ? clean[..160] + $"…({clean.Length})" : clean;
    }
}
