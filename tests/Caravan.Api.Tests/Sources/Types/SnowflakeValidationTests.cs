using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Tests.Infrastructure;
using static Caravan.Api.Tests.Sources.Types.TypeCatalog;

namespace Caravan.Api.Tests.Sources.Types;

/// <summary>Snowflake by password or key pair, generated or brought by the user (contract section 5).</summary>
public sealed partial class SnowflakeValidationTests(CaravanApp app)
{
    private const string Account = "xy12345.us-east-1";

    private static string PublicBody(RSA rsa) => Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo());

    private static string ExpectedSql(string user, string body) => $"ALTER USER \"{user}\" SET RSA_PUBLIC_KEY='{body}';";

    private static async Task<(long Id, JsonNode Answer)> CreateAsync(OrgClient org, JsonObject fields, string url = "/api/v1/sources/")
    {
        fields["type"] = "snowflake";
        fields["account"] ??= Account;
        fields["user"] ??= "ANALYST";
        var answer = await org.Http.PostJsonAsync(url, fields.ToJsonString()).Expect(HttpStatusCode.OK);
        return (answer["id"]!.GetValue<long>(), answer);
    }

    [Theory]
    [InlineData("/api/v1/sources/")]
    [InlineData("/api/v1/sources/add/snowflake/")]
    public async Task Without_password_or_keys_a_key_pair_is_generated(string url)
    {
        var org = await app.NewOrganizationAsync();

        var (id, answer) = await CreateAsync(org, new JsonObject { ["warehouse"] = "WH" }, url);

        Assert.Equal(["id", "public_key_sql"], answer.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        var match = AlterUserPattern().Match(answer["public_key_sql"]!.GetValue<string>());
        Assert.True(match.Success, answer["public_key_sql"]!.GetValue<string>());
        Assert.Equal("ANALYST", match.Groups["user"].Value);

        using var announced = RSA.Create();
        announced.ImportSubjectPublicKeyInfo(Convert.FromBase64String(match.Groups["key"].Value), out var read);
        Assert.Equal(Convert.FromBase64String(match.Groups["key"].Value).Length, read);
        Assert.Equal(2048, announced.KeySize);

        var privatePem = await app.RevealAsync(id, "private_key");
        Assert.StartsWith("-----BEGIN", privatePem, StringComparison.Ordinal);
        using var held = RSA.Create();
        held.ImportFromPem(privatePem);
        Assert.Equal(match.Groups["key"].Value, PublicBody(held));

        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        Assert.DoesNotContain("PRIVATE", answer.Compact(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_quote_in_the_user_name_is_doubled_in_the_statement()
    {
        var org = await app.NewOrganizationAsync();

        var (_, answer) = await CreateAsync(org, new JsonObject { ["user"] = "O\"Brien" });

        Assert.StartsWith("ALTER USER \"O\"\"Brien\" SET RSA_PUBLIC_KEY='", answer["public_key_sql"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_generated_pairs_differ()
    {
        var org = await app.NewOrganizationAsync();

        var (_, first) = await CreateAsync(org, []);
        var (_, second) = await CreateAsync(org, []);

        Assert.NotEqual(first["public_key_sql"]!.GetValue<string>(), second["public_key_sql"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_password_create_answers_no_statement_and_is_fully_configured()
    {
        var org = await app.NewOrganizationAsync();

        var (id, answer) = await CreateAsync(org, new JsonObject { ["password"] = "sf-pass" });

        Assert.Equal($$"""{"id":{{id}}}""", answer.Compact());
        var stored = await app.StoredSourceAsync(id);
        Assert.False(stored.Secrets.ContainsKey("private_key"));
        Assert.False(stored.Settings.ContainsKey("public_key"));
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    public static TheoryData<string> PrivateKeyFormats() => ["pkcs8", "pkcs1"];

    [Theory]
    [MemberData(nameof(PrivateKeyFormats))]
    public async Task A_private_key_brought_by_the_user_answers_its_statement(string format)
    {
        var org = await app.NewOrganizationAsync();
        using var rsa = RSA.Create(2048);
        var pem = format == "pkcs8" ? rsa.ExportPkcs8PrivateKeyPem() : rsa.ExportRSAPrivateKeyPem();

        var (id, answer) = await CreateAsync(org, new JsonObject { ["private_key"] = pem });

        Assert.Equal(ExpectedSql("ANALYST", PublicBody(rsa)), answer["public_key_sql"]!.GetValue<string>());
        Assert.Equal(pem, await app.RevealAsync(id, "private_key"));
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    private static string EncryptedPem(RSA rsa, string passphrase) =>
        rsa.ExportEncryptedPkcs8PrivateKeyPem(passphrase, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000));

    [Fact]
    public async Task An_encrypted_private_key_with_its_passphrase_answers_its_statement()
    {
        var org = await app.NewOrganizationAsync();
        using var rsa = RSA.Create(2048);
        var passphrase = Leak();

        var (id, answer) = await CreateAsync(org, new JsonObject { ["private_key"] = EncryptedPem(rsa, passphrase), ["private_key_passphrase"] = passphrase });

        Assert.Equal(ExpectedSql("ANALYST", PublicBody(rsa)), answer["public_key_sql"]!.GetValue<string>());
        Assert.Equal(passphrase, await app.RevealAsync(id, "private_key_passphrase"));
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task An_encrypted_private_key_without_its_passphrase_is_refused_on_private_key()
    {
        var org = await app.NewOrganizationAsync();
        using var rsa = RSA.Create(2048);

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/",
            new JsonObject { ["type"] = "snowflake", ["account"] = Account, ["user"] = "U", ["private_key"] = EncryptedPem(rsa, "right") }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "private_key");
    }

    [Fact]
    public async Task A_wrong_passphrase_is_refused_without_repeating_it()
    {
        var org = await app.NewOrganizationAsync();
        using var rsa = RSA.Create(2048);
        var wrong = Leak();

        using var response = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject
        {
            ["type"] = "snowflake", ["account"] = Account, ["user"] = "U", ["private_key"] = EncryptedPem(rsa, "right"), ["private_key_passphrase"] = wrong,
        }.ToJsonString());
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(["private_key"], ErrorKeys(JsonNode.Parse(text)!));
        Assert.DoesNotContain(wrong, text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not a key {0}")]
    [InlineData("-----BEGIN PRIVATE KEY-----\n{0}\n-----END PRIVATE KEY-----")]
    public async Task A_private_key_that_is_not_an_RSA_PEM_is_refused_without_repeating_it(string template)
    {
        var org = await app.NewOrganizationAsync();
        var leak = Leak();

        using var response = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject
        {
            ["type"] = "snowflake", ["account"] = Account, ["user"] = "U",
            ["private_key"] = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, leak),
        }.ToJsonString());
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(["private_key"], ErrorKeys(JsonNode.Parse(text)!));
        Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("pem")]
    [InlineData("base64")]
    public async Task A_public_key_that_matches_the_private_key_is_accepted(string shape)
    {
        var org = await app.NewOrganizationAsync();
        using var rsa = RSA.Create(2048);
        var publicKey = shape == "pem" ? rsa.ExportSubjectPublicKeyInfoPem() : PublicBody(rsa);

        var (id, answer) = await CreateAsync(org, new JsonObject { ["private_key"] = rsa.ExportPkcs8PrivateKeyPem(), ["public_key"] = publicKey });

        Assert.Equal(ExpectedSql("ANALYST", PublicBody(rsa)), answer["public_key_sql"]!.GetValue<string>());
        Assert.True((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_public_key_that_does_not_match_the_private_key_is_refused_on_public_key()
    {
        var org = await app.NewOrganizationAsync();
        using var mine = RSA.Create(2048);
        using var other = RSA.Create(2048);

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject
        {
            ["type"] = "snowflake", ["account"] = Account, ["user"] = "U",
            ["private_key"] = mine.ExportPkcs8PrivateKeyPem(), ["public_key"] = other.ExportSubjectPublicKeyInfoPem(),
        }.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "public_key");
    }

    [Fact]
    public async Task A_public_key_that_does_not_match_the_stored_private_key_is_refused_on_update()
    {
        var org = await app.NewOrganizationAsync();
        using var other = RSA.Create(2048);
        var (id, _) = await CreateAsync(org, []);
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["public_key"] = other.ExportSubjectPublicKeyInfoPem() }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "public_key");
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task A_public_key_alone_answers_its_statement_but_is_not_fully_configured()
    {
        var org = await app.NewOrganizationAsync();
        using var rsa = RSA.Create(2048);

        var (id, answer) = await CreateAsync(org, new JsonObject { ["public_key"] = rsa.ExportSubjectPublicKeyInfoPem() });

        Assert.Equal(ExpectedSql("ANALYST", PublicBody(rsa)), answer["public_key_sql"]!.GetValue<string>());
        Assert.False((await app.StoredSourceAsync(id)).Secrets.ContainsKey("private_key"));
        Assert.False((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("not a key")]
    [InlineData("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")]
    [InlineData("bm90IGEga2V5")]
    public async Task A_public_key_that_is_not_an_RSA_key_is_refused(string publicKey)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/",
            new JsonObject { ["type"] = "snowflake", ["account"] = Account, ["user"] = "U", ["public_key"] = publicKey }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(answer, "public_key");
    }

    [Theory]
    [InlineData("https://xy12345.us-east-1.snowflakecomputing.com")]
    [InlineData("xy12345.us-east-1.snowflakecomputing.com")]
    [InlineData("https://app.snowflake.com/us-east-1/xy12345")]
    [InlineData("xy12345 us-east-1")]
    [InlineData("xy12345/us-east-1")]
    public async Task An_account_given_as_a_URL_or_with_stray_characters_is_refused(string account)
    {
        var org = await app.NewOrganizationAsync();
        var (id, _) = await CreateAsync(org, new JsonObject { ["password"] = "pw" });
        var before = await app.StoredSourceAsync(id);

        var created = await org.Http.PostJsonAsync("/api/v1/sources/",
            new JsonObject { ["type"] = "snowflake", ["account"] = account, ["user"] = "U", ["password"] = "pw" }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);
        var updated = await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["account"] = account, ["password"] = "pw2" }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        AssertOnlyError(created, "account");
        AssertOnlyError(updated, "account");
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [InlineData("xy12345")]
    [InlineData("xy12345.us-east-1")]
    [InlineData("myorg-myaccount")]
    [InlineData("xy12345.eu-west-1.aws")]
    [InlineData("my_org-acct")]
    public async Task Account_identifiers_are_accepted(string account)
    {
        var org = await app.NewOrganizationAsync();

        await CreateAsync(org, new JsonObject { ["account"] = account, ["password"] = "pw" });
    }

    [Fact]
    public async Task Update_config_never_generates_a_key_pair()
    {
        var org = await app.NewOrganizationAsync();
        var (id, _) = await CreateAsync(org, new JsonObject { ["password"] = "pw" });

        var answer = await org.Http.PatchJsonAsync(UpdateUrl(id), """{"password": null, "warehouse": "WH"}""").Expect(HttpStatusCode.OK);

        Assert.Null(answer["public_key_sql"]);
        var stored = await app.StoredSourceAsync(id);
        Assert.False(stored.Secrets.ContainsKey("private_key"));
        Assert.False(stored.Settings.ContainsKey("public_key"));
        Assert.False((await org.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_new_private_key_on_update_brings_its_own_public_key()
    {
        var org = await app.NewOrganizationAsync();
        using var rsa = RSA.Create(2048);
        var (id, _) = await CreateAsync(org, []);

        await org.Http.PatchJsonAsync(UpdateUrl(id), new JsonObject { ["private_key"] = rsa.ExportPkcs8PrivateKeyPem() }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal(PublicBody(rsa), (await app.StoredSourceAsync(id)).Settings["public_key"]!.GetValue<string>());
    }

    [GeneratedRegex("""^ALTER USER "(?<user>[^"]+)" SET RSA_PUBLIC_KEY='(?<key>[A-Za-z0-9+/]+={0,2})';$""")]
    private static partial Regex AlterUserPattern();
}
