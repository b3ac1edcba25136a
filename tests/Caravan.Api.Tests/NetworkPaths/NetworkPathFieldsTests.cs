using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Revisions;
using Caravan.Api.Tests.Sources;
using Caravan.Api.Tests.Sources.Types;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The <c>ssh_tunnel</c> and <c>tls</c> groups (contract section 10) as fields: created, merged
/// member by member by update-config, removed with null, read back (secrets by state under the
/// group, certificates described), recorded in revisions, guarded against rebinding, and every
/// bad input refused in the contract's shape without a write and without repeating a secret.
/// </summary>
public sealed class NetworkPathFieldsTests(CaravanApp app)
{
    private static readonly Lazy<(string PrivateKey, string PublicKey)> Ed25519 = new(() => PathKeys.SshKey("ed25519"));

    private const string Passphrase = "correct horse battery staple";

    private static readonly Lazy<(string PrivateKey, string PublicKey)> EncryptedRsa = new(() => PathKeys.SshKey("rsa", Passphrase));

    private static JsonObject Postgres(string password, JsonObject? tunnel = null, JsonObject? tls = null)
    {
        var body = new JsonObject
        {
            ["type"] = "postgres", ["hostname"] = "db.internal", ["username"] = "analyst", ["password"] = password, ["database_name"] = "sales",
        };
        if (tunnel is not null)
        {
            body["ssh_tunnel"] = tunnel;
        }

        if (tls is not null)
        {
            body["tls"] = tls;
        }

        return body;
    }

    private static JsonObject Tunnel(string password) => new()
    {
        ["host"] = "bastion.example.com", ["username"] = "jump", ["password"] = password, ["host_key"] = PathKeys.Fingerprint(Ed25519.Value.PublicKey),
    };

    [Theory]
    [InlineData("POSTGRES")]
    [InlineData("SUPABASE")]
    [InlineData("MYSQL")]
    [InlineData("SINGLESTORE")]
    [InlineData("CLICKHOUSE")]
    [InlineData("MONGODB")]
    // MSSQL takes neither a CA nor a client certificate (SqlServerTlsTests has its own readback).
    public async Task Every_type_with_a_host_and_port_stores_both_groups_and_reads_them_back_without_a_secret(string type)
    {
        var org = await app.NewOrganizationAsync();
        var tunnelPassword = PathKeys.Password("tunnel");
        var dbPassword = PathKeys.Password("db");
        using var authority = new PathKeys.Authority("Caravan test CA " + type);
        var (clientCertificate, clientKey) = authority.Issue("analyst", client: true);
        var body = new JsonObject
        {
            ["type"] = type, [type == "CLICKHOUSE" ? "host" : "hostname"] = "db.internal", ["username"] = "analyst", ["password"] = dbPassword,
            ["ssh_tunnel"] = Tunnel(tunnelPassword),
            ["tls"] = new JsonObject
            {
                ["mode"] = "verify-full", ["ca_certificate"] = authority.CertificatePem, ["client_certificate"] = clientCertificate, ["client_key"] = clientKey,
            },
        };
        if (type != "CLICKHOUSE")
        {
            body["database_name"] = "sales";
        }

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());
        var (read, text, _) = await ConfigReadbackTests.ReadAsync(org, id);

        var tunnel = read["config"]!["ssh_tunnel"]!;
        Assert.Equal(["host", "port", "username", "host_key"], tunnel.AsObject().Select(p => p.Key));
        Assert.Equal("bastion.example.com", tunnel["host"]!.GetValue<string>());
        Assert.Equal(22, tunnel["port"]!.GetValue<int>());
        Assert.Equal("jump", tunnel["username"]!.GetValue<string>());
        Assert.Equal(PathKeys.Fingerprint(Ed25519.Value.PublicKey), tunnel["host_key"]!.GetValue<string>());
        var tls = read["config"]!["tls"]!;
        Assert.Equal(["mode", "ca_certificate", "client_certificate"], tls.AsObject().Select(p => p.Key));
        Assert.Equal("verify-full", tls["mode"]!.GetValue<string>());
        var ca = Assert.Single(tls["ca_certificate"]!.AsArray())!;
        Assert.Equal(["subject", "issuer", "not_after", "expires_soon"], ca.AsObject().Select(p => p.Key));
        Assert.Equal("CN=Caravan test CA " + type, ca["subject"]!.GetValue<string>());
        Assert.Equal("CN=Caravan test CA " + type, ca["issuer"]!.GetValue<string>());
        Assert.Matches(Wire.RfcSecondsPattern, ca["not_after"]!.GetValue<string>());
        Assert.False(ca["expires_soon"]!.GetValue<bool>());
        var client = Assert.Single(tls["client_certificate"]!.AsArray())!;
        Assert.Equal("CN=analyst", client["subject"]!.GetValue<string>());
        Assert.Equal("CN=Caravan test CA " + type, client["issuer"]!.GetValue<string>());

        var secrets = read["secrets"]!;
        Assert.Equal(["password", "private_key", "private_key_passphrase"], secrets["ssh_tunnel"]!.AsObject().Select(p => p.Key));
        Assert.True(secrets["ssh_tunnel"]!["password"]!["set"]!.GetValue<bool>());
        Assert.Matches(ConfigReadbackTests.FingerprintPattern(), secrets["ssh_tunnel"]!["password"]!["fingerprint"]!.GetValue<string>());
        Assert.Equal("""{"set":false}""", secrets["ssh_tunnel"]!["private_key"]!.Compact());
        Assert.True(secrets["tls"]!["client_key"]!["set"]!.GetValue<bool>());

        // No secret in the answer, and none in the store but encrypted, under the member's own name.
        var stored = await app.StoredSourceAsync(id);
        foreach (var secret in PathKeys.KeyLines(clientKey).Append(tunnelPassword).Append(dbPassword))
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, stored.SettingsJson + stored.SecretsJson, StringComparison.Ordinal);
        }

        Assert.Equal(tunnelPassword, await app.RevealAsync(id, "ssh_tunnel.password"));
        Assert.Equal(clientKey, await app.RevealAsync(id, "tls.client_key"));
    }

    [Fact]
    public async Task Update_config_merges_a_group_member_by_member_and_null_removes_it_all()
    {
        var org = await app.NewOrganizationAsync();
        var tunnelPassword = PathKeys.Password("tunnel");
        var id = await org.Http.CreateSourceAsync(Postgres(PathKeys.Password("db"), Tunnel(tunnelPassword)).ToJsonString());

        // Rotating the key is the key alone: the host, the user and the password stay.
        var (key, _) = EncryptedRsa.Value;
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id),
            new JsonObject { ["ssh_tunnel"] = new JsonObject { ["private_key"] = key, ["private_key_passphrase"] = Passphrase } }.ToJsonString())
            .Expect(HttpStatusCode.OK);
        var (read, _, _) = await ConfigReadbackTests.ReadAsync(org, id);
        Assert.Equal("bastion.example.com", read["config"]!["ssh_tunnel"]!["host"]!.GetValue<string>());
        Assert.True(read["secrets"]!["ssh_tunnel"]!["password"]!["set"]!.GetValue<bool>());
        Assert.True(read["secrets"]!["ssh_tunnel"]!["private_key"]!["set"]!.GetValue<bool>());
        Assert.Equal(tunnelPassword, await app.RevealAsync(id, "ssh_tunnel.password"));
        Assert.Equal(key, await app.RevealAsync(id, "ssh_tunnel.private_key"));

        // null clears one member; the port goes back to 22 when cleared.
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"ssh_tunnel": {"password": null, "port": 2222}}""").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"ssh_tunnel": {"port": null}}""").Expect(HttpStatusCode.OK);
        (read, _, _) = await ConfigReadbackTests.ReadAsync(org, id);
        Assert.Equal("""{"set":false}""", read["secrets"]!["ssh_tunnel"]!["password"]!.Compact());
        Assert.Equal(22, read["config"]!["ssh_tunnel"]!["port"]!.GetValue<int>());

        // The last credential cannot be cleared while the tunnel stays, nor a key under its passphrase.
        var refused = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"ssh_tunnel": {"private_key": null}}""").Expect(HttpStatusCode.BadRequest);
        Assert.Equal(["ssh_tunnel", "ssh_tunnel.private_key_passphrase"], TypeCatalog.ErrorKeys(refused));
        Assert.Equal(["Send password or private_key."], TypeCatalog.Messages(refused, "ssh_tunnel"));
        Assert.Equal(["A passphrase needs a private_key."], TypeCatalog.Messages(refused, "ssh_tunnel.private_key_passphrase"));

        // null for the group removes every member, secrets included.
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"ssh_tunnel": null}""").Expect(HttpStatusCode.OK);
        (read, _, _) = await ConfigReadbackTests.ReadAsync(org, id);
        Assert.Null(read["config"]!["ssh_tunnel"]);
        Assert.False(read["secrets"]!.AsObject().ContainsKey("ssh_tunnel"));
        var stored = await app.StoredSourceAsync(id);
        Assert.DoesNotContain(stored.Settings, s => s.Key.StartsWith("ssh_tunnel", StringComparison.Ordinal));
        Assert.Equal(["password"], stored.Secrets.Select(s => s.Key));

        // The source itself is as before.
        Assert.Equal("db.internal", read["config"]!["hostname"]!.GetValue<string>());
    }

    [Fact]
    public async Task Revisions_record_group_members_by_their_dotted_names_and_secrets_by_state()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres(PathKeys.Password("db"), Tunnel(PathKeys.Password("tunnel"))).ToJsonString());

        var created = (await org.NewestAsync(id))["changes"]!;
        Assert.Equal("""{"old":null,"new":"bastion.example.com"}""", created["ssh_tunnel.host"]!.Compact());
        Assert.Equal("set", created["ssh_tunnel.password"]!.GetValue<string>());

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id),
            new JsonObject { ["ssh_tunnel"] = new JsonObject { ["password"] = PathKeys.Password("tunnel2"), ["port"] = 2200 } }.ToJsonString())
            .Expect(HttpStatusCode.OK);
        Assert.Equal(
            """{"ssh_tunnel.port":{"old":null,"new":2200},"ssh_tunnel.password":"changed"}""",
            (await org.NewestAsync(id))["changes"]!.Compact());

        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"ssh_tunnel": null}""").Expect(HttpStatusCode.OK);
        var removed = (await org.NewestAsync(id))["changes"]!.AsObject();
        Assert.Equal(["ssh_tunnel.host", "ssh_tunnel.port", "ssh_tunnel.username", "ssh_tunnel.password", "ssh_tunnel.host_key"], removed.Select(c => c.Key));
        Assert.Equal("cleared", removed["ssh_tunnel.password"]!.GetValue<string>());
    }

    [Fact]
    public async Task Moving_the_bastion_needs_the_tunnels_and_the_databases_secrets_again_and_writes_nothing_until_then()
    {
        var org = await app.NewOrganizationAsync();
        var tunnelPassword = PathKeys.Password("tunnel");
        var id = await org.Http.CreateSourceAsync(Postgres(PathKeys.Password("db"), Tunnel(tunnelPassword)).ToJsonString());
        var before = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync("PATCH", TypeCatalog.UpdateUrl(id), """{"ssh_tunnel": {"host": "evil.example.com"}}""");

        answer.AssertExactly(HttpStatusCode.BadRequest, """
            {"error":"Invalid values for password, ssh_tunnel.password.","errors":{"password":["Changing ssh_tunnel.host requires sending password again."],"ssh_tunnel.password":["Changing ssh_tunnel.host requires sending ssh_tunnel.password again."]}}
            """.Trim());
        Assert.Equal(before, await app.StoredSourceAsync(id));

        // The same bastion by another spelling is no move.
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"ssh_tunnel": {"host": "BASTION.example.com."}}""").Expect(HttpStatusCode.OK);

        // Moving the database behind the same bastion needs the database's password only.
        var moved = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), """{"hostname": "db2.internal"}""").Expect(HttpStatusCode.BadRequest);
        TypeCatalog.AssertOnlyError(moved, "password", "Changing hostname requires sending password again.");

        // Adding a tunnel to a source that had none moves it too.
        var plain = await org.Http.CreateSourceAsync(Postgres(PathKeys.Password("db")).ToJsonString());
        var added = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(plain),
            new JsonObject { ["ssh_tunnel"] = Tunnel(PathKeys.Password("tunnel")) }.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        TypeCatalog.AssertOnlyError(added, "password", "Changing ssh_tunnel.host requires sending password again.");

        // With every secret sent again, the move is written.
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), new JsonObject
        {
            ["password"] = PathKeys.Password("db2"),
            ["ssh_tunnel"] = new JsonObject { ["host"] = "bastion2.example.com", ["password"] = PathKeys.Password("tunnel2") },
        }.ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.NotEqual(tunnelPassword, await app.RevealAsync(id, "ssh_tunnel.password"));
    }

    public static TheoryData<string, string, string> BadGroups() => new()
    {
        { """{"ssh_tunnel": "bastion.example.com"}""", "ssh_tunnel", "Invalid data. Expected a dictionary, but got str." },
        { """{"ssh_tunnel": [1]}""", "ssh_tunnel", "Invalid data. Expected a dictionary, but got list." },
        { """{"ssh_tunnel": {"hots": "b"}}""", "ssh_tunnel.hots", "Not a valid field for ssh_tunnel." },
        { """{"ssh_tunnel.host": "b"}""", "ssh_tunnel.host", "Not a valid field for POSTGRES sources." },
        { """{"ssh_tunnel": {"host": "b", "username": "u", "password": "p", "port": "abc"}}""", "ssh_tunnel.port", "A valid integer is required." },
        { """{"ssh_tunnel": {"host": "b", "username": "u", "password": "p", "port": 70000}}""", "ssh_tunnel.port", "Ensure this value is less than or equal to 65535." },
        { """{"ssh_tunnel": {"host": "https://b/", "username": "u", "password": "p"}}""", "ssh_tunnel.host", null! },
        { """{"ssh_tunnel": {"host": "b", "username": 7, "password": "p"}}""", "ssh_tunnel.username", "Not a valid string." },
        { """{"ssh_tunnel": {"username": "u", "password": "p"}}""", "ssh_tunnel.host", "This field is required." },
        { """{"ssh_tunnel": {"host": "b", "username": "u"}}""", "ssh_tunnel", "Send password or private_key." },
        { """{"ssh_tunnel": {"host": "b", "username": "u", "password": "********"}}""", "ssh_tunnel.password", "Send the real secret, or omit the field to keep the stored one." },
        { """{"ssh_tunnel": {"host": "b", "username": "u", "password": "p", "host_key": "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"}}""", "ssh_tunnel.host_key", null! },
        { """{"ssh_tunnel": {"host": "b", "username": "u", "password": "p", "host_key": "SHA256:tooshort"}}""", "ssh_tunnel.host_key", null! },
        { """{"ssh_tunnel": {"host": "b", "username": "u", "password": "p", "host_key": "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ"}}""", "ssh_tunnel.host_key", null! },
        { """{"tls": {"mode": "sometimes"}}""", "tls.mode", "\"sometimes\" is not a valid choice." },
        { """{"tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}}""", "tls.ca_certificate", "Not a PEM certificate: send one or more -----BEGIN CERTIFICATE----- blocks." },
        { """{"tls": {"mode": "require", "unknown": true}}""", "tls.unknown", "Not a valid field for tls." },
        { """{"tls": {"mode": true}}""", "tls.mode", "Not a valid string." },
    };

    [Theory]
    [MemberData(nameof(BadGroups))]
    public async Task Bad_group_input_is_a_400_in_the_contracts_shape_on_create_and_update_and_writes_nothing(string patch, string field, string? message)
    {
        var org = await app.NewOrganizationAsync();
        var body = Postgres(PathKeys.Password("db"));
        foreach (var (name, value) in JsonNode.Parse(patch)!.AsObject())
        {
            body[name] = value?.DeepClone();
        }

        var created = await org.Http.PostJsonAsync("/api/v1/sources/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        Assert.Contains(field, TypeCatalog.ErrorKeys(created));
        if (message is not null)
        {
            Assert.Contains(message, TypeCatalog.Messages(created, field));
        }

        var id = await org.Http.CreateSourceAsync(Postgres(PathKeys.Password("db")).ToJsonString());
        var before = await app.StoredSourceAsync(id);
        var updated = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), patch).Expect(HttpStatusCode.BadRequest);
        Assert.False(string.IsNullOrWhiteSpace(updated["error"]?.GetValue<string>()));
        Assert.Contains(field, TypeCatalog.ErrorKeys(updated));
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Keys_are_checked_on_write_with_their_passphrase_and_no_message_repeats_a_secret()
    {
        var org = await app.NewOrganizationAsync();
        var (ed25519, _) = Ed25519.Value;
        var (rsa, _) = EncryptedRsa.Value;
        var (ecdsaPem, _) = PathKeys.SshKey("ecdsa", pem: true);
        var notAKey = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + PathKeys.Password("garbage") + "\n-----END OPENSSH PRIVATE KEY-----";
        var wrongPassphrase = PathKeys.Password("wrong-passphrase");
        var (dsa, _) = PathKeys.SshKey("dsa", pem: true);
        var cases = new (JsonObject Tunnel, string? Field, string? Message)[]
        {
            (new JsonObject { ["private_key"] = ed25519 }, null, null),
            (new JsonObject { ["private_key"] = ecdsaPem }, null, null),
            (new JsonObject { ["private_key"] = rsa, ["private_key_passphrase"] = Passphrase }, null, null),
            (new JsonObject { ["private_key"] = rsa }, "ssh_tunnel.private_key_passphrase", "The private key is encrypted: send its private_key_passphrase."),
            (new JsonObject { ["private_key"] = rsa, ["private_key_passphrase"] = wrongPassphrase }, "ssh_tunnel.private_key_passphrase", "This passphrase does not open the private key."),
            (new JsonObject { ["private_key"] = notAKey }, "ssh_tunnel.private_key", null),
            (new JsonObject { ["private_key"] = dsa }, "ssh_tunnel.private_key", "DSA keys are not accepted: use an Ed25519, ECDSA or RSA key."),
            (new JsonObject { ["password"] = "p", ["private_key_passphrase"] = Passphrase }, "ssh_tunnel.private_key_passphrase", "A passphrase needs a private_key."),
        };

        var answers = new List<string>();
        foreach (var (tunnel, field, message) in cases)
        {
            tunnel["host"] = "bastion.example.com";
            tunnel["username"] = "jump";
            var answer = await org.Http.SendAsync("POST", "/api/v1/sources/", Postgres(PathKeys.Password("db"), tunnel).ToJsonString());
            answers.Add(answer.Body);
            if (field is null)
            {
                Assert.True(answer.Status == HttpStatusCode.OK, answer.ToString());
                continue;
            }

            Assert.True(answer.Status == HttpStatusCode.BadRequest, answer.ToString());
            TypeCatalog.AssertOnlyError(answer.Json, field, message);
        }

        // A stored key and a passphrase sent later are checked together.
        var id = await org.Http.CreateSourceAsync(Postgres(PathKeys.Password("db"),
            new JsonObject { ["host"] = "b.example.com", ["username"] = "u", ["private_key"] = rsa, ["private_key_passphrase"] = Passphrase }).ToJsonString());
        var later = await org.Http.SendAsync("PATCH", TypeCatalog.UpdateUrl(id), new JsonObject { ["ssh_tunnel"] = new JsonObject { ["private_key_passphrase"] = wrongPassphrase } }.ToJsonString());
        answers.Add(later.Body);
        TypeCatalog.AssertOnlyError(later.Json, "ssh_tunnel.private_key_passphrase", "This passphrase does not open the private key.");

        app.AssertNoSecrets(answers, [.. PathKeys.KeyLines(rsa), .. PathKeys.KeyLines(ed25519), .. PathKeys.KeyLines(ecdsaPem), Passphrase, wrongPassphrase, notAKey.Split('\n')[1]]);
    }

    [Fact]
    public async Task Tls_client_certificates_need_their_own_key_and_disable_takes_no_certificates()
    {
        var org = await app.NewOrganizationAsync();
        using var authority = new PathKeys.Authority("Caravan pair CA");
        var (certificate, key) = authority.Issue("analyst", client: true);
        var (_, otherKey) = authority.Issue("someone-else", client: true);
        var cases = new (JsonObject Tls, string Field, string Message)[]
        {
            (new JsonObject { ["mode"] = "verify-full", ["client_certificate"] = certificate }, "tls.client_key", "Send client_certificate and client_key together."),
            (new JsonObject { ["mode"] = "verify-full", ["client_key"] = key }, "tls.client_certificate", "Send client_certificate and client_key together."),
            (new JsonObject { ["mode"] = "verify-full", ["client_certificate"] = certificate, ["client_key"] = otherKey }, "tls.client_key",
                "Not the private key of client_certificate: send its unencrypted PEM key (PKCS#8, PKCS#1 or EC)."),
            (new JsonObject { ["mode"] = "disable", ["ca_certificate"] = authority.CertificatePem }, "tls.mode",
                "TLS is disabled: remove the certificates, or choose require, verify-ca or verify-full."),
            (new JsonObject { ["ca_certificate"] = authority.CertificatePem }, "tls.mode", "This field is required."),
        };

        var answers = new List<string>();
        foreach (var (tls, field, message) in cases)
        {
            var answer = await org.Http.SendAsync("POST", "/api/v1/sources/", Postgres(PathKeys.Password("db"), tls: tls).ToJsonString());
            answers.Add(answer.Body);
            Assert.True(answer.Status == HttpStatusCode.BadRequest, answer.ToString());
            TypeCatalog.AssertOnlyError(answer.Json, field, message);
        }

        app.AssertNoSecrets(answers, [.. PathKeys.KeyLines(key), .. PathKeys.KeyLines(otherKey)]);
    }

    [Fact]
    public async Task A_certificate_that_expires_within_30_days_is_flagged()
    {
        var org = await app.NewOrganizationAsync();
        using var authority = new PathKeys.Authority("Caravan expiring CA", notAfter: DateTimeOffset.UtcNow.AddDays(20));
        var (later, _) = authority.Issue("db.internal", notAfter: DateTimeOffset.UtcNow.AddDays(19));
        var id = await org.Http.CreateSourceAsync(Postgres(PathKeys.Password("db"),
            tls: new JsonObject { ["mode"] = "verify-ca", ["ca_certificate"] = authority.CertificatePem + "\n" + later }).ToJsonString());

        var (read, _, _) = await ConfigReadbackTests.ReadAsync(org, id);

        var bundle = read["config"]!["tls"]!["ca_certificate"]!.AsArray();
        Assert.Equal(2, bundle.Count);
        Assert.All(bundle, c => Assert.True(c!["expires_soon"]!.GetValue<bool>()));
        Assert.Equal("CN=db.internal", bundle[1]!["subject"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_mongodb_source_takes_a_tunnel_in_its_host_form_only()
    {
        const string Only = "An SSH tunnel needs the host form (hostname, port, database_name): a connection string's hosts cannot be reached through one forwarded port. Send those fields instead of connection_string, or remove ssh_tunnel.";
        var org = await app.NewOrganizationAsync();
        var connectionString = "mongodb+srv://app:" + PathKeys.Password("mongo") + "@cluster0.example.net/orders";

        var refused = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject
        {
            ["type"] = "MONGODB", ["connection_string"] = connectionString, ["ssh_tunnel"] = Tunnel(PathKeys.Password("tunnel")),
        }.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        Assert.Equal([Only], TypeCatalog.Messages(refused, "ssh_tunnel"));
        Assert.Equal(0, (await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());

        // Stored as a connection string: a tunnel added later is refused, and nothing changes.
        var asString = await org.Http.CreateSourceAsync(new JsonObject { ["type"] = "MONGODB", ["connection_string"] = connectionString }.ToJsonString());
        var later = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(asString), new JsonObject { ["ssh_tunnel"] = Tunnel(PathKeys.Password("tunnel")) }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);
        Assert.Equal([Only], TypeCatalog.Messages(later, "ssh_tunnel"));

        // The host form takes one; moving such a source to a connection string keeps the tunnel out.
        var hosted = await org.Http.CreateSourceAsync(new JsonObject
        {
            ["type"] = "MONGODB", ["hostname"] = "mongo.internal", ["database_name"] = "orders", ["ssh_tunnel"] = Tunnel(PathKeys.Password("tunnel")),
        }.ToJsonString());
        var moved = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(hosted), new JsonObject { ["connection_string"] = connectionString }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);
        Assert.Equal([Only], TypeCatalog.Messages(moved, "ssh_tunnel"));
        await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(hosted), new JsonObject { ["connection_string"] = connectionString, ["ssh_tunnel"] = null }.ToJsonString())
            .Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Types_without_a_host_and_port_take_neither_group()
    {
        var org = await app.NewOrganizationAsync();
        var answer = await org.Http.PostJsonAsync("/api/v1/sources/", """
            {"type": "motherduck", "database_name": "d", "token": "t", "ssh_tunnel": {"host": "b"}, "tls": {"mode": "require"}}
            """).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["ssh_tunnel", "tls"], TypeCatalog.ErrorKeys(answer));
        Assert.Equal(["Not a valid field for MOTHERDUCK sources."], TypeCatalog.Messages(answer, "ssh_tunnel"));
    }

    [Fact]
    public async Task The_source_types_catalog_describes_both_groups_and_their_members()
    {
        var org = await app.NewOrganizationAsync();
        var catalog = await org.Http.GetAsync(new Uri("/api/v1/source-types/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        var postgres = catalog["results"]!.AsArray().Single(t => t!["type"]!.GetValue<string>() == "POSTGRES")!;
        var tunnel = postgres["fields"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == "ssh_tunnel")!;
        Assert.Equal("group", tunnel["kind"]!.GetValue<string>());
        Assert.Equal(
            ["host", "port", "username", "password", "private_key", "private_key_passphrase", "host_key"],
            tunnel["members"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()));
        Assert.Equal([true, false, true], tunnel["members"]!.AsArray().Take(3).Select(m => m!["required"]!.GetValue<bool>()));
        Assert.True(tunnel["members"]![3]!["secret"]!.GetValue<bool>());
        Assert.Equal(22, tunnel["members"]![1]!["default"]!.GetValue<int>());

        var tls = postgres["fields"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == "tls")!;
        var mode = tls["members"]![0]!;
        Assert.Equal("choice", mode["kind"]!.GetValue<string>());
        Assert.Equal(["disable", "require", "verify-ca", "verify-full"], mode["choices"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.Equal("certificate", tls["members"]![1]!["kind"]!.GetValue<string>());

        var snowflake = catalog["results"]!.AsArray().Single(t => t!["type"]!.GetValue<string>() == "SNOWFLAKE")!;
        Assert.DoesNotContain(snowflake["fields"]!.AsArray(), f => f!["kind"]!.GetValue<string>() == "group");
    }
}
