using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// The query route against a real PostgreSQL (<c>CARAVAN_TEST_POSTGRES</c>): types, read-only
/// enforcement, limits, formats, row-level security and pools that follow the configuration.
/// Each test makes its own role and database; the role may write, so it is the read-only
/// transaction, not a missing privilege, that refuses writes.
/// </summary>
public sealed class PostgresQueryTests(CaravanApp app)
{
    [Fact]
    public async Task Common_types_round_trip_with_their_database_type_names()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.AdminAsync($$"""
            CREATE TABLE t (i integer, b bigint, n numeric(12,3), s text, f boolean, at timestamptz, j json, jb jsonb, d date, x text);
            INSERT INTO t VALUES (42, 9007199254740993, 1234.567, 'naïve "quoted", text', true, '2026-11-27 04:07:55.25+00', '{"a": [1, 2]}', '{"k": "v"}', '2026-01-02', NULL);
            GRANT SELECT ON t TO {{db.Role}};
            """);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var answer = await org.Http.QueryAsync(id, "SELECT * FROM t", HttpStatusCode.OK);

        Assert.Equal(["columns", "rows", "row_count", "truncated", "duration_ms"], answer.AsObject().Select(p => p.Key));
        Assert.Equal(
            ["integer", "bigint", "numeric(12, 3)", "text", "boolean", "timestamp with time zone", "json", "jsonb", "date", "text"],
            answer["columns"]!.AsArray().Select(c => c!["type"]!.GetValue<string>()));
        Assert.Equal(["i", "b", "n", "s", "f", "at", "j", "jb", "d", "x"], answer["columns"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
        var row = QueryKit.Rows(answer).Single()!.AsArray();
        Assert.Equal(42, row[0]!.GetValue<long>());
        Assert.Equal(9007199254740993, row[1]!.GetValue<long>());
        Assert.Equal(1234.567m, row[2]!.GetValue<decimal>());
        Assert.Equal("naïve \"quoted\", text", row[3]!.GetValue<string>());
        Assert.True(row[4]!.GetValue<bool>());
        Assert.Equal("2026-11-27T04:07:55.25Z", row[5]!.GetValue<string>());
        Assert.Equal("""{"a":[1,2]}""", row[6]!.ToJsonString());
        Assert.Equal("v", row[7]!["k"]!.GetValue<string>());
        Assert.Equal("2026-01-02", row[8]!.GetValue<string>());
        Assert.Null(row[9]);
        Assert.Equal(1, answer["row_count"]!.GetValue<long>());
        Assert.False(answer["truncated"]!.GetValue<bool>());
        Assert.True(answer["duration_ms"]!.GetValue<long>() >= 0);
    }

    [Theory]
    [InlineData("INSERT INTO items VALUES (99, 'new')")]
    [InlineData("UPDATE items SET name = 'changed'")]
    [InlineData("DELETE FROM items")]
    [InlineData("CREATE TABLE other (x int)")]
    [InlineData("DROP TABLE items")]
    [InlineData("TRUNCATE items")]
    [InlineData("ALTER TABLE items ADD COLUMN y int")]
    [InlineData("SELECT sneaky_insert()")]
    [InlineData("WITH gone AS (DELETE FROM items RETURNING *) SELECT * FROM gone")]
    [InlineData("SELECT * FROM items FOR UPDATE")]
    [InlineData("COPY items FROM STDIN")]
    public async Task Writes_are_refused_on_sql_and_change_nothing(string sql)
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.AdminAsync($"""
            CREATE TABLE items (id int, name text);
            INSERT INTO items VALUES (1, 'one'), (2, 'two');
            GRANT ALL ON items TO {db.Role};
            GRANT ALL ON SCHEMA public TO {db.Role};
            CREATE FUNCTION sneaky_insert() RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO items VALUES (3, ''three'') RETURNING id';
            """);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var answer = await org.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest);

        Assert.Equal(["error", "errors"], answer.AsObject().Select(p => p.Key));
        Assert.Equal(["sql"], answer["errors"]!.AsObject().Select(p => p.Key));
        Assert.Equal(2, await db.CountAsync("items"));
        var names = await org.Http.QueryAsync(id, "SELECT string_agg(name, ',' ORDER BY id) AS names FROM items", HttpStatusCode.OK);
        Assert.Equal("one,two", QueryKit.Rows(names)[0]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task Session_settings_a_statement_changes_do_not_outlive_it()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.AdminAsync($"""
            CREATE TABLE items (id int); GRANT ALL ON items TO {db.Role};
            CREATE FUNCTION unsettle() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM set_config('search_path', 'nowhere', false);
                PERFORM set_config('statement_timeout', '0', false);
                PERFORM set_config('default_transaction_read_only', 'off', false);
                RETURN 1;
            END $$;
            CREATE FUNCTION add_item() RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO items VALUES (1) RETURNING id';
            """);
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxConcurrentPerSource"] = "1" });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        // One pooled session: each of these runs on it, one after the other. Caravan's statement
        // check refuses session and transaction control before it reaches the session.
        var refused = new[]
        {
            await org.Http.QueryAsync(id, "SET SESSION default_transaction_read_only = off", HttpStatusCode.BadRequest),
            await org.Http.QueryAsync(id, "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", HttpStatusCode.BadRequest),
            await org.Http.QueryAsync(id, "SELECT set_config('search_path', 'nowhere', false)", HttpStatusCode.BadRequest),
            await org.Http.QueryAsync(id, "SET statement_timeout = 0", HttpStatusCode.BadRequest),
            await org.Http.QueryAsync(id, "COMMIT", HttpStatusCode.BadRequest),
        };
        // What a function of the database's own sets for the session goes with the statement's rollback.
        await org.Http.QueryAsync(id, "SELECT unsettle()", HttpStatusCode.OK);
        var path = await org.Http.QueryAsync(id, "SHOW search_path", HttpStatusCode.OK);
        var defaultLimit = await org.Http.QueryAsync(id, "SHOW statement_timeout", HttpStatusCode.OK);
        var ownLimit = await org.Http.QueryAsync(id, "SHOW statement_timeout", HttpStatusCode.OK, timeoutMs: 1500);
        var defaultAgain = await org.Http.QueryAsync(id, "SHOW statement_timeout", HttpStatusCode.OK);
        // A write the check cannot see: the database still refuses it, the session is still read-only.
        var write = await org.Http.QueryAsync(id, "SELECT add_item()", HttpStatusCode.BadRequest);

        Assert.Contains("read-only transaction", write["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.All(refused, answer => Assert.Equal(["sql"], answer["errors"]!.AsObject().Select(p => p.Key)));
        Assert.Equal("\"$user\", public", QueryKit.Rows(path)[0]![0]!.GetValue<string>());
        // The time limit of each query, whatever an earlier one set: the default, or the request's own.
        Assert.Equal("30s", QueryKit.Rows(defaultLimit)[0]![0]!.GetValue<string>());
        Assert.Equal("1500ms", QueryKit.Rows(ownLimit)[0]![0]!.GetValue<string>());
        Assert.Equal("30s", QueryKit.Rows(defaultAgain)[0]![0]!.GetValue<string>());
        Assert.Equal(0, await db.CountAsync("items"));
    }

    [Theory]
    [InlineData("SELECT 1; SELECT 2")]
    [InlineData("SELECT 1; DELETE FROM items")]
    [InlineData("SELECT 1 /* ; */ ; SELECT 2")]
    [InlineData("SELECT $$;$$; SELECT 2")]
    [InlineData("SELECT E'\\';'; SELECT 2")]
    public async Task More_than_one_statement_is_refused(string sql)
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var answer = await org.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest);

        Assert.Contains("one statement", answer["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SELECT ';' AS x", ";")]
    [InlineData("SELECT $tag$a;b$tag$ AS x;", "a;b")]
    [InlineData("SELECT 'it''s; fine' AS x -- a comment; with a semicolon", "it's; fine")]
    [InlineData("/* lead ; */ SELECT \"semi;colon\".x FROM (SELECT 'q' AS x) AS \"semi;colon\"; ", "q")]
    public async Task Semicolons_inside_quotes_and_comments_are_one_statement(string sql, string expected)
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var answer = await org.Http.QueryAsync(id, sql, HttpStatusCode.OK);

        Assert.Equal(expected, QueryKit.Rows(answer)[0]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task A_statement_over_its_time_limit_is_cancelled_in_the_database()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var clock = Stopwatch.StartNew();

        var answer = await org.Http.QueryAsync(id, "SELECT pg_sleep(10)", HttpStatusCode.GatewayTimeout, timeoutMs: 500);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Equal("timeout", answer["code"]!.GetValue<string>());
        Assert.Equal(["detail", "code"], answer.AsObject().Select(p => p.Key));
        var running = await Pg.ScalarAsync(
            $"SELECT count(*) FROM pg_stat_activity WHERE usename = '{db.Role}' AND state = 'active' AND query LIKE '%pg_sleep%'");
        Assert.Equal(0L, running);
    }

    [Fact]
    public async Task Max_rows_truncates_and_says_so()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var cut = await org.Http.QueryAsync(id, "SELECT g FROM generate_series(1, 1000000) g", HttpStatusCode.OK, maxRows: 10);
        var exact = await org.Http.QueryAsync(id, "SELECT g FROM generate_series(1, 10) g", HttpStatusCode.OK, maxRows: 10);
        var defaults = await org.Http.QueryAsync(id, "SELECT g FROM generate_series(1, 5000) g", HttpStatusCode.OK);

        Assert.Equal(Enumerable.Range(1, 10), QueryKit.Rows(cut).Select(r => r![0]!.GetValue<int>()));
        Assert.True(cut["truncated"]!.GetValue<bool>());
        Assert.Equal(10, cut["row_count"]!.GetValue<long>());
        Assert.False(exact["truncated"]!.GetValue<bool>());
        Assert.Equal(10, exact["row_count"]!.GetValue<long>());
        Assert.Equal(1000, defaults["row_count"]!.GetValue<long>());
        Assert.True(defaults["truncated"]!.GetValue<bool>());
        // The session that was cut short is usable by the next query.
        var after = await org.Http.QueryAsync(id, "SELECT 7 AS seven", HttpStatusCode.OK);
        Assert.Equal(7, QueryKit.Rows(after)[0]![0]!.GetValue<int>());
    }

    [Fact]
    public async Task A_million_row_statement_stops_at_the_default_ceiling_of_100000_rows()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var answer = await org.Http.QueryAsync(id, "SELECT g FROM generate_series(1, 1000000) g", HttpStatusCode.OK, maxRows: 1_000_000);

        var rows = QueryKit.Rows(answer);
        Assert.Equal(100_000, rows.Count);
        Assert.Equal(100_000, answer["row_count"]!.GetValue<long>());
        Assert.True(answer["truncated"]!.GetValue<bool>());
        Assert.Equal(1, rows[0]![0]!.GetValue<int>());
        Assert.Equal(100_000, rows[^1]![0]!.GetValue<int>());
    }

    [Fact]
    public async Task Csv_and_ndjson_stream_and_parse()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        const string sql = "SELECT g AS n, 'a,\"b\"' || g AS s, NULL::text AS z FROM generate_series(1, 3) g";

        using var csv = await org.Http.QueryAsync(id, QueryKit.Body(sql, maxRows: 2), "text/csv");
        using var ndjson = await org.Http.QueryAsync(id, QueryKit.Body(sql, maxRows: 2), "application/x-ndjson");

        Assert.Equal(HttpStatusCode.OK, csv.StatusCode);
        Assert.Equal("text/csv", csv.Content.Headers.ContentType!.MediaType);
        Assert.Equal("n,s,z\r\n1,\"a,\"\"b\"\"1\",\r\n2,\"a,\"\"b\"\"2\",\r\n", await csv.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, ndjson.StatusCode);
        Assert.Equal("application/x-ndjson", ndjson.Content.Headers.ContentType!.MediaType);
        var lines = (await ndjson.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(4, lines.Count);
        Assert.Equal(["n", "s", "z"], lines[0]["columns"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
        Assert.Equal(1, lines[1][0]!.GetValue<int>());
        Assert.Equal("a,\"b\"1", lines[1][1]!.GetValue<string>());
        Assert.Null(lines[1][2]);
        Assert.Equal(2, lines[3]["row_count"]!.GetValue<long>());
        Assert.True(lines[3]["truncated"]!.GetValue<bool>());
    }

    [Fact]
    public async Task An_error_after_rows_were_sent_is_told_in_the_stream()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        // Rows flow for a while, then the time limit cuts the statement.
        const string sql = "SELECT g, CASE WHEN g > 2 THEN pg_sleep(5) END FROM generate_series(1, 5) g";

        var json = await org.Http.QueryAsync(id, QueryKit.Body(sql, timeoutMs: 1000)).Expect(HttpStatusCode.OK);
        using var ndjson = await org.Http.QueryAsync(id, QueryKit.Body(sql, timeoutMs: 1000), "application/x-ndjson");
        using var csv = await org.Http.QueryAsync(id, QueryKit.Body(sql, timeoutMs: 1000), "text/csv");

        Assert.Equal("timeout", json["error"]!["code"]!.GetValue<string>());
        Assert.Equal(504, json["error"]!["status"]!.GetValue<int>());
        Assert.Null(json["row_count"]);
        var last = JsonNode.Parse((await ndjson.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.Equal("timeout", last["error"]!["code"]!.GetValue<string>());
        await Assert.ThrowsAnyAsync<Exception>(() => csv.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Row_level_security_sees_the_rows_of_the_given_uid_only()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.NotesOfAliceAndBobAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var alice = await org.Http.QueryAsync(id, "SELECT body FROM notes ORDER BY body", HttpStatusCode.OK, uid: "alice");
        var bob = await org.Http.QueryAsync(id, "SELECT body FROM notes ORDER BY body", HttpStatusCode.OK, uid: "bob");
        var injected = await org.Http.QueryAsync(id, "SELECT body FROM notes ORDER BY body", HttpStatusCode.OK, uid: "x' OR '1'='1");
        var nobody = await org.Http.QueryAsync(id, "SELECT body FROM notes ORDER BY body", HttpStatusCode.OK);

        Assert.Equal(["a1", "a2"], QueryKit.Rows(alice).Select(r => r![0]!.GetValue<string>()));
        Assert.Equal(["b1"], QueryKit.Rows(bob).Select(r => r![0]!.GetValue<string>()));
        Assert.Empty(QueryKit.Rows(injected));
        Assert.Empty(QueryKit.Rows(nobody));
        // The setting is local to the statement's transaction: a pooled session does not keep it.
        var after = await org.Http.QueryAsync(id, "SELECT current_setting('caravan.uid', true) AS uid", HttpStatusCode.OK);
        Assert.True(QueryKit.Rows(after)[0]![0] is null || QueryKit.Rows(after)[0]![0]!.GetValue<string>() == string.Empty);
    }

    [Fact]
    public async Task A_password_changed_with_update_config_is_used_by_the_very_next_query()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var stale = await org.Http.CreateSourceAsync(db.Body());
        var first = await org.Http.QueryAsync(id, "SELECT pg_backend_pid() AS pid", HttpStatusCode.OK);
        var oldPid = QueryKit.Rows(first)[0]![0]!.GetValue<int>();
        await org.Http.QueryAsync(stale, "SELECT 1", HttpStatusCode.OK);

        var newPassword = Unique.Secret("rotated-");
        await Pg.ExecuteAsync($"ALTER ROLE {db.Role} PASSWORD '{newPassword}'");
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", new JsonObject { ["password"] = newPassword }.ToJsonString())
            .Expect(HttpStatusCode.OK);
        var next = await org.Http.QueryAsync(id, "SELECT pg_backend_pid() AS pid", HttpStatusCode.OK);

        Assert.NotEqual(oldPid, QueryKit.Rows(next)[0]![0]!.GetValue<int>());
        var oldSessionGone = false;
        for (var attempt = 0; attempt < 50 && !oldSessionGone; attempt++)
        {
            oldSessionGone = (long)(await Pg.ScalarAsync($"SELECT count(*) FROM pg_stat_activity WHERE pid = {oldPid}"))! == 0;
            await Task.Delay(100);
        }

        Assert.True(oldSessionGone, "the old pool's session is still open");

        // A new session with the old password fails: the stale source, once its pool is retired
        // (by any write to it), can no longer log in.
        await org.Http.PatchJsonAsync($"/api/v1/sources/{stale}/", """{"account_name": "stale"}""").Expect(HttpStatusCode.OK);
        var refused = await org.Http.QueryAsync(stale, "SELECT 1", HttpStatusCode.BadGateway);
        Assert.Equal("auth_failed", refused["code"]!.GetValue<string>());
        app.AssertNoSecrets([refused.ToJsonString()], newPassword, db.Password);
    }

    [Fact]
    public async Task Database_errors_are_422_with_a_code()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.AdminAsync("CREATE TABLE secret_table (x int)");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var syntax = await org.Http.QueryAsync(id, "SELECT 1 FROM", HttpStatusCode.UnprocessableEntity);
        // A first word that is no read never reaches the database: the statement check says what it expects.
        var typo = await org.Http.QueryAsync(id, "SELEC 1", HttpStatusCode.BadRequest);
        var missing = await org.Http.QueryAsync(id, "SELECT * FROM no_such_table", HttpStatusCode.UnprocessableEntity);
        var denied = await org.Http.QueryAsync(id, "SELECT * FROM secret_table", HttpStatusCode.UnprocessableEntity);

        Assert.Equal("syntax_error", syntax["code"]!.GetValue<string>());
        Assert.Contains("it starts with SELEC", typo["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("undefined_object", missing["code"]!.GetValue<string>());
        Assert.Contains("no_such_table", missing["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("insufficient_privilege", denied["code"]!.GetValue<string>());
        app.AssertNoSecrets([syntax.ToJsonString(), missing.ToJsonString(), denied.ToJsonString()], db.Password);
    }

    [Fact]
    public async Task An_unreachable_database_is_502_and_a_wrong_password_is_never_shown()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var closed = await org.Http.CreateSourceAsync(db.Body(b => b["port"] = Loopback.ClosedPort()));
        var wrong = Unique.Secret("wrong-");
        var badLogin = await org.Http.CreateSourceAsync(db.Body(b => b["password"] = wrong));

        var refused = await org.Http.QueryAsync(closed, "SELECT 1", HttpStatusCode.BadGateway);
        var denied = await org.Http.QueryAsync(badLogin, "SELECT 1", HttpStatusCode.BadGateway);

        Assert.Equal("port_closed", refused["code"]!.GetValue<string>());
        Assert.Equal("auth_failed", denied["code"]!.GetValue<string>());
        app.AssertNoSecrets([refused.ToJsonString(), denied.ToJsonString()], wrong, db.Password);
    }

    [Fact]
    public async Task Every_query_is_audited_without_its_text_or_uid()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var marker = Unique.Secret("literal-");
        var uid = Unique.Secret("uid-");

        await org.Http.QueryAsync(id, $"SELECT '{marker}' AS m", HttpStatusCode.OK, uid: uid);
        await org.Http.QueryAsync(id, $"SELECT * FROM \"{marker}\"", HttpStatusCode.UnprocessableEntity);

        var audit = app.Logs.Lines.Where(l => l.Contains("Caravan.Audit", StringComparison.Ordinal) && l.Contains($"source {id} ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, audit.Count);
        Assert.Contains(audit, l => l.Contains("succeeded", StringComparison.Ordinal) && l.Contains("1 rows", StringComparison.Ordinal)
            && l.Contains(org.KeyId, StringComparison.Ordinal) && l.Contains("uid given True", StringComparison.Ordinal));
        Assert.Contains(audit, l => l.Contains("database", StringComparison.Ordinal) && l.Contains("status 422", StringComparison.Ordinal));
        Assert.DoesNotContain(app.Logs.Lines, l => l.Contains(marker, StringComparison.Ordinal) || l.Contains(uid, StringComparison.Ordinal));
        app.AssertNoSecrets([], db.Password);
    }

    [Fact]
    public async Task Another_organizations_source_is_not_found()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var owner = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(db.Body());

        using var response = await other.Http.QueryAsync(id, QueryKit.Body("SELECT 1"));
        using var missing = await owner.Http.QueryAsync(long.MaxValue, QueryKit.Body("SELECT 1"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("""{"detail":"Not found."}""", await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("""{"detail":"Not found."}""", await missing.Content.ReadAsStringAsync());
        var junk = await owner.Http.PostJsonAsync("/api/v1/sources/abc/query/", QueryKit.Body("SELECT 1")).Expect(HttpStatusCode.NotFound);
        Assert.Equal("""{"detail":"Not found."}""", junk.ToJsonString());
    }
}
