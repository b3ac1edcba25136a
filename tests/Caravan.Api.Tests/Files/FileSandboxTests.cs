using System.Net;
using Caravan.Api.Connectors.Files;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;
using DuckDB.NET.Data;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// SQL on a FILE source reaches its tables and nothing else: no file of the machine, no URL, no
/// other database, no extension, no setting. Each attempt is refused by the statement check and,
/// should one get past it, by the DuckDB session itself; none changes anything.
/// </summary>
public sealed class FileSandboxTests(CaravanApp app)
{
    public static TheoryData<string> Escapes { get; } = new()
    {
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('/tmp/x.parquet')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_csv('https://example.com/data.csv')",
        "SELECT * FROM 'http://169.254.169.254/latest/meta-data/'",
        "SELECT * FROM read_json('http://127.0.0.1:9/x.json')",
        "ATTACH '/tmp/other.duckdb' AS other",
        "ATTACH ':memory:' AS scratch",
        "COPY (SELECT * FROM numbers) TO '/tmp/caravan-leak.csv'",
        "COPY numbers TO '/tmp/caravan-leak.parquet' (FORMAT parquet)",
        "EXPORT DATABASE '/tmp/caravan-export'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "LOAD '/tmp/evil.duckdb_extension'",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
        "PRAGMA enable_external_access",
        "SELECT getenv('HOME')",
        "CREATE TABLE copied AS SELECT * FROM numbers",
        "INSERT INTO numbers VALUES (1)",
        "DETACH f_0",
        "SELECT * FROM sqlite_scan('/tmp/x.db', 't')",
        "SELECT * FROM query('SELECT 1')",
    };

    [Theory]
    [MemberData(nameof(Escapes))]
    public async Task An_escape_through_SQL_is_refused_and_changes_nothing(string sql)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("numbers.csv", FileKit.Utf8("n\n1\n2\n3\n")));
        await org.Http.ReadyFilesAsync(id);

        var refused = await org.Http.QueryAsync(id, QueryKit.Body(sql));
        Assert.True(refused.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity, $"{sql}: {(int)refused.StatusCode} {await refused.Content.ReadAsStringAsync()}");
        Assert.False(File.Exists("/tmp/caravan-leak.csv"));
        Assert.False(File.Exists("/tmp/caravan-leak.parquet"));
        Assert.Equal("[[3,6]]", (await org.Http.QueryAsync(id, "SELECT count(*), sum(n) FROM numbers", HttpStatusCode.OK))["rows"]!.ToJsonString());
    }

    [Theory]
    [InlineData("SELECT count(*) FROM read_csv('/etc/passwd')")]
    [InlineData("SELECT * FROM read_text('/etc/hostname')")]
    [InlineData("SELECT * FROM 'https://example.com/x.csv'")]
    [InlineData("ATTACH '/tmp/caravan-session-escape.duckdb' AS other")]
    [InlineData("COPY (SELECT 1) TO '/tmp/caravan-session-escape.csv'")]
    [InlineData("SET enable_external_access = true")]
    [InlineData("SET lock_configuration = false")]
    [InlineData("INSTALL httpfs")]
    [InlineData("LOAD '/tmp/caravan-evil.duckdb_extension'")]
    [InlineData("FORCE INSTALL json")]
    public async Task The_session_itself_refuses_what_the_statement_check_would(string sql)
    {
        // Behind the statement check: the DuckDB session a FILE query runs on refuses on its own.
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("inside.csv", FileKit.Utf8("n\n1\n")));
        await org.Http.ReadyFilesAsync(id);

        var (session, _) = await app.Services.GetRequiredService<FileSessions>().OpenAsync(id, "64MB", TestContext.Current.CancellationToken);
        await using (session)
        {
            using var command = session.CreateCommand();
            command.CommandText = sql;
            Assert.ThrowsAny<DuckDBException>(() => command.ExecuteNonQuery());
            command.CommandText = "SELECT current_setting('enable_external_access'), current_setting('lock_configuration'), count(*) FROM inside";
            using var reader = command.ExecuteReader();
            Assert.True(reader.Read());
            Assert.False(reader.GetBoolean(0));
            Assert.True(reader.GetBoolean(1));
            Assert.Equal(1L, reader.GetInt64(2));
        }

        Assert.False(File.Exists("/tmp/caravan-session-escape.duckdb"));
        Assert.False(File.Exists("/tmp/caravan-session-escape.csv"));
    }
}
