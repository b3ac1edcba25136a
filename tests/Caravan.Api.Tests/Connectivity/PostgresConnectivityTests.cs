using Caravan.Api.Connectors.Postgres;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;
using Npgsql;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// Section 8 against a real PostgreSQL server: connection tests (unsaved and stored), schema
/// discovery and update-config with <c>?verify=true</c>. Each test makes its own role and database.
/// </summary>
public sealed class PostgresConnectivityTests(CaravanApp app)
{
    // ---- success ----

    [Fact]
    public async Task An_unsaved_test_of_a_reachable_database_passes_every_step_and_stores_nothing()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", db.Body()).Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
        Assert.Equal(0, await org.CountAsync());
    }

    [Fact]
    public async Task A_stored_source_passes_every_step()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var before = await app.StoredSourceAsync(id);

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task A_source_made_from_a_connection_string_passes()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var url = $"postgresql://{db.Role}:{Uri.EscapeDataString(db.Password)}@{db.Host}:{db.Port}/{db.Database}?sslmode=prefer";
        var id = await org.Http.CreateSourceAsync(new JsonObject { ["type"] = "postgres", ["connection_string"] = url }.ToJsonString());

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
    }

    [Fact]
    public async Task A_password_with_connection_string_syntax_is_sent_as_a_password()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        // If the password were pasted into a connection string unquoted, it would change the database.
        await using var db = await ScratchDatabase.CreateAsync(password: "pw;Database=postgres;x='\"=" + Unique.Secret("q-"));
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", db.Body()).Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
    }

    [Fact]
    public async Task With_sslmode_disable_the_tls_step_is_skipped_with_a_reason()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var url = $"postgresql://{db.Role}:{Uri.EscapeDataString(db.Password)}@{db.Host}:{db.Port}/{db.Database}?sslmode=disable";

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject { ["type"] = "postgres", ["connection_string"] = url }.ToJsonString())
            .Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
        Assert.Equal("skipped", Reports.Status(report, "tls"));
        Assert.False(string.IsNullOrEmpty(Reports.Step(report, "tls")["message"]?.GetValue<string>()));
    }

    [Fact]
    public async Task Sslmode_require_against_a_server_without_tls_fails_at_tls_with_tls_failed()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        Assert.SkipWhen(await ServerHasTlsAsync(), "The test server has TLS on; this test needs one without.");
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var url = $"postgresql://{db.Role}:{Uri.EscapeDataString(db.Password)}@{db.Host}:{db.Port}/{db.Database}?sslmode=require";

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject { ["type"] = "postgres", ["connection_string"] = url }.ToJsonString())
            .Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "tls", FailureCodes.TlsFailed);
        Assert.Equal("ok", Reports.Status(report, "connect"));
    }

    [Fact]
    public async Task The_report_has_exactly_the_contract_keys_and_the_steps_in_order()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();

        using var response = await org.Http.PostJsonAsync("/api/v1/sources/test/", db.Body());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Wire.JsonContentType, response.Content.Headers.ContentType?.ToString());
        var report = await response.JsonAsync();
        Reports.AssertShape(report);
        Assert.Equal(Reports.Steps, Reports.Names(report));
        Assert.True(report["duration_ms"]!.GetValue<long>() >= report["steps"]!.AsArray().Max(s => s!["duration_ms"]!.GetValue<long>()));
    }

    // ---- failures ----

    [Fact]
    public async Task A_wrong_password_fails_at_authenticate_with_auth_failed()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body(b => b["password"] = Unique.Secret("wrong-")));

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", FailureCodes.AuthFailed);
        AssertReachedServer(report);
    }

    [Fact]
    public async Task An_unknown_user_fails_at_authenticate_with_auth_failed()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", db.Body(b => b["username"] = Unique.Name("nobody_")))
            .Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", FailureCodes.AuthFailed);
    }

    [Fact]
    public async Task A_missing_database_fails_at_authenticate_with_database_not_found()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", db.Body(b => b["database_name"] = Unique.Name("missing_")))
            .Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", FailureCodes.DatabaseNotFound);
        AssertReachedServer(report);
    }

    [Fact]
    public async Task A_database_the_user_may_not_connect_to_fails_with_insufficient_privilege()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await Pg.ExecuteAsync($"REVOKE CONNECT ON DATABASE {db.Database} FROM PUBLIC");
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", db.Body()).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", FailureCodes.InsufficientPrivilege);
    }

    [Fact]
    public async Task A_closed_port_fails_at_connect_with_port_closed()
    {
        var org = await app.NewOrganizationAsync();
        var port = Loopback.ClosedPort();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("127.0.0.1", port)).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "connect", FailureCodes.PortClosed);
        Assert.Equal("ok", Reports.Status(report, "resolve"));
        Assert.Equal("ok", Reports.Status(report, "egress"));
        Assert.Equal(Reports.Steps, Reports.Names(report));
    }

    [Fact]
    public async Task A_host_name_that_does_not_resolve_fails_at_resolve()
    {
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("caravan-no-such-host.invalid", 5432))
            .Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "resolve", FailureCodes.HostUnresolvable);
    }

    [Fact]
    public async Task A_server_that_accepts_and_never_answers_times_out_within_the_deadline()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "3" });
        var org = await own.NewOrganizationAsync();
        using var silent = LoopbackListener.Silent();

        var clock = Stopwatch.StartNew();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("127.0.0.1", silent.Port)).Expect(HttpStatusCode.OK);
        clock.Stop();

        Reports.AssertFailedAt(report, "authenticate", FailureCodes.Timeout);
        Assert.Equal("ok", Reports.Status(report, "connect"));
        Assert.NotEmpty(silent.Arrivals);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3 + 2), $"took {clock.Elapsed}");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2), $"gave up early, after {clock.Elapsed}");
    }

    [Fact]
    public async Task Discovery_of_a_silent_server_is_a_502_timeout_within_the_deadline()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "3" });
        var org = await own.NewOrganizationAsync();
        using var silent = LoopbackListener.Silent();
        var id = await org.Http.CreateSourceAsync(Pg.Body("127.0.0.1", silent.Port));

        var clock = Stopwatch.StartNew();
        var body = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        clock.Stop();

        AssertFailureBody(body, FailureCodes.Timeout);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3 + 2), $"took {clock.Elapsed}");
    }

    // ---- an unsaved test validates like a create ----

    [Theory]
    [InlineData("""{"type": "postgres", "hostname": "127.0.0.1", "username": "u", "database_name": "d"}""", "password")]
    [InlineData("""{"type": "postgres", "hostname": "https://db.example.com", "username": "u", "password": "p", "database_name": "d"}""", "hostname")]
    [InlineData("""{"type": "postgres", "hostname": "db.example.com", "port": 70000, "username": "u", "password": "p", "database_name": "d"}""", "port")]
    [InlineData("""{"type": "postgres", "connection_string": "mysql://u:p@db/x"}""", "connection_string")]
    [InlineData("""{"type": "cassandra", "hostname": "db.example.com"}""", "type")]
    public async Task An_invalid_unsaved_body_is_400_in_the_contract_shape_and_stores_nothing(string body, string field)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", "/api/v1/sources/test/", body);

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        var json = answer.Json.AsObject();
        Assert.Equal(["error", "errors"], json.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.False(string.IsNullOrEmpty(json["error"]!.GetValue<string>()));
        Assert.NotEmpty(json["errors"]![field]!.AsArray());
        Assert.Equal(0, await org.CountAsync());
    }

    [Fact]
    public async Task An_unsaved_test_with_malformed_json_is_400_and_stores_nothing()
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", "/api/v1/sources/test/", """{"type": "postgres", """);

        answer.AssertStatus(HttpStatusCode.BadRequest);
        Assert.Equal(["error", "errors"], answer.Json.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(0, await org.CountAsync());
    }

    // ---- discovery ----

    [Fact]
    public async Task Discovery_lists_the_schemas_of_the_database_without_system_ones_and_marks_the_selected()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 3);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body(b => b["selected_schemas"] = new JsonArray(db.Schemas[1], "public")));

        var body = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.Equal(["kind", "results"], body.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal("schemas", body["kind"]!.GetValue<string>());
        var results = body["results"]!.AsArray().Select(r => r!.AsObject()).ToList();
        Assert.All(results, r => Assert.Equal(["name", "selected"], r.Select(p => p.Key).Order(StringComparer.Ordinal)));
        var listed = results.ToDictionary(r => r["name"]!.GetValue<string>(), r => r["selected"]!.GetValue<bool>());
        Assert.Equal([.. db.Schemas.Append("public").Order(StringComparer.Ordinal)], listed.Keys.Order(StringComparer.Ordinal));
        Assert.True(listed["public"]);
        Assert.True(listed[db.Schemas[1]]);
        Assert.False(listed[db.Schemas[0]]);
        Assert.False(listed[db.Schemas[2]]);
        Assert.DoesNotContain("pg_catalog", listed.Keys);
        Assert.DoesNotContain("information_schema", listed.Keys);
        Assert.DoesNotContain("pg_toast", listed.Keys);
    }

    [Fact]
    public async Task Discovery_without_a_stored_selection_marks_nothing_selected()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 1);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var body = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.All(body["results"]!.AsArray(), r => Assert.False(r!["selected"]!.GetValue<bool>()));
        Assert.Contains(body["results"]!.AsArray(), r => r!["name"]!.GetValue<string>() == db.Schemas[0]);
    }

    [Fact]
    public async Task Discovery_of_an_unreachable_source_is_502_with_detail_and_code()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Pg.Body("127.0.0.1", Loopback.ClosedPort()));

        var body = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        AssertFailureBody(body, FailureCodes.PortClosed);
    }

    [Fact]
    public async Task Discovery_with_a_wrong_password_is_502_auth_failed()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body(b => b["password"] = Unique.Secret("wrong-")));

        var body = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        AssertFailureBody(body, FailureCodes.AuthFailed);
    }

    [Fact]
    public async Task Discovery_and_tests_of_another_organizations_source_are_404()
    {
        var owner = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Pg.Body("127.0.0.1", Loopback.ClosedPort()));

        var schemas = await other.Http.GetRawAsync(SourceRoutes.Url(id, "schemas"));
        var test = await other.Http.SendAsync("POST", SourceRoutes.Url(id, "test"));

        schemas.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        test.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
    }

    // ---- update-config ?verify=true ----

    [Fact]
    public async Task Verify_refuses_a_schema_that_does_not_exist_naming_it_and_writes_nothing()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 1);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var before = await app.StoredSourceAsync(id);
        var missing = Unique.Name("nope_");

        var body = await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true",
            new JsonObject { ["selected_schemas"] = new JsonArray(db.Schemas[0], missing) }.ToJsonString()).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["error", "errors"], body.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(["selected_schemas"], body["errors"]!.AsObject().Select(p => p.Key));
        var message = Assert.Single(body["errors"]!["selected_schemas"]!.AsArray())!.GetValue<string>();
        Assert.Contains(missing, message, StringComparison.Ordinal);
        Assert.DoesNotContain(db.Schemas[0], message, StringComparison.Ordinal);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Verify_accepts_schemas_that_exist_and_stores_them()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 2);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true",
            new JsonObject { ["selected_schemas"] = new JsonArray(db.Schemas[1], "public") }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal(new JsonArray(db.Schemas[1], "public").ToJsonString(), (await app.StoredSourceAsync(id)).Settings["selected_schemas"]!.ToJsonString());
    }

    [Fact]
    public async Task Verify_checks_against_the_configuration_after_the_change()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var first = await ScratchDatabase.CreateAsync(schemaCount: 1);
        await using var second = await ScratchDatabase.CreateAsync(schemaCount: 1);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(first.Body());
        var before = await app.StoredSourceAsync(id);

        // A schema of the second database, checked against the first (the change does not move it): refused.
        await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true",
            new JsonObject { ["selected_schemas"] = new JsonArray(second.Schemas[0]) }.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        Assert.Equal(before, await app.StoredSourceAsync(id));

        // The same schema with a move to the second database: accepted.
        await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true", new JsonObject
        {
            ["username"] = second.Role,
            ["password"] = second.Password,
            ["database_name"] = second.Database,
            ["selected_schemas"] = new JsonArray(second.Schemas[0]),
        }.ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal(second.Database, (await app.StoredSourceAsync(id)).Settings["database_name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Without_verify_the_selection_is_not_checked()
    {
        var org = await app.NewOrganizationAsync();
        using var listener = LoopbackListener.HangingUp();
        var id = await org.Http.CreateSourceAsync(Pg.Body("127.0.0.1", listener.Port));

        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"selected_schemas": ["no_such_schema"]}""").Expect(HttpStatusCode.OK);

        Assert.Equal("""["no_such_schema"]""", (await app.StoredSourceAsync(id)).Settings["selected_schemas"]!.ToJsonString());
        Assert.Empty(listener.Arrivals);
    }

    [Fact]
    public async Task Verify_of_an_unreachable_source_is_502_and_writes_nothing()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Pg.Body("127.0.0.1", Loopback.ClosedPort()));
        var before = await app.StoredSourceAsync(id);

        var body = await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true", """{"selected_schemas": ["public"]}""")
            .Expect(HttpStatusCode.BadGateway);

        AssertFailureBody(body, FailureCodes.PortClosed);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Verify_without_a_selection_in_the_body_does_not_connect()
    {
        var org = await app.NewOrganizationAsync();
        using var listener = LoopbackListener.HangingUp();
        var id = await org.Http.CreateSourceAsync(Pg.Body("127.0.0.1", listener.Port));

        await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true", """{"account_name": "Renamed"}""").Expect(HttpStatusCode.OK);

        Assert.Equal("Renamed", (await app.StoredSourceAsync(id)).AccountName);
        Assert.Empty(listener.Arrivals);
    }

    // ---- the session ----

    [Fact]
    public async Task The_driver_session_is_read_only_and_named_caravan()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 1);
        await Pg.ExecuteAsync($"GRANT CREATE ON SCHEMA {db.Schemas[0]} TO {db.Role}", db.Database);
        var settings = new JsonObject { ["hostname"] = db.Host, ["port"] = db.Port, ["username"] = db.Role, ["database_name"] = db.Database };
        var connection = new SourceConnection(SourceTypes.Find("POSTGRES")!, settings, new Dictionary<string, string> { ["password"] = db.Password });

        await using var dataSource = PostgresDriver.DataSource(connection, DatabaseEndpoint.Direct(db.Host, IPAddress.Parse(db.Host), connection.Port), TimeSpan.FromSeconds(10));
        await using var session = await PostgresDriver.OpenAsync(dataSource, CancellationToken.None);

        await using (var show = new NpgsqlCommand("SELECT current_setting('default_transaction_read_only'), current_setting('application_name')", session))
        await using (var reader = await show.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal("on", reader.GetString(0));
            Assert.Equal("caravan", reader.GetString(1));
        }

        await using var write = new NpgsqlCommand($"CREATE TABLE {db.Schemas[0]}.t (x int)", session);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => write.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.ReadOnlySqlTransaction, refused.SqlState);
    }

    private static async Task<bool> ServerHasTlsAsync() => (string?)await Pg.ScalarAsync("SHOW ssl") == "on";

    private static void AssertReachedServer(JsonNode report)
    {
        Assert.Equal("ok", Reports.Status(report, "resolve"));
        Assert.Equal("ok", Reports.Status(report, "egress"));
        Assert.Equal("ok", Reports.Status(report, "connect"));
    }

    internal static void AssertFailureBody(JsonNode body, string code)
    {
        var json = body.AsObject();
        Assert.Equal(["code", "detail"], json.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(code, json["code"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(json["detail"]!.GetValue<string>()));
    }
}
