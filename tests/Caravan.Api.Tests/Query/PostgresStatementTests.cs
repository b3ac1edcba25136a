using System.Globalization;
using System.Net;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using Npgsql;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// The statement check and the session reset against a real PostgreSQL (<c>CARAVAN_TEST_POSTGRES</c>):
/// a statement cannot change the uid row-level security reads, statements that disrupt other
/// sessions or the server are refused and leave nothing behind, and a pooled session goes back to
/// the pool without the state a database's own function left in it. What is left is looked at
/// from a fresh connection of the test's own, and from the next query on the same pooled session.
/// </summary>
public sealed class PostgresStatementTests(CaravanApp app)
{
    private const string DblinkName = "caravan_dblink_probe";

    [Fact]
    public async Task A_statement_cannot_change_the_uid_however_it_spells_it()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.NotesOfAliceAndBobAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        const string To = "('caravan.uid', 'bob', true)";
        string[] statements =
        [
            $"SELECT set_config{To} AS x, body FROM notes",
            $"SELECT SET_CONFIG{To} AS x, body FROM notes",
            $"SELECT pg_catalog.set_config{To} AS x, body FROM notes",
            $"SELECT \"set_config\"{To} AS x, body FROM notes",
            $"SELECT \"pg_catalog\".\"set_config\"{To} AS x, body FROM notes",
            $"SELECT pg_catalog . /* between */ set_config -- a comment\n {To} AS x, body FROM notes",
            $"SELECT U&\"\\0073et_config\"{To} AS x, body FROM notes",
            $"SELECT U&\"\\+000073et_config\"{To} AS x, body FROM notes",
            $"SELECT U&\"!0073et_config\" UESCAPE '!' {To} AS x, body FROM notes",
            $"WITH s AS (SELECT set_config{To}) SELECT body FROM s, notes",
            $"SELECT body FROM notes WHERE (SELECT set_config{To}) IS NOT NULL",
            $"SELECT body FROM notes WHERE set_config{To} IS NOT NULL",
            $"SELECT body FROM notes, LATERAL set_config{To} AS s",
            $"SELECT body FROM set_config{To} AS s, notes",
            "SET caravan.uid = 'bob'",
            "SET LOCAL caravan.uid TO 'bob'",
            "set session caravan.uid = 'bob'",
            "RESET caravan.uid",
            "RESET ALL",
            "/* comment first */ SET caravan.uid = 'bob'",
            "WITH s AS (UPDATE pg_settings SET setting = 'bob' WHERE name = 'caravan.uid') SELECT body FROM notes",
            $"SELECT query_to_xml('SELECT set_config{To.Replace("'", "''", StringComparison.Ordinal)}', true, false, '') AS x, body FROM notes",
        ];

        var failures = new List<string>();
        foreach (var sql in statements)
        {
            using var response = await org.Http.QueryAsync(id, QueryKit.Body(sql, uid: "alice"));
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            if (response.StatusCode != HttpStatusCode.BadRequest || !body.Contains("\"errors\":{\"sql\":[\"Queries are read-only", StringComparison.Ordinal))
            {
                failures.Add($"{sql} → {(int)response.StatusCode} {body}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        await using var client = await McpKit.ConnectAsync(app, org.Key);
        var (mcp, _) = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = statements[0], ["uid"] = "alice" })).Error();
        var alice = await org.Http.QueryAsync(id, "SELECT body FROM notes ORDER BY body", HttpStatusCode.OK, uid: "alice");

        Assert.Equal("write_refused", mcp);
        Assert.Equal(["a1", "a2"], QueryKit.Rows(alice).Select(r => r![0]!.GetValue<string>()));
    }

    [Fact]
    public async Task Disruptive_statements_are_refused_and_leave_nothing_behind()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        // The role owns the table (so CLUSTER, REINDEX and ANALYZE are its to run) and may use
        // dblink: what stops these statements is Caravan, not a missing privilege.
        await db.AdminAsync($"""
            CREATE EXTENSION dblink;
            CREATE TABLE items (id int PRIMARY KEY, name text) WITH (autovacuum_enabled = false);
            INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 10) g;
            ALTER TABLE items OWNER TO {db.Role};
            GRANT ALL ON SCHEMA public TO {db.Role};
            """);
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxConcurrentPerSource"] = "1" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var victim = await OpenAsRoleAsync(db);
        var pid = await ScalarAsync(victim, "SELECT pg_backend_pid()");
        var storage = await db.ScalarAsync("SELECT pg_relation_filenode('items')");
        var target = $"host={db.Host} port={db.Port} dbname={db.Database} user={db.Role} password={db.Password} application_name={DblinkName}";
        (string Sql, HttpStatusCode Status)[] statements =
        [
            ($"SELECT pg_terminate_backend({pid})", HttpStatusCode.BadRequest),
            ($"SELECT pg_cancel_backend({pid})", HttpStatusCode.BadRequest),
            ($"SELECT * FROM pg_catalog.pg_terminate_backend({pid})", HttpStatusCode.BadRequest),
            ("ANALYZE items", HttpStatusCode.BadRequest),
            ("analyse items", HttpStatusCode.BadRequest),
            ("CLUSTER items USING items_pkey", HttpStatusCode.BadRequest),
            ("REINDEX TABLE items", HttpStatusCode.BadRequest),
            ("VACUUM items", HttpStatusCode.BadRequest),
            ("LOCK TABLE items IN ACCESS EXCLUSIVE MODE", HttpStatusCode.BadRequest),
            ("COMMIT", HttpStatusCode.BadRequest),
            ("COMMIT AND CHAIN", HttpStatusCode.BadRequest),
            ("SET TRANSACTION READ WRITE", HttpStatusCode.BadRequest),
            ("SELECT txid_current()", HttpStatusCode.BadRequest),
            ("SELECT pg_current_xact_id()", HttpStatusCode.BadRequest),
            ($"SELECT dblink_exec('{target}', 'INSERT INTO items VALUES (100, ''written'')')", HttpStatusCode.BadRequest),
            ($"SELECT public.dblink_connect('leak', '{target}')", HttpStatusCode.BadRequest),
            ($"SELECT * FROM dblink('{target}', 'SELECT 1') AS t(x int)", HttpStatusCode.BadRequest),
            ("SELECT pg_advisory_lock(42)", HttpStatusCode.BadRequest),
            ("SELECT pg_try_advisory_lock(42)", HttpStatusCode.BadRequest),
            ("SELECT (42::bigint).pg_advisory_lock", HttpStatusCode.BadRequest),
            ("PREPARE leak AS SELECT 1", HttpStatusCode.BadRequest),
            ("DECLARE held CURSOR WITH HOLD FOR SELECT 1", HttpStatusCode.BadRequest),
            ("LISTEN channel", HttpStatusCode.BadRequest),
            ("DO $$ BEGIN PERFORM pg_advisory_lock(43); END $$", HttpStatusCode.BadRequest),
            ("EXPLAIN ANALYZE SELECT * FROM items", HttpStatusCode.BadRequest),
            ("EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM items", HttpStatusCode.BadRequest),
            ("SELECT * INTO copied FROM items", HttpStatusCode.BadRequest),
            ("SELECT lo_create(0)", HttpStatusCode.BadRequest),
            ("SELECT pg_reload_conf()", HttpStatusCode.BadRequest),
            ("DISCARD ALL", HttpStatusCode.BadRequest),
            ("SELECT count(*) FROM items", HttpStatusCode.OK),
            ("EXPLAIN SELECT * FROM items WHERE id = 1", HttpStatusCode.OK),
            ("TABLE items", HttpStatusCode.OK),
            ("(VALUES (1)) UNION (SELECT 2)", HttpStatusCode.OK),
            ("SHOW statement_timeout", HttpStatusCode.OK),
        ];

        var failures = new List<string>();
        foreach (var (sql, status) in statements)
        {
            using var response = await org.Http.QueryAsync(id, QueryKit.Body(sql));
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            if (response.StatusCode != status || status == HttpStatusCode.BadRequest && !body.Contains("\"errors\":{\"sql\":", StringComparison.Ordinal))
            {
                failures.Add($"{sql} → {(int)response.StatusCode} {body}");
            }

            foreach (var trace in await TracesAsync(db, org.Http, id, victim, storage))
            {
                failures.Add($"after {sql}: {trace}");
            }

            if (victim.FullState != System.Data.ConnectionState.Open)
            {
                await victim.DisposeAsync();
                victim = await OpenAsRoleAsync(db);
                pid = await ScalarAsync(victim, "SELECT pg_backend_pid()");
            }
        }

        await victim.DisposeAsync();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task A_pooled_session_goes_back_without_the_locks_and_prepared_statements_a_function_left()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        // The database's own function: the check cannot see into it, the session reset must undo it.
        await db.AdminAsync("""
            CREATE FUNCTION leak() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_lock(4242);
                IF NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'leaked') THEN
                    EXECUTE 'PREPARE leaked AS SELECT 1';
                END IF;
                RETURN 1;
            END $$;
            """);
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxConcurrentPerSource"] = "1" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        // The way that succeeds, a failing statement, a result cut at max_rows, a statement over its time limit.
        (string Sql, int? MaxRows, int? TimeoutMs, HttpStatusCode Status)[] runs =
        [
            ("SELECT leak() AS x", null, null, HttpStatusCode.OK),
            ("SELECT leak() AS x, 1 / 0 AS boom", null, null, HttpStatusCode.UnprocessableEntity),
            ("SELECT leak() AS x FROM generate_series(1, 100000)", 1, null, HttpStatusCode.OK),
            ("SELECT leak() AS x, pg_sleep(5) AS slow", null, 500, HttpStatusCode.GatewayTimeout),
        ];

        var failures = new List<string>();
        foreach (var (sql, maxRows, timeoutMs, status) in runs)
        {
            using var response = await org.Http.QueryAsync(id, QueryKit.Body(sql, maxRows, timeoutMs));
            if (response.StatusCode != status)
            {
                failures.Add($"{sql} → {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
            }

            foreach (var trace in await TracesAsync(db, org.Http, id, victim: null, storage: null))
            {
                failures.Add($"after {sql}: {trace}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// What a statement left behind: advisory locks held in the database, a dblink connection, a
    /// terminated session, changed statistics or storage, written rows (all seen from a fresh
    /// connection of the test's own), and prepared statements, cursors or listened channels on the
    /// pooled session (seen by the next query, which runs on the same session).
    /// </summary>
    private static async Task<List<string>> TracesAsync(ScratchDatabase db, HttpClient http, long id, NpgsqlConnection? victim, object? storage)
    {
        var traces = new List<string>();
        var locks = (long)(await db.ScalarAsync("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))!;
        if (locks > 0)
        {
            traces.Add($"{locks} advisory lock(s) held");
        }

        var session = await http.QueryAsync(id, """
            SELECT (SELECT count(*) FROM pg_prepared_statements) AS prepared, (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,
                   (SELECT count(*) FROM pg_listening_channels()) AS channels
            """, HttpStatusCode.OK);
        if (QueryKit.Rows(session)[0]!.ToJsonString() != "[0,0,0]")
        {
            traces.Add($"the pooled session kept (prepared statements, cursors, channels) {QueryKit.Rows(session)[0]!.ToJsonString()}");
        }

        if (victim is null)
        {
            return traces;
        }

        var links = (long)(await db.ScalarAsync($"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{DblinkName}'"))!;
        if (links > 0)
        {
            traces.Add($"{links} dblink connection(s) open");
        }

        try
        {
            await ScalarAsync(victim, "SELECT 1");
        }
        catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException)
        {
            traces.Add("the role's other session was terminated: " + exception.Message);
        }

        var analyzed = await db.ScalarAsync("SELECT coalesce(analyze_count, 0) + (CASE WHEN last_analyze IS NULL THEN 0 ELSE 1 END) FROM pg_stat_user_tables WHERE relname = 'items'");
        var reltuples = await db.ScalarAsync("SELECT reltuples FROM pg_class WHERE relname = 'items'");
        var filenode = await db.ScalarAsync("SELECT pg_relation_filenode('items')");
        if (Convert.ToInt64(analyzed, CultureInfo.InvariantCulture) != 0 || Convert.ToDouble(reltuples, CultureInfo.InvariantCulture) >= 0 || !Equals(filenode, storage))
        {
            traces.Add($"the table's statistics or storage changed (analyzed {analyzed}, reltuples {reltuples}, filenode {filenode} was {storage})");
        }

        if (await db.CountAsync("items") != 10)
        {
            traces.Add("items was written");
        }

        return traces;
    }

    private static async Task<NpgsqlConnection> OpenAsRoleAsync(ScratchDatabase db)
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = db.Host, Port = db.Port, Database = db.Database, Username = db.Role, Password = db.Password, Pooling = false,
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
