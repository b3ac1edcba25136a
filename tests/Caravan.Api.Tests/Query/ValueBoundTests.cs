using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Query;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// Values bounded before they are read, the answer naming the limit that cut a result, and the
/// replica's budget for result buffers (<see cref="ResultMemory"/>), on PostgreSQL: a Caravan of
/// each test's own with small limits. The other engines: <see cref="OtherEngineQueryTests"/> and
/// <see cref="RestEngineQueryTests"/>; memory measured from outside: <see cref="LargeValueTests"/>.
/// </summary>
public sealed class ValueBoundTests
{
    // Rows 1 and 2 are small, row 3 holds a 5 MB value, rows 4 and 5 are small again.
    private const string BigThirdValue = "SELECT g, CASE WHEN g = 3 THEN repeat('x', 5000000) ELSE 'small' END AS v FROM generate_series(1, 5) g";

    [Fact]
    public async Task A_value_beyond_the_bytes_left_ends_the_result_before_its_row_and_every_form_names_the_limit()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxResultBytes"] = "100000" });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var json = await org.Http.QueryAsync(id, BigThirdValue, HttpStatusCode.OK);
        using var ndjson = await org.Http.QueryAsync(id, QueryKit.Body(BigThirdValue), "application/x-ndjson");
        var rows = await org.Http.QueryAsync(id, BigThirdValue, HttpStatusCode.OK, maxRows: 1);
        var whole = await org.Http.QueryAsync(id, "SELECT g FROM generate_series(1, 3) g", HttpStatusCode.OK);
        await using var mcp = await McpKit.ConnectAsync(app, org.Key);
        var tool = await mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = BigThirdValue });

        Assert.Equal(["columns", "rows", "row_count", "truncated", "truncated_by", "duration_ms"], json.AsObject().Select(p => p.Key));
        Assert.Equal("""[[1,"small"],[2,"small"]]""", json["rows"]!.ToJsonString());
        Assert.Equal(2, json["row_count"]!.GetValue<long>());
        Assert.True(json["truncated"]!.GetValue<bool>());
        Assert.Equal("max_result_bytes", json["truncated_by"]!.GetValue<string>());
        var last = JsonNode.Parse((await ndjson.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.Equal(["row_count", "truncated", "truncated_by", "duration_ms"], last.AsObject().Select(p => p.Key));
        Assert.Equal("max_result_bytes", last["truncated_by"]!.GetValue<string>());
        Assert.Equal("max_rows", rows["truncated_by"]!.GetValue<string>());
        Assert.Equal(["columns", "rows", "row_count", "truncated", "duration_ms"], whole.AsObject().Select(p => p.Key));
        var content = tool.Ok();
        Assert.Equal(2, content.GetProperty("row_count").GetInt64());
        Assert.Equal("max_result_bytes", content.GetProperty("truncated_by").GetString());
        Assert.Contains("truncated after 2 rows by max_result_bytes", McpKit.Text(tool), StringComparison.Ordinal);
        // The session whose statement was cancelled mid-value serves the next query.
        var after = await org.Http.QueryAsync(id, "SELECT 7 AS seven", HttpStatusCode.OK);
        Assert.Equal(7, QueryKit.Rows(after)[0]![0]!.GetValue<int>());
    }

    [Fact]
    public async Task Values_read_sequentially_keep_their_types_numeric_included()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());

        var answer = await org.Http.QueryAsync(id, """
            SELECT 1234.567::numeric(12,3), -0.000012::numeric, 0::numeric(5,2), 10000::numeric, 12345678.9::numeric,
                   'NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric, 1e30::numeric, 1e-30::numeric,
                   '\x0102ff'::bytea, '<a>x</a>'::xml, ARRAY[1, 2, 3]::int[], '6b4f4ab5-0f9f-4a5e-9a63-1f0c8c2b7a51'::uuid,
                   '{"k": [1, 2]}'::jsonb, NULL::text, 'naïve'::text
            """, HttpStatusCode.OK);

        var row = QueryKit.Rows(answer).Single()!.AsArray();
        Assert.Equal(
            """[1234.567,-0.000012,0.00,10000,12345678.9,"NaN","Infinity","-Infinity",1E+30,1E-30,"AQL/","<a>x</a>",[1,2,3],"6b4f4ab5-0f9f-4a5e-9a63-1f0c8c2b7a51",{"k":[1,2]},null,"naïve"]""",
            row.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }

    [Fact]
    public async Task The_replica_budget_cuts_what_it_cannot_hold_and_counts_MCP_results_until_they_are_answered()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Query:MaxBufferedResultBytes"] = "250000" });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        // Five rows of ~100 kB each; one value larger than the whole budget.
        const string rows = "SELECT g, repeat('x', 100000) AS v FROM generate_series(1, 5) g";

        var streamed = await org.Http.QueryAsync(id, rows, HttpStatusCode.OK);
        var huge = await org.Http.QueryAsync(id, "SELECT 1 AS n, repeat('x', 300000) AS v", HttpStatusCode.OK);
        await using var mcp = await McpKit.ConnectAsync(app, org.Key);
        var clock = Stopwatch.StartNew();
        var kept = await mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = rows });
        var waited = clock.Elapsed;

        // Over HTTP a row is held only until it is written: all five pass a budget of two and a half.
        Assert.Equal(5, streamed["row_count"]!.GetValue<long>());
        Assert.False(streamed["truncated"]!.GetValue<bool>());
        Assert.Equal(0, huge["row_count"]!.GetValue<long>());
        Assert.Equal("max_buffered_result_bytes", huge["truncated_by"]!.GetValue<string>());
        // MCP keeps every row until it answers: the third does not fit beside the first two, and
        // the query waited for others to give back their share before it was cut.
        var content = kept.Ok();
        Assert.Equal(2, content.GetProperty("row_count").GetInt64());
        Assert.Equal("max_buffered_result_bytes", content.GetProperty("truncated_by").GetString());
        Assert.Contains("holding many results at once", McpKit.Text(kept), StringComparison.Ordinal);
        Assert.True(waited >= ResultMemory.Wait, $"took {waited}");
        Assert.Equal(0, app.Services.GetRequiredService<ResultMemory>().Held);
    }

    [Fact]
    public async Task Every_share_of_the_budget_is_given_back_however_the_query_ends()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan();
        var memory = app.Services.GetRequiredService<ResultMemory>();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        await using var mcp = await McpKit.ConnectAsync(app, org.Key);

        // Whole, cut by a limit, kept by MCP, failed after rows were sent, failed before any, timed out mid-result.
        await org.Http.QueryAsync(id, "SELECT g, repeat('x', 1000) FROM generate_series(1, 100) g", HttpStatusCode.OK);
        await org.Http.QueryAsync(id, "SELECT g, repeat('x', 1000) FROM generate_series(1, 100) g", HttpStatusCode.OK, maxRows: 10);
        (await mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT g, repeat('x', 1000) FROM generate_series(1, 100) g" })).Ok();
        var failed = await org.Http.QueryAsync(id, "SELECT g, 1 / (3 - g) FROM generate_series(1, 5) g", HttpStatusCode.OK);
        await org.Http.QueryAsync(id, "SELECT * FROM no_such_table", HttpStatusCode.UnprocessableEntity);
        var slow = await org.Http.QueryAsync(id, QueryKit.Body("SELECT g, CASE WHEN g > 2 THEN pg_sleep(5) END FROM generate_series(1, 5) g", timeoutMs: 1000))
            .Expect(HttpStatusCode.OK);
        Assert.Equal("query_failed", failed["error"]!["code"]!.GetValue<string>());
        Assert.Equal("timeout", slow["error"]!["code"]!.GetValue<string>());
        Assert.Equal(0, memory.Held);

        // The client stops reading mid-result (the row being written waits, counted), then goes away.
        const string endless = "SELECT g, repeat('x', 10000) FROM generate_series(1, 100000) g";
        using (var response = await org.Http.QueryAsync(id, QueryKit.Body(endless, maxRows: 100_000, timeoutMs: 5000)))
        {
            await using var body = await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken);
            var some = new byte[1 << 20];
            await body.ReadAtLeastAsync(some, some.Length, cancellationToken: TestContext.Current.CancellationToken);
            Assert.True(SpinWait.SpinUntil(() => memory.Held > 0, TimeSpan.FromSeconds(5)), "the query should be waiting to write a row");
        }

        Assert.True(SpinWait.SpinUntil(() => memory.Held == 0, TimeSpan.FromSeconds(15)), $"still held: {memory.Held}");
    }

    [Fact]
    public async Task A_share_is_waited_for_briefly_taken_when_given_back_and_never_kept_on_cancellation()
    {
        var memory = new ResultMemory(Options.Create(new QueryOptions { MaxBufferedResultBytes = 1000 }));

        Assert.True(memory.TryTake(800));
        Assert.False(memory.TryTake(300));
        var clock = Stopwatch.StartNew();
        Assert.False(await memory.TakeAsync(300, TestContext.Current.CancellationToken));
        Assert.True(clock.Elapsed >= ResultMemory.Wait - TimeSpan.FromMilliseconds(50), $"gave up after {clock.Elapsed}");
        Assert.False(await memory.TakeAsync(1001, TestContext.Current.CancellationToken));

        var waiting = memory.TakeAsync(300, TestContext.Current.CancellationToken).AsTask();
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);
        memory.Give(500);
        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken));
        Assert.Equal(600, memory.Held);

        using var cancel = new CancellationTokenSource();
        Assert.True(memory.TryTake(400));
        var cancelled = memory.TakeAsync(100, cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(1000, memory.Held);
        memory.Give(1000);
        Assert.Equal(0, memory.Held);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1023")]
    [InlineData("-5")]
    public async Task A_budget_below_1024_bytes_stops_the_start_with_a_message_saying_what_to_set(string value)
    {
        var texts = await OwnCaravan.RefusedStartTextsAsync(new Dictionary<string, string?> { ["Caravan:Query:MaxBufferedResultBytes"] = value });

        Assert.Contains(texts, t => t.Contains("Caravan__Query__MaxBufferedResultBytes must be at least 1024", StringComparison.Ordinal));
    }
}
