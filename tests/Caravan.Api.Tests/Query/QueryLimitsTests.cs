using System.Diagnostics;
using System.Net;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Query;

/// <summary>Limits that need a Caravan of their own settings: memory while streaming, the per-source cap, the byte cap.</summary>
public sealed class QueryLimitsTests
{
    [Fact]
    public async Task A_large_result_streams_with_the_servers_memory_flat()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxResultBytes"] = (1L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        // A million-row statement; the most one answer carries is 100,000 rows, here of ~2 kB each (~200 MB).
        var body = QueryKit.Body("SELECT g, repeat('x', 2000) AS pad FROM generate_series(1, 1000000) g", maxRows: 100_000, timeoutMs: 120_000);
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = 0;
        long received = 0;

        foreach (var accept in new[] { "application/json", "application/x-ndjson", "text/csv" })
        {
            using var response = await org.Http.QueryAsync(id, body, accept);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var stream = await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken);
            var buffer = new byte[64 * 1024];
            long sinceCheck = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, TestContext.Current.CancellationToken)) > 0)
            {
                received += read;
                sinceCheck += read;
                if (sinceCheck > 20_000_000)
                {
                    sinceCheck = 0;
                    peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true) - baseline);
                }
            }
        }

        Assert.True(received > 3 * 190_000_000L, $"received {received} bytes");
        Assert.True(peak < 100_000_000, $"live memory grew by {peak / 1_000_000} MB while streaming");
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
        Assert.Equal(valid, Caravan.Api.Query.QueryOptions.IsValidUidSetting(name));
    }
}
