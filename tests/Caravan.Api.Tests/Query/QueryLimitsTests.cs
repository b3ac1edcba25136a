using System.Diagnostics;
using System.Net;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Query;

/// <summary>Limits that need a Caravan of their own settings: the row ceiling, the byte cap, the per-source cap (memory while streaming: <see cref="MillionRowTests"/>).</summary>
public sealed class QueryLimitsTests
{
    [Fact]
    public async Task Max_rows_is_clamped_to_the_configured_ceiling_and_defaults_to_it_when_lower()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxRowsLimit"] = "50" });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        const string sql = "SELECT g FROM generate_series(1, 1000) g";

        var asked = await org.Http.QueryAsync(id, sql, HttpStatusCode.OK, maxRows: 100_000);
        var unasked = await org.Http.QueryAsync(id, sql, HttpStatusCode.OK);
        var fewer = await org.Http.QueryAsync(id, sql, HttpStatusCode.OK, maxRows: 7);

        Assert.Equal(Enumerable.Range(1, 50), QueryKit.Rows(asked).Select(r => r![0]!.GetValue<int>()));
        Assert.True(asked["truncated"]!.GetValue<bool>());
        Assert.Equal(50, unasked["row_count"]!.GetValue<long>());
        Assert.True(unasked["truncated"]!.GetValue<bool>());
        Assert.Equal(7, fewer["row_count"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("10000001")]
    public async Task A_row_ceiling_out_of_range_stops_the_start_with_a_message_saying_what_to_set(string value)
    {
        var texts = await OwnCaravan.RefusedStartTextsAsync(new Dictionary<string, string?> { ["Caravan:Query:MaxRowsLimit"] = value });

        Assert.Contains(texts, t => t.Contains("Caravan__Query__MaxRowsLimit must be from 1 to 10000000", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_byte_cap_cuts_a_result_and_marks_it_truncated()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxResultBytes"] = "10000" });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var answer = await org.Http.QueryAsync(id, "SELECT repeat('x', 1000) FROM generate_series(1, 100)", HttpStatusCode.OK);

        Assert.True(answer["truncated"]!.GetValue<bool>());
        Assert.InRange(answer["row_count"]!.GetValue<long>(), 5, 10);
    }

    [Fact]
    public async Task Queries_beyond_the_per_source_cap_are_503_with_Retry_After()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan(new Dictionary<string, string?>
        {
            ["Caravan:Query:MaxConcurrentPerSource"] = "1",
            ["Caravan:Query:ConcurrencyWaitMilliseconds"] = "100",
        });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var other = await org.Http.CreateSourceAsync(db.Body());

        var slow = org.Http.QueryAsync(id, QueryKit.Body("SELECT pg_sleep(1.5)"));
        await Task.Delay(500, TestContext.Current.CancellationToken);
        var clock = Stopwatch.StartNew();
        using var busy = await org.Http.QueryAsync(id, QueryKit.Body("SELECT 1"));
        var elsewhere = await org.Http.QueryAsync(other, "SELECT 1", HttpStatusCode.OK);
        using var first = await slow;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
        Assert.Equal("1", busy.Headers.RetryAfter!.ToString());
        Assert.Contains("source_busy", await busy.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(1, elsewhere["row_count"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("caravan.uid", true)]
    [InlineData("camel.uid", true)]
    [InlineData("app.user_id", true)]
    [InlineData("uid", false)]
    [InlineData("a.b.c", false)]
    [InlineData("x.uid; DROP TABLE t", false)]
    [InlineData("1a.uid", false)]
    public void The_uid_setting_must_be_a_prefix_dot_name(string name, bool valid)
    {
        Assert.Equal(valid, Caravan.Api.Connectors.Postgres.RowSecurityOptions.IsValidUidSetting(name));
    }
}
