using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Query;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Query;

/// <summary>The query route's checks that need no database: the body, the source's state and type, the statement count.</summary>
public sealed class QueryRouteTests(CaravanApp app)
{
    private const string Mysql = """{"type": "mysql", "hostname": "127.0.0.1", "username": "u", "password": "pw-route", "database_name": "d"}""";

    [Theory]
    [InlineData("{}", "sql", "This field is required.")]
    [InlineData("""{"sql": "  "}""", "sql", "This field may not be blank.")]
    [InlineData("""{"sql": 5}""", "sql", "Not a valid string.")]
    [InlineData("""{"sql": null}""", "sql", "This field may not be null.")]
    [InlineData("""{"sql": "SELECT 1", "max_rows": 0}""", "max_rows", "Ensure this value is greater than or equal to 1.")]
    [InlineData("""{"sql": "SELECT 1", "max_rows": -5}""", "max_rows", "Ensure this value is greater than or equal to 1.")]
    [InlineData("""{"sql": "SELECT 1", "max_rows": "ten"}""", "max_rows", "A valid integer is required.")]
    [InlineData("""{"sql": "SELECT 1", "max_rows": 1.5}""", "max_rows", "A valid integer is required.")]
    [InlineData("""{"sql": "SELECT 1", "timeout_ms": 0}""", "timeout_ms", "Ensure this value is greater than or equal to 1.")]
    [InlineData("""{"sql": "SELECT 1", "timeout_ms": true}""", "timeout_ms", "A valid integer is required.")]
    [InlineData("""{"sql": "SELECT 1", "uid": 42}""", "uid", "Not a valid string.")]
    [InlineData("""{"sql": "SELECT 1", "uid": ""}""", "uid", "This field may not be blank.")]
    [InlineData("""{"sql": "SELECT 1", "other": 1}""", "other", "Not a valid field for a query.")]
    public async Task Invalid_bodies_are_400_on_their_field(string body, string field, string message)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Mysql);

        var answer = await org.Http.PostJsonAsync(QueryKit.Url(id), body).Expect(HttpStatusCode.BadRequest);

        Assert.Equal([message], answer["errors"]![field]!.AsArray().Select(m => m!.GetValue<string>()));
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once_and_a_long_uid_is_refused()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Mysql);
        var body = new JsonObject { ["max_rows"] = 0, ["timeout_ms"] = "x", ["uid"] = new string('u', 300) }.ToJsonString();

        var answer = await org.Http.PostJsonAsync(QueryKit.Url(id), body).Expect(HttpStatusCode.BadRequest);

        Assert.Equal(["sql", "max_rows", "timeout_ms", "uid"], answer["errors"]!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public async Task A_legacy_source_without_its_configuration_is_409()
    {
        var org = await app.NewOrganizationAsync();
        var created = await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"account_name": "later", "type": "postgres"}""").Expect(HttpStatusCode.OK);

        var answer = await org.Http.QueryAsync(created["id"]!.GetValue<long>(), "SELECT 1", HttpStatusCode.Conflict);

        Assert.Equal("not_configured", answer["code"]!.GetValue<string>());
        Assert.Contains("update-config", answer["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MongoDB_does_not_take_SQL()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"type": "mongodb", "connection_string": "mongodb://u:pw-mongo@127.0.0.1:27017/db"}""");

        var answer = await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadRequest);

        Assert.Contains("MONGODB", answer["errors"]!["non_field_errors"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Uid_is_refused_where_the_database_cannot_take_it()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Mysql);

        var answer = await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadRequest, uid: "alice");

        Assert.Contains("row-level security", answer["errors"]!["uid"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SELECT 1; SELECT 2")]
    [InlineData("SELECT 1; -- x\n DROP TABLE t")]
    [InlineData("SELECT '\\'; DROP TABLE t; -- '")]
    [InlineData("SELECT 1 /*! ; DROP TABLE t */")]
    public async Task Two_statements_are_refused_before_any_connection(string sql)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Mysql);

        var answer = await org.Http.QueryAsync(id, sql, HttpStatusCode.BadRequest);

        Assert.Contains("one statement", answer["errors"]!["sql"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unacceptable_Accept_header_is_406()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Mysql);

        using var response = await org.Http.QueryAsync(id, QueryKit.Body("SELECT 1"), "image/png");

        Assert.Equal(HttpStatusCode.NotAcceptable, response.StatusCode);
    }

    [Fact]
    public async Task Without_a_key_the_route_is_401()
    {
        using var client = app.CreateClient();

        var answer = await client.PostJsonAsync(QueryKit.Url(1), QueryKit.Body("SELECT 1")).Expect(HttpStatusCode.Unauthorized);

        Assert.Equal("Authentication credentials were not provided.", answer["detail"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("{id}", """{"sql": "SELECT 1"}""")]
    [InlineData("{id}", "not json")]
    [InlineData("999999999", """{"sql": "SELECT 1"}""")]
    [InlineData("abc", """{"sql": "SELECT 1"}""")]
    public async Task A_wrong_or_revoked_key_is_401_before_any_other_answer(string id, string body)
    {
        // The route checks the key in the same store query that reads the source: a bad key is a
        // 401 whatever the id or the body, and never reaches the database.
        var org = await app.NewOrganizationAsync();
        var source = await org.Http.CreateSourceAsync(Mysql);
        using var wrong = app.CreateClient();
        wrong.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Caravan.Api.Auth.ApiKeys.NewKey());
        var revoked = await app.NewOrganizationAsync();
        Assert.True(await app.Services.GetRequiredService<Caravan.Api.Auth.ApiKeys>().RevokeAsync(revoked.KeyId));

        foreach (var client in new[] { wrong, revoked.Http, org.Http })
        {
            using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            var url = $"/api/v1/sources/{id.Replace("{id}", source.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)}/query/";
            using var response = await client.PostAsync(new Uri(url, UriKind.Relative), content);
            if (client == org.Http)
            {
                Assert.NotEqual(HttpStatusCode.Unauthorized, response.StatusCode);
                continue;
            }

            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("""{"detail":"Invalid API key."}""", await response.Content.ReadAsStringAsync());
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        }
    }

    [Fact]
    public async Task A_host_the_egress_policy_refuses_is_502_egress_denied()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(
            """{"type": "postgres", "hostname": "169.254.169.254", "username": "u", "password": "pw-meta", "database_name": "d"}""");

        var answer = await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.BadGateway);

        Assert.Equal("egress_denied", answer["code"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("SELECT 1", 1)]
    [InlineData("SELECT 1;", 1)]
    [InlineData("SELECT 1; ; -- only a comment after", 1)]
    [InlineData("-- nothing\n/* at all */", 0)]
    [InlineData("SELECT $a$ ; $a$", 1)]
    [InlineData("SELECT $1; SELECT 2", 2)]
    [InlineData("SELECT a$b; SELECT 2", 2)]
    [InlineData("SELECT /* /* nested ; */ ; */ 1", 1)]
    [InlineData("SELECT \"a;b\"", 1)]
    [InlineData("SELECT 'a\\'; SELECT 2 --'", 2)]
    public void The_postgres_lexer_counts_statements(string sql, int expected)
    {
        Assert.Equal(expected, SqlText.Split(sql, Caravan.Api.Connectors.Postgres.PostgresQueryEngine.Dialect).Count);
    }

    [Theory]
    [InlineData("SELECT 1 # ; comment", 1)]
    [InlineData("SELECT `a;b` FROM t", 1)]
    [InlineData("SELECT 'it''s;' ", 1)]
    [InlineData("SELECT 'it\\'s;' ", 2)] // one statement unless NO_BACKSLASH_ESCAPES is on: both readings must agree
    [InlineData("SELECT 1--1; SELECT 2", 2)]
    [InlineData("SELECT 1 /*!50000 ; */", 1)]
    [InlineData("SELECT 1 /*!50000 ; SELECT 2 */", 2)]
    [InlineData("SELECT 1 /*M!100000 ; SELECT 2 */", 2)]
    public void The_mysql_lexer_counts_statements(string sql, int expected)
    {
        Assert.Equal(expected, SqlText.Split(sql, Caravan.Api.Connectors.MySql.MySqlQueryEngine.Dialect).Count);
    }

    [Fact]
    public void The_first_statement_is_sent_without_its_semicolon_and_trailing_comment()
    {
        Assert.Equal("SELECT 1", SqlText.Split("SELECT 1; -- done", Caravan.Api.Connectors.Postgres.PostgresQueryEngine.Dialect).First);
    }
}
