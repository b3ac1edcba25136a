using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using DuckDB.NET.Data;
using MySqlConnector;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// The query route on MariaDB (<c>CARAVAN_TEST_MYSQL</c>), ClickHouse (<c>CARAVAN_TEST_CLICKHOUSE</c>)
/// and local DuckDB files. Each test makes its own user and databases; the MariaDB user may write,
/// so it is the read-only session and transaction that refuse writes.
/// </summary>
public sealed class OtherEngineQueryTests(CaravanApp app)
{
    private static readonly string? MySqlAdmin = Environment.GetEnvironmentVariable("CARAVAN_TEST_MYSQL");
    internal static readonly string? ClickHouse = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE");
    private static readonly string ClickHouseUser = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_USER") ?? "default";
    private static readonly string ClickHousePassword = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_PASSWORD") ?? string.Empty;
    private const string ClickHouseUid = Caravan.Api.Connectors.ClickHouse.ClickHouseQueryEngine.UidSetting;

    // ---- MariaDB ----

    [Fact]
    public async Task MySQL_types_round_trip()
    {
        await using var scope = await MySqlScope.CreateAsync();
        await scope.AdminAsync($$"""
            CREATE TABLE `{{scope.Database}}`.t (i INT, b BIGINT, n DECIMAL(12,3), s VARCHAR(50), f BOOLEAN, at TIMESTAMP NULL, j JSON, x TEXT);
            SET time_zone = '+00:00';
            INSERT INTO `{{scope.Database}}`.t VALUES (42, 9007199254740993, 1234.567, 'naïve, "quoted"', TRUE, '2026-11-27 04:07:55', '{"a": [1, 2]}', NULL);
            """);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());

        var answer = await org.Http.QueryAsync(id, "SELECT * FROM t", HttpStatusCode.OK);

        var row = QueryKit.Rows(answer).Single()!.AsArray();
        Assert.Equal(42, row[0]!.GetValue<long>());
        Assert.Equal(9007199254740993, row[1]!.GetValue<long>());
        Assert.Equal(1234.567m, row[2]!.GetValue<decimal>());
        Assert.Equal("naïve, \"quoted\"", row[3]!.GetValue<string>());
        Assert.True(row[4]!.GetValue<bool>());
        Assert.Equal("2026-11-27T04:07:55Z", row[5]!.GetValue<string>());
        // MariaDB's JSON is LONGTEXT underneath: it arrives as text there, as JSON on MySQL.
        var json = row[6] is JsonObject ? row[6]! : JsonNode.Parse(row[6]!.GetValue<string>())!;
        Assert.Equal(2, json["a"]!.AsArray().Count);
        Assert.Null(row[7]);
        Assert.Equal(["i", "b", "n", "s", "f", "at", "j", "x"], answer["columns"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("INSERT INTO items VALUES (3, 'three')")]
    [InlineData("UPDATE items SET name = 'changed'")]
    [InlineData("DELETE FROM items")]
    [InlineData("CREATE TABLE other (x INT)")]
    [InlineData("DROP TABLE items")]
    [InlineData("TRUNCATE TABLE items")]
    public async Task MySQL_writes_are_refused_and_change_nothing(string sql)
    {
        await using var scope = await MySqlScope.CreateAsync(canWrite: true);
        await scope.AdminAsync($"CREATE TABLE `{scope.Database}`.items (id INT, name TEXT); INSERT INTO `{scope.Database}`.items VALUES (1, 'one'), (2, 'two');");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());

        var answer = await org.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest);

        Assert.Equal(["sql"], answer["errors"]!.AsObject().Select(p => p.Key));
        var names = await org.Http.QueryAsync(id, "SELECT GROUP_CONCAT(name ORDER BY id) AS names FROM items", HttpStatusCode.OK);
        Assert.Equal("one,two", QueryKit.Rows(names)[0]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task MySQL_refuses_what_reaches_other_sessions_or_files_or_outlives_the_query()
    {
        await using var scope = await MySqlScope.CreateAsync(canWrite: true);
        await scope.AdminAsync($"CREATE TABLE `{scope.Database}`.items (id INT, name TEXT); INSERT INTO `{scope.Database}`.items VALUES (1, 'one'), (2, 'two');");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());
        var victim = await scope.OpenAsUserAsync();
        var thread = await ScalarAsync(victim, "SELECT CONNECTION_ID()");
        var held = scope.User + "_lock";
        string[] refused =
        [
            $"KILL {thread}",
            $"KILL QUERY {thread}",
            $"kill connection {thread}",
            $"/*M!100000 KILL {thread} */",
            $"SELECT GET_LOCK('{held}', 0)",
            $"select get_lock ('{held}', 0) AS l FROM items",
            $"DO GET_LOCK('{held}', 0)",
            $"SELECT 1 /*!50000 , GET_LOCK('{held}', 0) */",
            $"SELECT 1 /*M!100000 , GET_LOCK('{held}', 0) */",
            $"SELECT RELEASE_ALL_LOCKS()",
            "LOCK TABLES items WRITE",
            "SELECT * FROM items INTO OUTFILE '/tmp/caravan-outfile'",
            "SELECT * FROM items LIMIT 1 INTO DUMPFILE '/tmp/caravan-dumpfile'",
            "SELECT id INTO @kept FROM items LIMIT 1",
            "SET @kept = 1",
            "SELECT LOAD_FILE('/etc/hostname')",
            "SELECT * FROM items FOR UPDATE",
            "SELECT * FROM items LOCK IN SHARE MODE",
            "HANDLER items OPEN",
            "ANALYZE TABLE items",
            "ANALYZE SELECT * FROM items",
            "DO 1",
            "CALL anything()",
        ];

        var failures = new List<string>();
        foreach (var sql in refused)
        {
            using var response = await org.Http.QueryAsync(id, QueryKit.Body(sql));
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            if (response.StatusCode != HttpStatusCode.BadRequest || !body.Contains("\"errors\":{\"sql\":[\"Queries are read-only", StringComparison.Ordinal))
            {
                failures.Add($"{sql} → {(int)response.StatusCode} {body}");
            }

            // Seen from connections of the test's own: the other session lives, no lock is held, nothing was written.
            try
            {
                await ScalarAsync(victim, "SELECT 1");
            }
            catch (MySqlException exception)
            {
                failures.Add($"after {sql}: the user's other session was killed ({exception.Message})");
                await victim.DisposeAsync();
                victim = await scope.OpenAsUserAsync();
            }

            if (await scope.ScalarAsync($"SELECT IS_USED_LOCK('{held}')") is not DBNull)
            {
                failures.Add($"after {sql}: the lock {held} is held");
            }

            if (Convert.ToInt64(await scope.ScalarAsync($"SELECT COUNT(*) FROM `{scope.Database}`.items"), System.Globalization.CultureInfo.InvariantCulture) != 2)
            {
                failures.Add($"after {sql}: items was written");
            }
        }

        await victim.DisposeAsync();
        var functions = await org.Http.QueryAsync(id, "SELECT INSERT('abc', 1, 1, 'x') AS i, REPLACE('abc', 'b', 'y') AS r, SLEEP(0) AS s", HttpStatusCode.OK);

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal("""[["xbc","ayc",0]]""", functions["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task MySQL_a_lock_a_database_function_takes_is_released_when_the_query_ends()
    {
        // The statement check refuses GET_LOCK by name; a function of the database's own can still
        // take one. The pooled session must not keep holding it while it idles (issue #12, item 2).
        await using var scope = await MySqlScope.CreateAsync();
        var held = scope.User + "_fn_lock";
        await scope.AdminAsync(
            $"CREATE FUNCTION `{scope.Database}`.take_lock() RETURNS INT NOT DETERMINISTIC NO SQL RETURN GET_LOCK('{held}', 0); "
            + $"GRANT EXECUTE ON `{scope.Database}`.* TO '{scope.User}'@'127.0.0.1';");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());

        var taken = await org.Http.QueryAsync(id, "SELECT take_lock() AS l", HttpStatusCode.OK);
        var failing = await org.Http.QueryAsync(id, "SELECT take_lock() AS l FROM no_such_table", HttpStatusCode.UnprocessableEntity);
        var afterSuccess = await scope.ScalarAsync($"SELECT IS_USED_LOCK('{held}')");
        await org.Http.QueryAsync(id, "SELECT take_lock() AS l, SLEEP(5) AS s", HttpStatusCode.GatewayTimeout, timeoutMs: 300);
        var afterTimeout = await scope.ScalarAsync($"SELECT IS_USED_LOCK('{held}')");

        Assert.Equal("[[1]]", taken["rows"]!.ToJsonString());
        Assert.Equal("undefined_object", failing["code"]!.GetValue<string>());
        Assert.IsType<DBNull>(afterSuccess);
        Assert.IsType<DBNull>(afterTimeout);
    }

    [Fact]
    public async Task MySQL_limits_formats_and_errors()
    {
        await using var scope = await MySqlScope.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());
        const string series = "SELECT seq FROM seq_1_to_100000";

        var cut = await org.Http.QueryAsync(id, series, HttpStatusCode.OK, maxRows: 5);
        var clock = Stopwatch.StartNew();
        var slow = await org.Http.QueryAsync(id, "SELECT SLEEP(10)", HttpStatusCode.GatewayTimeout, timeoutMs: 500);
        var elapsed = clock.Elapsed;
        var missing = await org.Http.QueryAsync(id, "SELECT * FROM no_such_table", HttpStatusCode.UnprocessableEntity);
        var syntax = await org.Http.QueryAsync(id, "SELECT 1 FROM", HttpStatusCode.UnprocessableEntity);
        using var csv = await org.Http.QueryAsync(id, QueryKit.Body("SELECT 1 AS a, 'x,y' AS b"), "text/csv");
        using var ndjson = await org.Http.QueryAsync(id, QueryKit.Body("SELECT 1 AS a"), "application/x-ndjson");

        Assert.Equal(5, QueryKit.Rows(cut).Count);
        Assert.True(cut["truncated"]!.GetValue<bool>());
        Assert.Equal("timeout", slow["code"]!.GetValue<string>());
        Assert.True(elapsed < TimeSpan.FromSeconds(2), $"took {elapsed}");
        Assert.Equal("undefined_object", missing["code"]!.GetValue<string>());
        Assert.Equal("syntax_error", syntax["code"]!.GetValue<string>());
        Assert.Equal("a,b\r\n1,\"x,y\"\r\n", await csv.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var lines = (await ndjson.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal(1, JsonNode.Parse(lines[2])!["row_count"]!.GetValue<long>());
        var after = await org.Http.QueryAsync(id, "SELECT 2 AS b", HttpStatusCode.OK);
        Assert.Equal(2, QueryKit.Rows(after)[0]![0]!.GetValue<long>());
        app.AssertNoSecrets([missing.ToJsonString(), syntax.ToJsonString()], scope.Password);
    }

    [Fact]
    public async Task MySQL_password_changed_with_update_config_is_used_by_the_next_query()
    {
        await using var scope = await MySqlScope.CreateAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);
        var newPassword = Unique.Secret("pw-");

        await scope.AdminAsync($"ALTER USER '{scope.User}'@'127.0.0.1' IDENTIFIED BY '{newPassword}'");
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", new JsonObject { ["password"] = newPassword }.ToJsonString())
            .Expect(HttpStatusCode.OK);
        var next = await org.Http.QueryAsync(id, "SELECT CURRENT_USER() AS who", HttpStatusCode.OK);
        var stale = await org.Http.CreateSourceAsync(scope.Body());
        var refused = await org.Http.QueryAsync(stale, "SELECT 1", HttpStatusCode.BadGateway);

        Assert.StartsWith(scope.User, QueryKit.Rows(next)[0]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("auth_failed", refused["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task MySQL_a_value_beyond_the_bytes_left_ends_the_result_before_its_row()
    {
        await using var scope = await MySqlScope.CreateAsync();
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxResultBytes"] = "100000" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());

        // Row 3 holds 5 MB: as text, and as binary (whose length is known before it is copied).
        var text = await org.Http.QueryAsync(id, "SELECT seq, IF(seq = 3, REPEAT('x', 5000000), 'small') AS v FROM seq_1_to_5", HttpStatusCode.OK);
        var binary = await org.Http.QueryAsync(id,
            "SELECT seq, IF(seq = 3, CAST(REPEAT('x', 5000000) AS BINARY), UNHEX('0102FF')) AS v FROM seq_1_to_5", HttpStatusCode.OK);

        Assert.Equal("""[[1,"small"],[2,"small"]]""", text["rows"]!.ToJsonString());
        Assert.Equal("max_result_bytes", text["truncated_by"]!.GetValue<string>());
        Assert.Equal("""[[1,"AQL/"],[2,"AQL/"]]""", binary["rows"]!.ToJsonString());
        Assert.Equal("max_result_bytes", binary["truncated_by"]!.GetValue<string>());
    }

    // ---- ClickHouse ----

    [Fact]
    public async Task ClickHouse_rows_limits_and_read_only()
    {
        Assert.SkipWhen(string.IsNullOrEmpty(ClickHouse), "No ClickHouse server configured (./test.sh starts one and sets CARAVAN_TEST_CLICKHOUSE).");
        await using var items = await ClickHouseItems.CreateAsync("one\\ttab");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(items.Body());

        var rows = await org.Http.QueryAsync(id, "SELECT id, name, price FROM items ORDER BY id", HttpStatusCode.OK);
        var cut = await org.Http.QueryAsync(id, "SELECT number FROM system.numbers LIMIT 100000", HttpStatusCode.OK, maxRows: 7);
        var write = await org.Http.QueryAsync(id, "INSERT INTO items VALUES (3, 'three', 0)", HttpStatusCode.BadRequest);
        var drop = await org.Http.QueryAsync(id, "DROP TABLE items", HttpStatusCode.BadRequest);
        var slow = await org.Http.QueryAsync(id, "SELECT sleep(3)", HttpStatusCode.GatewayTimeout, timeoutMs: 1000);
        var missing = await org.Http.QueryAsync(id, "SELECT * FROM no_such_table", HttpStatusCode.UnprocessableEntity);
        using var uid = await org.Http.QueryAsync(id, QueryKit.Body("SELECT 1", uid: "alice"));

        Assert.Equal(["UInt32", "String", "Nullable(Float64)"], rows["columns"]!.AsArray().Select(c => c!["type"]!.GetValue<string>()));
        Assert.Equal("""[[1,"one\ttab",1.5],[2,"two",null]]""", rows["rows"]!.ToJsonString().Replace("\\u0009", "\\t", StringComparison.Ordinal));
        Assert.Equal(7, QueryKit.Rows(cut).Count);
        Assert.True(cut["truncated"]!.GetValue<bool>());
        Assert.Equal(["sql"], write["errors"]!.AsObject().Select(p => p.Key));
        Assert.Equal(["sql"], drop["errors"]!.AsObject().Select(p => p.Key));
        Assert.Equal("timeout", slow["code"]!.GetValue<string>());
        Assert.Equal("undefined_object", missing["code"]!.GetValue<string>());
        // Old servers (18.16 here) have no custom settings: uid is refused on its field, not ignored.
        if (uid.StatusCode == HttpStatusCode.BadRequest)
        {
            Assert.Contains("SQL_caravan_uid", await uid.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(HttpStatusCode.OK, uid.StatusCode);
        }

        var count = await org.Http.QueryAsync(id, "SELECT count() FROM items", HttpStatusCode.OK);
        Assert.Equal(2, QueryKit.Rows(count)[0]![0]!.GetValue<long>());
    }

    [Fact]
    public async Task ClickHouse_refuses_KILL_and_every_way_to_set_the_uid()
    {
        Assert.SkipWhen(string.IsNullOrEmpty(ClickHouse), "No ClickHouse server configured (./test.sh starts one and sets CARAVAN_TEST_CLICKHOUSE).");
        await using var items = await ClickHouseItems.CreateAsync("one");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(items.Body());
        // A query of the same ClickHouse user, running for about three seconds (cancellable between its small blocks).
        var victimId = Unique.Secret("caravan-victim-");
        var victim = ClickHouseSendAsync("SELECT count() FROM (SELECT sleepEachRow(0.01) FROM system.numbers LIMIT 300)", $"query_id={victimId}&max_block_size=10");
        for (var wait = 0; wait < 100 && await ClickHouseScalarAsync($"SELECT count() FROM system.processes WHERE query_id = '{victimId}'") == "0"; wait++)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        string[] refused =
        [
            $"KILL QUERY WHERE query_id = '{victimId}'",
            $"kill query where query_id = '{victimId}' SYNC",
            $"SELECT 1 SETTINGS {ClickHouseUid} = 'bob'",
            $"SELECT 1 SETTINGS `{ClickHouseUid}` = 'bob'",
            $"SELECT 1 SETTINGS \"sql_caravan_uid\" = 'bob'",
            $"SET {ClickHouseUid} = 'bob'",
            "SELECT 1 SETTINGS max_execution_time = 0",
            "SYSTEM DROP DNS CACHE",
            "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')",
            "SELECT * FROM file('x.csv', CSV, 'a String')",
            "SELECT 1 INTO OUTFILE '/tmp/caravan-outfile'",
            "OPTIMIZE TABLE items",
        ];
        var answers = new List<JsonNode>();
        foreach (var sql in refused)
        {
            answers.Add(await org.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest));
        }

        using var survived = await victim;
        var settings = await org.Http.QueryAsync(id, "SELECT name FROM system.settings WHERE name = 'readonly'", HttpStatusCode.OK);

        Assert.All(answers, a => Assert.StartsWith("Queries are read-only", a["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal));
        Assert.All(answers[2..6], a => Assert.Contains("uid", a["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, survived.StatusCode);
        Assert.Equal("300", (await survived.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).Trim());
        Assert.Equal("""[["readonly"]]""", settings["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task The_MCP_tools_describe_and_query_a_MariaDB_source()
    {
        await using var scope = await MySqlScope.CreateAsync();
        await scope.AdminAsync($"""
            CREATE TABLE `{scope.Database}`.orders (id INT PRIMARY KEY, customer VARCHAR(20) NOT NULL, amount DECIMAL(10,2));
            INSERT INTO `{scope.Database}`.orders VALUES (1, 'ada', 12.50), (2, 'grace', NULL);
            """);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());
        await using var client = await McpKit.ConnectAsync(app, org.Key);

        var schemas = (await client.CallAsync("list_schemas", new() { ["source_id"] = id })).Ok();
        var described = (await client.CallAsync("describe_table", new() { ["source_id"] = id, ["schema"] = scope.Database, ["table"] = "orders" })).Ok();
        var rows = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT id, customer, amount FROM orders ORDER BY id" })).Ok();
        var (code, _) = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "DELETE FROM orders" })).Error();

        Assert.Contains(scope.Database, schemas.GetProperty("schemas").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["id int(11) False", "customer varchar(20) False", "amount decimal(10,2) True"], McpColumns(described));
        Assert.Equal("""[[1,"ada",12.50],[2,"grace",null]]""", rows.GetProperty("rows").GetRawText());
        Assert.Equal("write_refused", code);
        Assert.DoesNotContain(scope.Password, McpKit.Text(await client.CallAsync("list_sources")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClickHouse_a_long_line_is_read_only_while_the_result_has_room_for_it()
    {
        Assert.SkipWhen(string.IsNullOrEmpty(ClickHouse), "No ClickHouse server configured (./test.sh starts one and sets CARAVAN_TEST_CLICKHOUSE).");
        await using var items = await ClickHouseItems.CreateAsync("one");
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxResultBytes"] = "1000000" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(items.Body());

        // 200 kB of two-byte characters: longer than the reader's 64 KiB buffer, within the result.
        var fits = await org.Http.QueryAsync(id, $"SELECT number, if(number = 1, {Long(200)}, 'small') AS v FROM system.numbers LIMIT 3", HttpStatusCode.OK);
        // 5 MB in row 3: more than the result may hold.
        var cut = await org.Http.QueryAsync(id, $"SELECT number, if(number = 2, {Long(5000)}, 'small') AS v FROM system.numbers LIMIT 5", HttpStatusCode.OK);

        Assert.Equal(3, fits["row_count"]!.GetValue<long>());
        Assert.Equal(new string('é', 100_000), QueryKit.Rows(fits)[1]![1]!.GetValue<string>());
        Assert.Equal("small", QueryKit.Rows(fits)[2]![1]!.GetValue<string>());
        Assert.False(fits["truncated"]!.GetValue<bool>());
        Assert.Equal("""[[0,"small"],[1,"small"]]""", cut["rows"]!.ToJsonString());
        Assert.Equal("max_result_bytes", cut["truncated_by"]!.GetValue<string>());

        // A ClickHouse expression for a string of kilobytes × 1000 bytes (ClickHouse 18.16 has no repeat()).
        static string Long(int kilobytes) => $"arrayStringConcat(arrayMap(x -> '{new string('é', 500)}', range({kilobytes})))";
    }

    [Fact]
    public async Task The_MCP_tools_describe_and_query_a_ClickHouse_source()
    {
        Assert.SkipWhen(string.IsNullOrEmpty(ClickHouse), "No ClickHouse server configured (./test.sh starts one and sets CARAVAN_TEST_CLICKHOUSE).");
        await using var items = await ClickHouseItems.CreateAsync("one");
        var database = items.Database;
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(items.Body());
        await using var client = await McpKit.ConnectAsync(app, org.Key);

        var schemas = (await client.CallAsync("list_schemas", new() { ["source_id"] = id })).Ok();
        var described = (await client.CallAsync("describe_table", new() { ["source_id"] = id, ["schema"] = database, ["table"] = "items" })).Ok();
        var (missing, _) = (await client.CallAsync("describe_table", new() { ["source_id"] = id, ["schema"] = database, ["table"] = "nope" })).Error();
        var rows = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT id, name, price FROM items ORDER BY id" })).Ok();
        var (write, _) = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "INSERT INTO items VALUES (3, 'three', 0)" })).Error();

        Assert.Contains(database, schemas.GetProperty("schemas").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["id UInt32 False", "name String False", "price Nullable(Float64) True"], McpColumns(described));
        Assert.Equal("not_found", missing);
        Assert.Equal("""[[1,"one",1.5],[2,"two",null]]""", rows.GetProperty("rows").GetRawText());
        Assert.Equal("write_refused", write);
    }

    // ---- DuckDB ----

    [Fact]
    public async Task A_local_DuckDB_file_is_read_only()
    {
        var path = Path.Combine(CaravanApp.NewDataDirectory(), "warehouse.duckdb");
        using (var setup = new DuckDBConnection($"DataSource={path}"))
        {
            setup.Open();
            using var command = setup.CreateCommand();
            command.CommandText = "CREATE TABLE items (id INTEGER, name VARCHAR, ts TIMESTAMPTZ); INSERT INTO items VALUES (1, 'one', '2026-11-27 04:07:55+00'), (2, 'two', NULL);";
            command.ExecuteNonQuery();
        }

        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:AllowLocalFiles"] = "true" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(new JsonObject { ["type"] = "motherduck", ["database_name"] = path, ["token"] = "unused-token" }.ToJsonString());

        var rows = await org.Http.QueryAsync(id, "SELECT id, name FROM items ORDER BY id", HttpStatusCode.OK);
        var cut = await org.Http.QueryAsync(id, "SELECT * FROM range(100000)", HttpStatusCode.OK, maxRows: 3);
        var insert = await org.Http.QueryAsync(id, "INSERT INTO items VALUES (3, 'three', NULL)", HttpStatusCode.BadRequest);
        var create = await org.Http.QueryAsync(id, "CREATE TABLE other (x INTEGER)", HttpStatusCode.BadRequest);
        var cte = await org.Http.QueryAsync(id, "WITH x AS (SELECT 1) DELETE FROM items", HttpStatusCode.BadRequest);
        var missing = await org.Http.QueryAsync(id, "SELECT * FROM nothing_here", HttpStatusCode.UnprocessableEntity);

        Assert.Equal("""[[1,"one"],[2,"two"]]""", rows["rows"]!.ToJsonString());
        Assert.Equal(3, QueryKit.Rows(cut).Count);
        Assert.True(cut["truncated"]!.GetValue<bool>());
        Assert.All([insert, create, cte], a => Assert.Equal(["sql"], a["errors"]!.AsObject().Select(p => p.Key)));
        Assert.Equal("undefined_object", missing["code"]!.GetValue<string>());
        var count = await org.Http.QueryAsync(id, "SELECT count(*) FROM items", HttpStatusCode.OK);
        Assert.Equal(2, QueryKit.Rows(count)[0]![0]!.GetValue<long>());
    }

    [Fact]
    public async Task DuckDB_blobs_are_bounded_before_they_are_copied_and_each_statement_has_a_memory_limit()
    {
        var path = Path.Combine(CaravanApp.NewDataDirectory(), "empty.duckdb");
        using (var setup = new DuckDBConnection($"DataSource={path}"))
        {
            setup.Open();
        }

        await using var own = new OwnCaravan(new Dictionary<string, string?>
        {
            ["Caravan:Egress:AllowLocalFiles"] = "true",
            ["Caravan:Query:MaxResultBytes"] = "100000",
            ["Caravan:Query:MaxBufferedResultBytes"] = "67108864",
        });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(new JsonObject { ["type"] = "motherduck", ["database_name"] = path, ["token"] = "unused-token" }.ToJsonString());

        var blobs = await org.Http.QueryAsync(id,
            "SELECT i, CASE WHEN i = 2 THEN repeat('x', 5000000)::BLOB ELSE '\\x01\\x02\\xFF'::BLOB END AS b FROM range(5) t(i)", HttpStatusCode.OK);
        var text = await org.Http.QueryAsync(id, "SELECT i, CASE WHEN i = 2 THEN repeat('x', 5000000) ELSE 'small' END AS v FROM range(5) t(i)", HttpStatusCode.OK);
        var limit = await org.Http.QueryAsync(id, "SELECT current_setting('memory_limit') AS m", HttpStatusCode.OK);

        Assert.Equal("""[[0,"AQL/"],[1,"AQL/"]]""", blobs["rows"]!.ToJsonString());
        Assert.Equal("max_result_bytes", blobs["truncated_by"]!.GetValue<string>());
        Assert.Equal("""[[0,"small"],[1,"small"]]""", text["rows"]!.ToJsonString());
        Assert.Equal("max_result_bytes", text["truncated_by"]!.GetValue<string>());
        Assert.Equal("64.0 MiB", QueryKit.Rows(limit)[0]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task A_local_DuckDB_file_refuses_other_files_databases_and_settings()
    {
        var path = Path.Combine(CaravanApp.NewDataDirectory(), "warehouse.duckdb");
        using (var setup = new DuckDBConnection($"DataSource={path}"))
        {
            setup.Open();
            using var command = setup.CreateCommand();
            command.CommandText = "CREATE TABLE items (id INTEGER, name VARCHAR); INSERT INTO items VALUES (1, 'one'), (2, 'two');";
            command.ExecuteNonQuery();
        }

        var beside = Path.Combine(Path.GetDirectoryName(path)!, "beside.csv");
        await File.WriteAllTextAsync(beside, "secret\n42\n", TestContext.Current.CancellationToken);
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:AllowLocalFiles"] = "true" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(new JsonObject { ["type"] = "motherduck", ["database_name"] = path, ["token"] = "unused-token" }.ToJsonString());
        string[] refused =
        [
            $"SELECT * FROM read_csv('{beside}')",
            $"SELECT * FROM READ_CSV_AUTO ('{beside}')",
            $"SELECT * FROM main.read_text('{beside}')",
            $"SELECT * FROM '{beside}'",
            $"FROM '{beside}'",
            $"SELECT * FROM items, '{beside}'",
            $"SELECT * FROM items JOIN \"{beside}\" ON true",
            $"DESCRIBE '{beside}'",
            "SELECT * FROM glob('/*')",
            "SELECT * FROM query('SELECT 42')",
            "SELECT getenv('HOME')",
            "ATTACH ':memory:' AS other",
            "DETACH other",
            "INSTALL httpfs",
            "LOAD httpfs",
            $"COPY items TO '{beside}'",
            $"EXPORT DATABASE '{Path.GetDirectoryName(path)}'",
            "SET threads = 1",
            "RESET threads",
            "PRAGMA version",
            "CALL pragma_version()",
        ];
        var answers = new List<JsonNode>();
        foreach (var sql in refused)
        {
            answers.Add(await org.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest));
        }

        var read = await org.Http.QueryAsync(id, "FROM items SELECT id, 'a.csv' AS name ORDER BY id DESC", HttpStatusCode.OK);

        Assert.All(answers, a => Assert.StartsWith("Queries are read-only", a["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal));
        Assert.Equal("""[[2,"a.csv"],[1,"a.csv"]]""", read["rows"]!.ToJsonString());
        Assert.Equal("secret\n42\n", await File.ReadAllTextAsync(beside, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task The_MCP_tools_describe_and_query_a_local_DuckDB_file()
    {
        var path = Path.Combine(CaravanApp.NewDataDirectory(), "warehouse.duckdb");
        using (var setup = new DuckDBConnection($"DataSource={path}"))
        {
            setup.Open();
            using var command = setup.CreateCommand();
            command.CommandText = "CREATE TABLE items (id INTEGER NOT NULL, name VARCHAR, ts TIMESTAMPTZ); INSERT INTO items VALUES (1, 'one', NULL), (2, 'two', NULL);";
            command.ExecuteNonQuery();
        }

        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:AllowLocalFiles"] = "true" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(new JsonObject { ["type"] = "motherduck", ["database_name"] = path, ["token"] = "unused-token" }.ToJsonString());
        await using var client = await McpKit.ConnectAsync(own, org.Key);

        var described = (await client.CallAsync("describe_table", new() { ["source_id"] = id, ["schema"] = "main", ["table"] = "items" })).Ok();
        var rows = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT id, name FROM items ORDER BY id" })).Ok();
        var (write, _) = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "DELETE FROM items" })).Error();

        Assert.Equal(["id INTEGER False", "name VARCHAR True", "ts TIMESTAMP WITH TIME ZONE True"], McpColumns(described));
        Assert.Equal("""[[1,"one"],[2,"two"]]""", rows.GetProperty("rows").GetRawText());
        Assert.Equal("write_refused", write);
    }

    private static List<string> McpColumns(System.Text.Json.JsonElement described) =>
        [.. described.GetProperty("columns").EnumerateArray().Select(c =>
            $"{c.GetProperty("name").GetString()} {c.GetProperty("type").GetString()} {c.GetProperty("nullable").GetBoolean()}")];

    private static async Task<object?> ScalarAsync(MySqlConnection connection, string sql)
    {
        await using var command = new MySqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    /// <summary>Sends a statement as the test's ClickHouse user, with the given settings, and hands back the answer.</summary>
    private static async Task<HttpResponseMessage> ClickHouseSendAsync(string sql, string settings = "")
    {
        using var http = new HttpClient { BaseAddress = new Uri(ClickHouse!) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/?" + settings) { Content = new StringContent(sql, Encoding.UTF8) };
        request.Headers.Add("X-ClickHouse-User", ClickHouseUser);
        request.Headers.Add("X-ClickHouse-Key", ClickHousePassword);
        var response = await http.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private static async Task<string> ClickHouseScalarAsync(string sql)
    {
        using var response = await ClickHouseSendAsync(sql);
        return (await response.Content.ReadAsStringAsync()).Trim();
    }

    private static async Task ClickHouseAsync(string sql)
    {
        using var response = await ClickHouseSendAsync(sql);
        Assert.True(response.IsSuccessStatusCode, $"{sql}: {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>A ClickHouse database of the test's own holding items (id, name, price): (1, <c>first</c>, 1.5) and (2, 'two', NULL).</summary>
    internal sealed class ClickHouseItems : IAsyncDisposable
    {
        public string Database { get; } = Unique.Name("cv");

        public static async Task<ClickHouseItems> CreateAsync(string first)
        {
            var items = new ClickHouseItems();
            await ClickHouseAsync($"CREATE DATABASE {items.Database}");
            await ClickHouseAsync($"CREATE TABLE {items.Database}.items (id UInt32, name String, price Nullable(Float64)) ENGINE = Memory");
            await ClickHouseAsync($"INSERT INTO {items.Database}.items VALUES (1, '{first}', 1.5), (2, 'two', NULL)");
            return items;
        }

        public string Body()
        {
            var server = new Uri(ClickHouse!);
            return new JsonObject
            {
                ["type"] = "clickhouse", ["host"] = server.Host, ["port"] = server.Port, ["username"] = ClickHouseUser,
                ["password"] = ClickHousePassword, ["database"] = Database, ["secure"] = false,
            }.ToJsonString();
        }

        public async ValueTask DisposeAsync() => await ClickHouseAsync($"DROP DATABASE IF EXISTS {Database}");
    }

    /// <summary>A MariaDB user of the test's own and one database it may read (and write, when asked).</summary>
    private sealed class MySqlScope : IAsyncDisposable
    {
        private readonly MySqlConnectionStringBuilder _admin;

        private MySqlScope(MySqlConnectionStringBuilder admin)
        {
            _admin = admin;
        }

        public string User { get; } = Unique.Name("cv");

        public string Database => User + "_db";

        public string Password { get; } = Unique.Secret("pw-");

        public static async Task<MySqlScope> CreateAsync(bool canWrite = false)
        {
            Assert.SkipWhen(string.IsNullOrEmpty(MySqlAdmin), "No MySQL server configured (./test.sh starts a MariaDB and sets CARAVAN_TEST_MYSQL).");
            var scope = new MySqlScope(new MySqlConnectionStringBuilder(MySqlAdmin) { Pooling = false, AllowUserVariables = true });
            await scope.AdminAsync(
                $"CREATE USER '{scope.User}'@'127.0.0.1' IDENTIFIED BY '{scope.Password}'; CREATE DATABASE `{scope.Database}`; "
                + $"GRANT {(canWrite ? "ALL PRIVILEGES" : "SELECT")} ON `{scope.Database}`.* TO '{scope.User}'@'127.0.0.1';");
            return scope;
        }

        public string Body() => new JsonObject
        {
            ["type"] = "mysql", ["hostname"] = _admin.Server, ["port"] = (int)_admin.Port, ["username"] = User,
            ["password"] = Password, ["database_name"] = Database,
        }.ToJsonString();

        /// <summary>A connection of the scope's user, outside Caravan.</summary>
        public async Task<MySqlConnection> OpenAsUserAsync()
        {
            var connection = new MySqlConnection(new MySqlConnectionStringBuilder(_admin.ConnectionString)
            {
                UserID = User, Password = Password, Database = Database,
            }.ConnectionString);
            await connection.OpenAsync();
            return connection;
        }

        /// <summary>One value read on a fresh connection of the administrator's.</summary>
        public async Task<object?> ScalarAsync(string sql)
        {
            await using var connection = new MySqlConnection(_admin.ConnectionString);
            await connection.OpenAsync();
            await using var command = new MySqlCommand(sql, connection);
            return await command.ExecuteScalarAsync();
        }

        public async Task AdminAsync(string sql)
        {
            await using var connection = new MySqlConnection(_admin.ConnectionString);
            await connection.OpenAsync();
            await using var command = new MySqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }

        public async ValueTask DisposeAsync() =>
            await AdminAsync($"DROP USER IF EXISTS '{User}'@'127.0.0.1'; DROP DATABASE IF EXISTS `{Database}`;");
    }
}
