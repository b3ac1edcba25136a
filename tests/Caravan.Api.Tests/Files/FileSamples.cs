using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// One file of every format Caravan reads, built here as its own tool writes it, a few thousand
/// rows each, with what the source must then hold: each table's columns and types, its row count,
/// the sums its generators add up to, and the UTF-8 and quoted cells read back exactly.
/// </summary>
internal static class FileSamples
{
    public const int Rows = 4000;

    /// <summary>The workbook's first sheet is smaller: the test's writer holds a sheet in memory.</summary>
    public const int SheetRows = 1500;

    /// <summary>The cells of the CSV's first four rows, by id: quoted commas, accents, emoji, a quoted line break, doubled quotes.</summary>
    public static readonly (string City, string Note)[] SpecialCities =
    [
        ("Zürich, CH", "café ☕"),
        ("São Paulo, BR", "🚀 launch"),
        ("Kraków, PL", "line one\nline two"),
        ("plain", "say \"hi\", twice"),
    ];

    public const string FirstUser = "Zoë 😀";

    public const string FirstLabel = "Zürich, CH 🚀";

    public const string FirstCustomer = "Zürich, CH ☕";

    public static readonly string[][] Notes = [["emoji", "ünïcödé ✓ 🚀"], ["comma", "a, b, c"], ["quote", "say \"hi\""]];

    /// <summary>Each table the files give, with its columns as <c>name TYPE</c> in order, and its rows.</summary>
    public static readonly IReadOnlyDictionary<string, (string File, string[] Columns, long Rows)> Tables =
        new SortedDictionary<string, (string, string[], long)>(StringComparer.Ordinal)
        {
            ["cities"] = ("cities.csv", ["id BIGINT", "city VARCHAR", "note VARCHAR", "amount DOUBLE"], Rows),
            ["events"] = ("events.tsv", ["id BIGINT", "kind VARCHAR", "qty BIGINT"], Rows),
            ["clicks"] = ("clicks.ndjson", ["id BIGINT", "user VARCHAR", "score BIGINT", "geo STRUCT(lat DOUBLE, city VARCHAR)"], Rows),
            ["metrics"] = ("metrics.parquet", ["id BIGINT", "label VARCHAR", "score DOUBLE", "day DATE"], Rows),
            ["budget_q1_plan"] = ("budget.xlsx", ["Region VARCHAR", "Amount DOUBLE", "Month TIMESTAMP", "Approved BOOLEAN", "Units BIGINT"], SheetRows),
            ["budget_notes"] = ("budget.xlsx", ["Topic VARCHAR", "Text VARCHAR"], Notes.Length),
            ["shop_customers"] = ("shop.sqlite", ["id BIGINT", "name VARCHAR", "balance DOUBLE"], Rows),
            ["shop_order_items"] = ("shop.sqlite", ["id BIGINT", "customer_id BIGINT", "qty BIGINT", "price DOUBLE"], 2 * Rows),
        };

    private static readonly Lazy<(string Name, byte[] Content)[]> Built = new(() =>
    [
        ("cities.csv", Encoding.UTF8.GetBytes(Cities())),
        ("events.tsv", Encoding.UTF8.GetBytes(Events())),
        ("clicks.ndjson", Encoding.UTF8.GetBytes(Clicks())),
        ("metrics.parquet", TestFiles.Bytes(path => TestFiles.Parquet(path, $"""
            SELECT i AS id, CASE WHEN i = 1 THEN '{FirstLabel}' ELSE 'metric ' || i END AS label,
                   ((i % 50) * 0.5)::DOUBLE AS score, DATE '2026-01-01' + (i % 365)::INTEGER AS day
            FROM range(1, {Rows + 1}) t(i)
            """))),
        ("budget.xlsx", TestFiles.Bytes(path => TestFiles.Xlsx(path,
            ("Q1 Plan", [["Region", "Amount", "Month", "Approved", "Units"], .. Enumerable.Range(1, SheetRows).Select(PlanRow)]),
            ("Notes", [["Topic", "Text"], .. Notes])))),
        ("shop.sqlite", TestFiles.Bytes(path => TestFiles.Sqlite(path, $"""
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, balance REAL);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {Rows})
            INSERT INTO customers SELECT i, CASE WHEN i = 1 THEN '{FirstCustomer}' ELSE 'customer ' || i END, i * 0.25 FROM n;
            CREATE TABLE "Order Items" (id INTEGER, customer_id INTEGER, qty INTEGER, price REAL);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {2 * Rows})
            INSERT INTO "Order Items" SELECT i, i % {Rows} + 1, i % 9, (i % 4) * 1.5 FROM n;
            """))),
    ]);

    /// <summary>The six files, built once per test run.</summary>
    public static IReadOnlyList<(string Name, byte[] Content)> All => Built.Value;

    /// <summary>
    /// A new FILE source of every sample, in two requests (three files create it, three are added
    /// with <c>POST …/files/</c>), once every file is converted; its id and <c>config.files</c>.
    /// </summary>
    public static async Task<(long Id, JsonArray Files)> UploadAllAsync(HttpClient http)
    {
        using var created = FileKit.Form("Every format", [.. All.Take(3)]);
        var id = (await http.UploadAsync(created).Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();
        using var added = FileKit.Form(null, [.. All.Skip(3)]);
        Assert.Equal(id, (await http.UploadAsync(added, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK))["id"]!.GetValue<long>());
        return (id, await http.ReadyFilesAsync(id));
    }

    /// <summary>What the queries of <see cref="Checks"/> must answer, each computed from the generators above.</summary>
    public static IEnumerable<(string Sql, decimal[] Expected)> Checks()
    {
        var ids = (decimal)Rows * (Rows + 1) / 2;
        yield return ("SELECT count(*), sum(id), sum(amount) FROM cities", [Rows, ids, ids * 0.25m]);
        yield return ("SELECT count(*), sum(qty), count(*) FILTER (WHERE kind = 'click') FROM events",
            [Rows, Sum(1, Rows, i => i % 100), Rows / 3]);
        yield return ("SELECT count(*), sum(score), sum(geo.lat) FROM clicks", [Rows, Sum(1, Rows, i => i % 7), ids * 0.5m]);
        yield return ("SELECT count(*), sum(id), sum(score), count(DISTINCT day) FROM metrics",
            [Rows, ids, Sum(1, Rows, i => i % 50 * 0.5m), 365]);
        yield return ("SELECT count(*), sum(Amount), sum(Units), count(*) FILTER (WHERE Approved) FROM budget_q1_plan",
            [SheetRows, Sum(1, SheetRows, i => i * 0.5m), Sum(1, SheetRows, i => i % 10), SheetRows / 2]);
        yield return ("SELECT count(*) FROM budget_notes", [Notes.Length]);
        yield return ("SELECT count(*), sum(id), sum(balance) FROM shop_customers", [Rows, ids, ids * 0.25m]);
        yield return ("SELECT count(*), sum(qty), sum(price), count(DISTINCT customer_id) FROM shop_order_items",
            [2 * Rows, Sum(1, 2 * Rows, i => i % 9), Sum(1, 2 * Rows, i => i % 4 * 1.5m), Rows]);
    }

    /// <summary>The numbers of a one-row answer, exactly as written (never through a double).</summary>
    public static decimal[] Numbers(JsonNode answer) =>
        [.. Assert.Single(answer["rows"]!.AsArray())!.AsArray().Select(n => decimal.Parse(n!.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture))];

    private static decimal Sum(int from, int to, Func<int, decimal> value) => Enumerable.Range(from, to - from + 1).Sum(value);

    private static string Cities()
    {
        var csv = new StringBuilder("id,city,note,amount\n");
        for (var i = 1; i <= Rows; i++)
        {
            var (city, note) = i <= SpecialCities.Length ? SpecialCities[i - 1] : ($"city {i % 10}", $"note {i}");
            csv.Append(CultureInfo.InvariantCulture, $"{i},{Quoted(city)},{Quoted(note)},{i * 0.25m:0.##}\n");
        }

        return csv.ToString();

        static string Quoted(string cell) => cell.AsSpan().IndexOfAny(",\"\n") >= 0 ? "\"" + cell.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : cell;
    }

    private static string Events()
    {
        var tsv = new StringBuilder("id\tkind\tqty\n");
        for (var i = 1; i <= Rows; i++)
        {
            tsv.Append(CultureInfo.InvariantCulture, $"{i}\t{(i % 3 == 0 ? "click" : "view")}\t{i % 100}\n");
        }

        return tsv.ToString();
    }

    private static string Clicks()
    {
        var lines = new StringBuilder();
        for (var i = 1; i <= Rows; i++)
        {
            var user = i == 1 ? FirstUser : "user " + i.ToString(CultureInfo.InvariantCulture);
            lines.Append(CultureInfo.InvariantCulture, $$$"""{"id": {{{i}}}, "user": "{{{user}}}", "score": {{{i % 7}}}, "geo": {"lat": {{{i * 0.5m:0.0}}}, "city": "c{{{i % 4}}}"}}""").Append('\n');
        }

        return lines.ToString();
    }

    private static object?[] PlanRow(int i) =>
        [i == 1 ? "Zürich, CH" : $"region {i % 5}", i * 0.5, new DateTime(2026, 1, 1).AddDays(i % 90), i % 2 == 0, (double)(i % 10)];
}
