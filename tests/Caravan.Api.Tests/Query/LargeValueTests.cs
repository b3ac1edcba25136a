using System.Globalization;
using System.Net;
using Caravan.Api.Query;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// Issue 12, item 4 read literally: one large value must not cost gigabytes. A real Caravan
/// process (its own memory, measured from outside: the peak resident set, VmHWM) runs four
/// 250 MB values at once through the HTTP route and through MCP <c>run_query</c>, with the
/// default limits; each answer is cut before the value and says which limit cut it. Before each
/// value was bounded, the same took the process from ~110 MB to 3.1 GB (HTTP) and 5.6 GB (MCP)
/// on PostgreSQL, and to 8 GB on ClickHouse.
/// </summary>
[Collection(nameof(MemoryMeasurements))]
public sealed class LargeValueTests : IAsyncLifetime
{
    private const int Parallel = 4;
    private const long PeakBound = 400_000_000;

    private readonly string _directory = CaravanApp.NewDataDirectory();
    private readonly string _key = Unique.ApiKey();
    private CaravanProcess.Server? _server;

    public async ValueTask InitializeAsync()
    {
        var settings = TestStore.NewStoreSettings(_directory);
        settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(_directory, "master.key");
        settings["Caravan:BootstrapApiKey"] = _key;
        var migrated = await CaravanProcess.RunAsync(settings, _directory, "migrate");
        Assert.True(migrated.ExitCode == 0, migrated.Error);
        _server = await CaravanProcess.Server.StartAsync(settings, _directory);
    }

    public ValueTask DisposeAsync()
    {
        _server?.Dispose();
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Four_parallel_250_MB_PostgreSQL_values_leave_the_servers_peak_memory_under_400_MB_over_HTTP_and_MCP()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        using var http = _server!.Client(_key);
        http.Timeout = TimeSpan.FromMinutes(5);
        var id = await http.CreateSourceAsync(db.Body());
        const string sql = "SELECT 1 AS n, repeat('x', 250000000) AS big";
        var before = _server.PeakMemory;

        var answers = await Task.WhenAll(Enumerable.Range(0, Parallel).Select(_ =>
            http.QueryAsync(id, QueryKit.Body(sql, timeoutMs: 120_000)).Expect(HttpStatusCode.OK)));
        var httpPeak = _server.PeakMemory;
        _server.ResetPeakMemory();
        await using var mcp = await McpKit.ConnectAsync(_server.Client(_key), _key);
        var results = await Task.WhenAll(Enumerable.Range(0, Parallel).Select(_ =>
            mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = sql, ["timeout_ms"] = 120_000 })));
        var mcpPeak = _server.PeakMemory;
        var report = string.Create(CultureInfo.InvariantCulture,
            $"peak resident memory: {before / 1_000_000} MB at the start, {httpPeak / 1_000_000} MB over HTTP, {mcpPeak / 1_000_000} MB over MCP");
        TestContext.Current.TestOutputHelper?.WriteLine(report);

        Assert.All(answers, answer =>
        {
            Assert.Equal(["columns", "rows", "row_count", "truncated", "truncated_by", "duration_ms"], answer.AsObject().Select(p => p.Key));
            Assert.Equal(0, answer["row_count"]!.GetValue<long>());
            Assert.True(answer["truncated"]!.GetValue<bool>());
            Assert.Equal("max_result_bytes", answer["truncated_by"]!.GetValue<string>());
        });
        Assert.All(results, result =>
        {
            var content = result.Ok();
            Assert.Equal(0, content.GetProperty("row_count").GetInt64());
            Assert.True(content.GetProperty("truncated").GetBoolean());
            Assert.Equal("max_result_bytes", content.GetProperty("truncated_by").GetString());
            Assert.Contains("max_result_bytes", McpKit.Text(result), StringComparison.Ordinal);
        });
        Assert.True(httpPeak < PeakBound, report);
        Assert.True(mcpPeak < PeakBound, report);
    }

    /// <summary>
    /// ClickHouse's TabSeparated answer tells no length first: a long value is read until the result
    /// has no room left (64 MiB by default), then abandoned. Four at once may so hold up to the
    /// replica's budget for result buffers (256 MiB by default), never the values themselves.
    /// </summary>
    [Fact]
    public async Task Four_parallel_250_MB_ClickHouse_values_cost_at_most_the_replicas_result_budget()
    {
        Assert.SkipWhen(string.IsNullOrEmpty(OtherEngineQueryTests.ClickHouse), "No ClickHouse server configured (./test.sh starts one and sets CARAVAN_TEST_CLICKHOUSE).");
        await using var items = await OtherEngineQueryTests.ClickHouseItems.CreateAsync("one");
        using var http = _server!.Client(_key);
        http.Timeout = TimeSpan.FromMinutes(5);
        var id = await http.CreateSourceAsync(items.Body());
        // 250,000 × 1000 bytes in one line of the TabSeparated answer (ClickHouse 18.16 has no repeat()).
        var sql = $"SELECT 1 AS n, arrayStringConcat(arrayMap(x -> '{new string('x', 1000)}', range(250000))) AS big";
        var before = _server.PeakMemory;

        var answers = await Task.WhenAll(Enumerable.Range(0, Parallel).Select(_ =>
            http.QueryAsync(id, QueryKit.Body(sql, timeoutMs: 120_000)).Expect(HttpStatusCode.OK)));
        var peak = _server.PeakMemory;
        var report = string.Create(CultureInfo.InvariantCulture, $"peak resident memory: {before / 1_000_000} MB at the start, {peak / 1_000_000} MB after");
        TestContext.Current.TestOutputHelper?.WriteLine(report);

        Assert.All(answers, answer =>
        {
            Assert.Equal(0, answer["row_count"]!.GetValue<long>());
            Assert.True(answer["truncated"]!.GetValue<bool>());
            Assert.True(answer["truncated_by"]?.GetValue<string>() is "max_result_bytes" or "max_buffered_result_bytes", answer.ToJsonString());
        });
        Assert.True(peak - before < new QueryOptions().MaxBufferedResultBytes + 64_000_000, report);
    }
}
