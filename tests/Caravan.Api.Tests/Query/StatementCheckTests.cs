using Caravan.Api.Connectors.MotherDuck;
using Caravan.Api.Connectors.ClickHouse;
using Caravan.Api.Connectors.MySql;
using Caravan.Api.Connectors.Postgres;
using System.Net;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// The statement check of each dialect on its own (what it reads as code, what it leaves alone),
/// and SQL Server's through the route: there is no SQL Server here, and a refused statement is
/// answered before Caravan connects, while an allowed one goes on to the (closed) port.
/// </summary>
public sealed class StatementCheckTests(CaravanApp app)
{
    [Theory]
    [InlineData("SELECT set_config('caravan.uid', 'bob', true)")]
    [InlineData("SELECT Set_Config ('caravan.uid', 'bob', true)")]
    [InlineData("SELECT \"pg_catalog\" . \"set_config\"('caravan.uid', 'bob', true)")]
    [InlineData("SELECT pg_catalog./**/set_config/* a /* nested */ comment */('caravan.uid', 'bob', true)")]
    [InlineData("SELECT u&\"s\\0065t_config\"('caravan.uid', 'bob', true)")]
    [InlineData("SELECT U&\"s#0065t_config\" UESCAPE '#' ('caravan.uid', 'bob', true)")]
    [InlineData("SELECT $$x$$ AS a, set_config('caravan.uid', 'bob', true)")]
    [InlineData("SELECT 'it\\' , set_config(''caravan.uid'', ''bob'', true) -- '")]
    [InlineData("SELECT 1.INTO copied")]
    [InlineData("SELECT (42::bigint).pg_advisory_lock")]
    [InlineData("SELECT dblink_exec('dbname=x', 'DELETE FROM t')")]
    [InlineData("SELECT pg_try_advisory_xact_lock(1)")]
    [InlineData("SELECT lo_import('/etc/passwd')")]
    [InlineData("SELECT ts_stat('SELECT 1')")]
    [InlineData("EXPLAIN (analyse) SELECT 1")]
    [InlineData("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d")]
    [InlineData("SELECT 1 /* not closed")]
    [InlineData("SELECT 'not closed")]
    [InlineData("\"SELECT\" 1")]
    [InlineData("FETCH ALL FROM c")]
    public void PostgreSQL_refuses(string sql)
    {
        Assert.StartsWith("Queries are read-only", PostgresQueryEngine.Check.Refusal(sql), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SELECT 'set_config(''caravan.uid'', ''bob'', true)' AS text")]
    [InlineData("SELECT $q$ pg_advisory_lock(1) $q$, E'\\' , INTO'")]
    [InlineData("SELECT \"into\", t.update, t.delete FROM t -- INSERT INTO x")]
    [InlineData("SELECT current_setting('caravan.uid', true), set_config_history FROM t")]
    [InlineData("SELECT * FROM pg_catalog.pg_file_settings, pg_catalog.pg_replication_slots")]
    [InlineData("SELECT lo_get(1), pg_sleep(0), pg_backend_pid()")]
    [InlineData("(SELECT 1) UNION ALL (VALUES (2))")]
    [InlineData("with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) table r")]
    [InlineData("EXPLAIN (FORMAT JSON, VERBOSE) SELECT 1")]
    [InlineData("SHOW search_path")]
    [InlineData("SELECT replace(path, '\\', '/') FROM files")]
    public void PostgreSQL_lets_through(string sql)
    {
        Assert.Null(PostgresQueryEngine.Check.Refusal(sql));
    }

    [Theory]
    [InlineData("SELECT `GET_LOCK`('x', 0)", true)]
    [InlineData("SELECT 1 /*!50000 , GET_LOCK('x', 0) */", true)]
    [InlineData("SELECT 1 /*M!100300 , RELEASE_LOCK('x') */", true)]
    [InlineData("/*!KILL 5*/", true)]
    [InlineData("SELECT a INTO @v FROM t", true)]
    [InlineData("SELECT 1 # INTO OUTFILE\n", false)]
    [InlineData("SELECT 1 -- INTO\n", false)]
    [InlineData("SELECT 1--1", false)]
    [InlineData("SELECT INSERT('abc', 1, 1, 'x'), REPLACE ('a', 'b', 'c')", false)]
    [InlineData("SELECT 'it\\' , GET_LOCK(''x'', 0) -- '", true)]
    [InlineData("SELECT \"get_lock\" FROM t", false)]
    public void MySQL_reads_executable_comments_as_code(string sql, bool refused)
    {
        Assert.Equal(refused, MySqlQueryEngine.Check.Refusal(sql) is not null);
    }

    [Theory]
    [InlineData("SELECT * FROM t SETTINGS SQL_caravan_uid = 'bob'", true)]
    [InlineData("SELECT * FROM t SETTINGS `sql_caravan_uid` = 'bob'", true)]
    [InlineData("SELECT getSetting('SQL_caravan_uid')", false)]
    [InlineData("SELECT name, value FROM system.settings WHERE name LIKE 'max%'", false)]
    [InlineData("KILL QUERY WHERE user = currentUser()", true)]
    [InlineData("SELECT * FROM remote('10.0.0.1', system.one)", true)]
    public void ClickHouse_keeps_the_uid_setting_its_own(string sql, bool refused)
    {
        Assert.Equal(refused, ClickHouseQueryEngine.Check.Refusal(sql) is not null);
    }

    [Theory]
    [InlineData("SELECT * FROM 'data.csv'", true)]
    [InlineData("SELECT * FROM t1 JOIN t2 ON t1.a = t2.a, 's3://bucket/x.parquet'", true)]
    [InlineData("FROM \"/etc/passwd\"", true)]
    [InlineData("SELECT * FROM read_parquet(['a.parquet'])", true)]
    [InlineData("SELECT * FROM t WHERE name IN ('a.csv', 'b.csv')", false)]
    [InlineData("SELECT 'a.csv', \"x.y\" FROM t ORDER BY 1 DESC, 2", false)]
    [InlineData("SELECT * FROM main.\"odd.name\"", false)]
    public void DuckDB_refuses_a_file_in_place_of_a_table(string sql, bool refused)
    {
        Assert.Equal(refused, DuckDbQueryEngine.Check.Refusal(sql) is not null);
    }

    [Fact]
    public async Task SQL_Server_statements_are_refused_before_connecting()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync($$"""
            {"type": "mssql", "hostname": "127.0.0.1", "port": {{Loopback.ClosedPort()}}, "username": "u", "password": "pw-mssql-check", "database_name": "d"}
            """);
        string[] refused =
        [
            "KILL 52",
            "EXEC xp_cmdshell 'dir'",
            "xp_cmdshell 'dir'",
            "SELECT 1 EXEC('DROP TABLE t')",
            "SELECT 1 EXECUTE sp_configure 'show advanced options', 1",
            "SELECT * FROM OPENROWSET('SQLNCLI', 'Server=x;Trusted_Connection=yes;', 'SELECT 1')",
            "SELECT * FROM OPENQUERY(linked, 'SELECT 1')",
            "SELECT * FROM OPENDATASOURCE('SQLNCLI', 'Data Source=x').db.dbo.t",
            "SELECT [master]..[xp_dirtree]('c:\\')",
            "SHUTDOWN WITH NOWAIT",
            "SELECT 1 RECONFIGURE",
            "SELECT 1 DBCC DROPCLEANBUFFERS",
            "SELECT * INTO #kept FROM sys.objects",
            "WITH x AS (SELECT 1 AS a) DELETE FROM t",
            "SELECT 1 SET CONTEXT_INFO 0x01",
            "SELECT 1 BEGIN TRAN",
            "SELECT * FROM t WITH (TABLOCKX)",
            "SELECT 1 WAITFOR DELAY '00:00:10'",
            "SELECT * FROM sys.fn_get_audit_file('c:\\*', DEFAULT, DEFAULT)",
        ];
        var answers = new List<System.Text.Json.Nodes.JsonNode>();
        foreach (var sql in refused)
        {
            answers.Add(await org.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest));
        }

        // Let through: Caravan tries to connect, and nothing listens there.
        await org.Http.QueryAsync(id, "SELECT name FROM sys.objects ORDER BY name OFFSET 0 ROWS FETCH NEXT 5 ROWS ONLY", HttpStatusCode.BadGateway);

        Assert.All(answers, a => Assert.StartsWith("Queries are read-only, and Caravan did not send this statement to SQL Server", a["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal));
    }
}
