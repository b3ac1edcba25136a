using System.Diagnostics;
using System.Globalization;
using System.Net;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// Tests that measure the live managed memory of the process: they run alone, after every
/// parallel test, so no other test's data is counted as the server's.
/// </summary>
[CollectionDefinition(nameof(MemoryMeasurements), DisableParallelization = true)]
public sealed class MemoryMeasurements;

/// <summary>
/// The acceptance of issue 6 read literally: a 1,000,000-row result streams through the route in
/// every format, whole, with the server's memory flat. Its Caravan raises the row ceiling to
/// 1,000,000 (the default is 100,000) and the byte cap to 1 GiB (the default 64 MiB would cut it).
/// </summary>
[Collection(nameof(MemoryMeasurements))]
public sealed class MillionRowTests
{
    private const int Rows = 1_000_000;

    // ~210 bytes a row on the wire (> 200 MB a result); held as .NET rows (a 200-character string,
    // a boxed key, an array) they would take ~450 MB, far over the bound.
    private const int PadLength = 200;
    private const long LeastBody = 200_000_000;
    private const long GrowthBound = 100_000_000;
    private const long SampleBytes = 20_000_000;

    [Theory]
    [InlineData("application/json")]
    [InlineData("application/x-ndjson")]
    [InlineData("text/csv")]
    public async Task A_million_row_result_streams_whole_with_the_servers_memory_flat(string accept)
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await using var app = new OwnCaravan(new Dictionary<string, string?>
        {
            ["Caravan:Query:MaxRowsLimit"] = Rows.ToString(CultureInfo.InvariantCulture),
            ["Caravan:Query:MaxResultBytes"] = (1L << 30).ToString(CultureInfo.InvariantCulture),
        });
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        var body = QueryKit.Body($"SELECT g, repeat('x', {PadLength}) AS pad FROM generate_series(1, {Rows}) g", maxRows: Rows, timeoutMs: 120_000);
        var rows = StreamedRows.For(accept, PadLength);
        var samples = new List<long>();

        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        using var response = await org.Http.QueryAsync(id, body, accept);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var stream = await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken);
        await rows.ReadAsync(stream, SampleBytes, () => samples.Add(GC.GetTotalMemory(forceFullCollection: true) - baseline), TestContext.Current.CancellationToken);
        var elapsed = clock.Elapsed;
        var report = $"{rows.Bytes / 1_000_000} MB in {elapsed.TotalSeconds:F1} s; live memory growth in MB, every {SampleBytes / 1_000_000} MB: "
            + string.Join(", ", samples.Select(s => (s / 1e6).ToString("F1", CultureInfo.InvariantCulture)));
        TestContext.Current.TestOutputHelper?.WriteLine(report);

        Assert.Null(rows.Error);
        Assert.Equal(Rows, rows.Rows);
        Assert.Equal(1, rows.FirstKey);
        Assert.Equal(Rows, rows.LastKey);
        Assert.Equal(0, rows.MisshapenRows);
        if (accept == "text/csv")
        {
            Assert.Equal("g,pad", rows.Header);
        }
        else
        {
            Assert.Equal(Rows, rows.RowCount);
            Assert.False(rows.Truncated);
        }

        Assert.True(rows.Bytes > LeastBody, $"received {rows.Bytes} bytes");
        Assert.True(samples.Count >= 10, $"{samples.Count} samples");
        Assert.True(samples.Max() < GrowthBound, report);
    }
}
