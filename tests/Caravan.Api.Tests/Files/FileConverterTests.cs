using System.Globalization;
using System.Text;
using Caravan.Api.Connectors.Files;
using DuckDB.NET.Data;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// Real files built here, converted, then read back by opening the encrypted database read-only.
/// Every conversion also checks that the work folder is left empty.
/// </summary>
public sealed class FileConverterTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_csv_with_quoted_commas_and_utf8_becomes_one_encrypted_table()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("Sales 2024.csv");
        await File.WriteAllTextAsync(path, """
            id,city,amount,note
            1,"Zürich, CH",10.5,café
            2,"São Paulo, BR",20.25,Zebulonville
            3,"Kraków, PL",30,"say ""hi"", twice"
            """ + "\n", new UTF8Encoding(false), Token);

        var tables = await kit.ConvertFileAsync(path, FileFormat.Csv, cancellationToken: Token);

        Assert.Equal([new ConvertedTable("sales_2024", 3)], tables);
        Assert.Equal(["id BIGINT", "city VARCHAR", "amount DOUBLE", "note VARCHAR"], kit.Columns("sales_2024"));
        Assert.Equal(60.75, kit.Scalar("SELECT sum(amount) FROM sales_2024"));
        Assert.Equal("São Paulo, BR", kit.Scalar("SELECT city FROM sales_2024 WHERE id = 2"));
        Assert.Equal("say \"hi\", twice", kit.Scalar("SELECT note FROM sales_2024 WHERE id = 3"));
        kit.AssertNotInFile("Zebulonville");
        kit.AssertNotInFile("São Paulo");
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task A_semicolon_csv_and_a_tsv_are_split_on_their_delimiter()
    {
        using var kit = new ConversionKit();
        var semicolons = kit.Input("europe.csv");
        await File.WriteAllTextAsync(semicolons, "id;label\n1;a,b\n2;c\n", Token);
        var tabs = kit.Input("export.tsv");
        await File.WriteAllTextAsync(tabs, "n\tlabel\n5\tx,y\n7\tz\n", Token);

        Assert.Equal([new ConvertedTable("europe", 2)], await kit.ConvertFileAsync(semicolons, FileFormat.Csv, kit.Database("one"), Token));
        Assert.Equal([new ConvertedTable("export", 2)], await kit.ConvertFileAsync(tabs, FileFormat.Tsv, kit.Database("two"), Token));

        Assert.Equal("a,b", kit.Scalar("SELECT label FROM europe WHERE id = 1", kit.Database("one")));
        Assert.Equal(12L, kit.Scalar("SELECT sum(n)::BIGINT FROM export", kit.Database("two")));
        Assert.Equal(["n BIGINT", "label VARCHAR"], kit.Columns("export", kit.Database("two")));
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task Ndjson_and_a_json_array_become_tables()
    {
        using var kit = new ConversionKit();
        var lines = kit.Input("events.ndjson");
        await File.WriteAllTextAsync(lines, "{\"id\": 1, \"kind\": \"Zebulonville\"}\n{\"id\": 2, \"kind\": \"b\"}\n{\"id\": 4, \"kind\": null}\n", Token);
        var array = kit.Input("People.json");
        await File.WriteAllTextAsync(array, "[\n {\"name\": \"Ana\", \"age\": 31.5},\n {\"name\": \"Bo\", \"age\": 40}\n]", Token);

        Assert.Equal([new ConvertedTable("events", 3)], await kit.ConvertFileAsync(lines, FileFormat.Json, kit.Database("lines"), Token));
        Assert.Equal([new ConvertedTable("people", 2)], await kit.ConvertFileAsync(array, FileFormat.Json, kit.Database("array"), Token));

        Assert.Equal(7L, kit.Scalar("SELECT sum(id)::BIGINT FROM events", kit.Database("lines")));
        Assert.Equal(71.5, kit.Scalar("SELECT sum(age) FROM people", kit.Database("array")));
        Assert.Equal(["name VARCHAR", "age DOUBLE"], kit.Columns("people", kit.Database("array")));
        kit.AssertNotInFile("Zebulonville", kit.Database("lines"));
        kit.AssertWorkDirectoryEmpty();
    }

    [Theory]
    [InlineData("single.ndjson", "{\"n\": 1}\n{\"n\": 2}\n")]
    [InlineData("single.json", "[{\"n\": 1}, {\"n\": 2}]")]
    public async Task Json_objects_of_a_single_key_become_a_table_of_one_column(string name, string content)
    {
        using var kit = new ConversionKit();
        var path = kit.Input(name);
        await File.WriteAllTextAsync(path, content, Token);

        // Bounded: a conversion that never ends would hold its replica's conversions for ever.
        var tables = await kit.ConvertFileAsync(path, FileFormat.Json, cancellationToken: Token).WaitAsync(TimeSpan.FromSeconds(60), Token);

        Assert.Equal([new ConvertedTable("single", 2)], tables);
        Assert.Equal(3L, kit.Scalar("SELECT sum(n)::BIGINT FROM single"));
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task Json_integers_are_signed_as_DuckDB_reads_them_even_past_the_rows_their_types_are_guessed_from()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("counts.ndjson");
        var lines = Enumerable.Range(1, 25_000).Select(i => $$"""{"n": {{(i == 25_000 ? -7 : i)}}, "part": {"m": {{i % 5}}}, "list": [{{i % 3}}]}""");
        await File.WriteAllLinesAsync(path, lines, Token);

        var tables = await kit.ConvertFileAsync(path, FileFormat.Json, cancellationToken: Token);

        Assert.Equal([new ConvertedTable("counts", 25_000)], tables);
        Assert.Equal(["n BIGINT", "part STRUCT(m BIGINT)", "list BIGINT[]"], kit.Columns("counts"));
        Assert.Equal(-17L, kit.Scalar("SELECT min(n - 10) FROM counts"));
        Assert.Equal(-5L, kit.Scalar("SELECT min(part.m - 5) FROM counts"));
    }

    [Fact]
    public async Task A_parquet_file_becomes_a_table_and_its_plaintext_copy_is_removed()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("metrics.parquet");
        TestFiles.Parquet(path, "SELECT i AS id, 'Zebulon-' || i AS label, i * 0.5 AS score FROM range(5000) t(i)");

        var tables = await kit.ConvertFileAsync(path, FileFormat.Parquet, cancellationToken: Token);

        Assert.Equal([new ConvertedTable("metrics", 5000)], tables);
        Assert.Equal(5000m * 4999 / 2 * 0.5m, Convert.ToDecimal(kit.Scalar("SELECT sum(score) FROM metrics"), CultureInfo.InvariantCulture));
        Assert.Equal(["id BIGINT", "label VARCHAR", "score DECIMAL(21,1)"], kit.Columns("metrics"));
        kit.AssertNotInFile("Zebulon-4321");
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task A_workbook_gives_one_table_per_sheet_with_typed_columns()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("Q Report.xlsx");
        TestFiles.Xlsx(path,
            ("Q1 Sales", [
                ["Name", "Amount", "When", "Paid", "Units"],
                ["Zebulonville", 10.25, new DateTime(2024, 3, 1), true, 3.0],
                ["Ana", 20.5, new DateTime(2024, 3, 2), false, 4.0],
                [null, null, null, null, null],
                ["Bo", 1.0, new DateTime(2024, 3, 31), true, 5.0],
            ]),
            ("Notes", [
                ["Text", null, "text", "Mixed"],
                ["first", "x", "y", 1.0],
                ["second", null, "z", "two"],
            ]),
            ("Empty", []));

        var tables = await kit.ConvertFileAsync(path, FileFormat.Xlsx, cancellationToken: Token);

        Assert.Equal([new ConvertedTable("q_report_q1_sales", 3), new ConvertedTable("q_report_notes", 2)], tables);
        Assert.Equal(["Name VARCHAR", "Amount DOUBLE", "When TIMESTAMP", "Paid BOOLEAN", "Units BIGINT"], kit.Columns("q_report_q1_sales"));
        Assert.Equal(31.75, kit.Scalar("SELECT sum(Amount) FROM q_report_q1_sales"));
        Assert.Equal(12L, kit.Scalar("SELECT sum(Units)::BIGINT FROM q_report_q1_sales"));
        Assert.Equal(new DateTime(2024, 3, 31), kit.Scalar("SELECT max(\"When\") FROM q_report_q1_sales"));
        Assert.Equal(2L, kit.Scalar("SELECT count(*) FROM q_report_q1_sales WHERE Paid"));
        Assert.Equal(["Text VARCHAR", "column_2 VARCHAR", "text_2 VARCHAR", "Mixed VARCHAR"], kit.Columns("q_report_notes"));
        Assert.Equal("1", kit.Scalar("SELECT Mixed FROM q_report_notes WHERE Text = 'first'"));
        kit.AssertNotInFile("Zebulonville");
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task A_sheet_with_values_under_an_empty_first_row_is_refused_by_name()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("sales.xlsx");
        TestFiles.Xlsx(path, ("Ok", [["a"], ["1"]]), ("Q1", [[null, null], ["Zebulonville", 5.0]]));

        var error = await Assert.ThrowsAsync<FileConversionException>(() => kit.ConvertFileAsync(path, FileFormat.Xlsx, cancellationToken: Token));

        Assert.Equal("sales.xlsx: sheet 'Q1' has no header row (its first row is empty).", error.Message);
        Assert.False(File.Exists(kit.Database()));
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task A_sqlite_file_gives_one_table_per_user_table_with_types_from_its_values()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("shop.sqlite");
        TestFiles.Sqlite(path, """"
            PRAGMA journal_mode = WAL;
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, balance REAL, joined DATE, photo BLOB);
            INSERT INTO customers VALUES (1, 'Zebulonville', 10.5, '2024-01-02', x'0102'), (2, 'Ana', 2, NULL, NULL), (3, NULL, NULL, '2024-02-03', x'03');
            CREATE TABLE "Order Items" (id INTEGER, qty INTEGER, extra, "Weird ""name""" NUMERIC);
            INSERT INTO "Order Items" VALUES (1, 5, 7, 1), (2, 6, 'seven', 2.5), (3, NULL, NULL, NULL);
            CREATE TABLE empty_one (a INTEGER, b TEXT);
            CREATE INDEX items_qty ON "Order Items" (qty);
            """");

        var tables = await kit.ConvertFileAsync(path, FileFormat.Sqlite, cancellationToken: Token);

        Assert.Equal([new ConvertedTable("shop_customers", 3), new ConvertedTable("shop_order_items", 3), new ConvertedTable("shop_empty_one", 0)], tables);
        Assert.Equal(["id BIGINT", "name VARCHAR", "balance DOUBLE", "joined VARCHAR", "photo BLOB"], kit.Columns("shop_customers"));
        Assert.Equal(["id BIGINT", "qty BIGINT", "extra VARCHAR", "Weird \"name\" DOUBLE"], kit.Columns("shop_order_items"));
        Assert.Equal(["a BIGINT", "b VARCHAR"], kit.Columns("shop_empty_one"));
        Assert.Equal(12.5, kit.Scalar("SELECT sum(balance) FROM shop_customers"));
        Assert.Equal(11L, kit.Scalar("SELECT sum(qty)::BIGINT FROM shop_order_items"));
        Assert.Equal("7|seven", kit.Scalar("SELECT string_agg(extra, '|' ORDER BY id) FROM shop_order_items"));
        Assert.Equal(3.5, kit.Scalar("SELECT sum(\"Weird \"\"name\"\"\") FROM shop_order_items"));
        Assert.Equal(new byte[] { 1, 2 }, ReadBlob(kit, "SELECT photo FROM shop_customers WHERE id = 1"));
        kit.AssertNotInFile("Zebulonville");
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task Names_taken_twice_in_one_file_get_suffixes()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("book.xlsx");
        TestFiles.Xlsx(path, ("A b", [["x"], ["1"]]), ("a-B", [["x"], ["2"]]), ("A_B", [["x"], ["3"]]));

        var tables = await kit.ConvertFileAsync(path, FileFormat.Xlsx, cancellationToken: Token);

        Assert.Equal(["book_a_b", "book_a_b_2", "book_a_b_3"], tables.Select(t => t.Name));
        Assert.Equal("3", kit.Scalar("SELECT x FROM book_a_b_3"));
    }

    [Fact]
    public async Task Json_far_larger_than_the_conversions_memory_converts_in_segments()
    {
        // DuckDB keeps what it reads from a pipe until the statement ends: a 30 MB NDJSON through
        // one pipe does not fit in the conversion's 64 MB. Segments of their own pipes do.
        using var kit = new ConversionKit();
        const int count = 400_000;
        var lines = kit.Input("big.ndjson");
        await using (var writer = new StreamWriter(lines, false, new UTF8Encoding(false)))
        {
            for (var i = 0; i < count; i++)
            {
                await writer.WriteAsync($"{{\"id\": {i}, \"label\": \"row {i} with a ] and a }} and a \\\" inside\", \"tags\": [\"a\", \"b\"], \"pos\": {{\"x\": {i % 7}}}}}\n");
            }
        }

        var array = kit.Input("big.json");
        await using (var writer = new StreamWriter(array, false, new UTF8Encoding(true)))
        {
            await writer.WriteAsync("[\n");
            for (var i = 0; i < count; i++)
            {
                await writer.WriteAsync($"{(i == 0 ? "" : ",\n")}  {{\n    \"id\": {i},\n    \"label\": \"row {i}, [not] {{an}} array\",\n    \"pos\": {{\n      \"x\": {i % 7}\n    }}\n  }}");
            }

            await writer.WriteAsync("\n]\n");
        }

        Assert.True(new FileInfo(lines).Length > 40_000_000 && new FileInfo(array).Length > 40_000_000);
        Assert.Equal([new ConvertedTable("big", count)], await kit.ConvertFileAsync(lines, FileFormat.Json, kit.Database("lines"), Token));
        Assert.Equal([new ConvertedTable("big", count)], await kit.ConvertFileAsync(array, FileFormat.Json, kit.Database("array"), Token));

        foreach (var database in new[] { kit.Database("lines"), kit.Database("array") })
        {
            Assert.Equal((long)count * (count - 1) / 2, kit.Scalar("SELECT sum(id)::BIGINT FROM big", database));
            Assert.Equal((long)count, kit.Scalar("SELECT count(DISTINCT id) FROM big", database));
            Assert.Equal(((count / 7 * 21) + Enumerable.Range(0, count % 7).Sum()).ToString(CultureInfo.InvariantCulture),
                kit.Scalar("SELECT sum(pos.x)::BIGINT::VARCHAR FROM big", database));
        }

        Assert.Equal("row 123456 with a ] and a } and a \" inside", kit.Scalar("SELECT label FROM big WHERE id = 123456", kit.Database("lines")));
        Assert.Equal("row 399999, [not] {an} array", kit.Scalar("SELECT label FROM big WHERE id = 399999", kit.Database("array")));
        Assert.Equal(["id BIGINT", "label VARCHAR", "tags VARCHAR[]", "pos STRUCT(x BIGINT)"], kit.Columns("big", kit.Database("lines")));
        kit.AssertWorkDirectoryEmpty();
    }

    public static TheoryData<string, string, string> BrokenJson => new()
    {
        { "open.json", "[{\"a\": 1}, {\"a\": 2}", "the array is not closed" },
        { "comma.json", "[{\"a\": 1} {\"a\": 2}]", "a comma is missing after value 1" },
        { "after.json", "[{\"a\": 1}] {\"a\": 2}", "something follows the array" },
        { "cut.ndjson", "{\"a\": 1}\n{\"a\": \"Zebulon", "it ends inside value 2" },
    };

    [Theory]
    [MemberData(nameof(BrokenJson))]
    public async Task Broken_json_structure_is_named_without_a_cell_value(string name, string content, string problem)
    {
        using var kit = new ConversionKit();
        var path = kit.Input(name);
        await File.WriteAllTextAsync(path, content, Token);

        var error = await Assert.ThrowsAsync<FileConversionException>(() => kit.ConvertFileAsync(path, FileFormat.Json, cancellationToken: Token));

        Assert.Equal($"{name}: not a valid JSON file: {problem}.", error.Message);
        Assert.False(File.Exists(kit.Database()));
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task A_json_value_larger_than_8_MB_is_refused_and_a_bad_value_deep_in_the_file_fails_without_hanging()
    {
        using var kit = new ConversionKit();
        var huge = kit.Input("huge.ndjson");
        await File.WriteAllTextAsync(huge, "{\"a\": \"x\"}\n{\"a\": \"" + new string('x', 9 << 20) + "\"}\n", Token);
        var error = await Assert.ThrowsAsync<FileConversionException>(() => kit.ConvertFileAsync(huge, FileFormat.Json, cancellationToken: Token));
        Assert.Equal("huge.ndjson: not a valid JSON file: value 2 is larger than 8 MB.", error.Message);

        // More than one segment of small values, then one whose type does not match.
        var deep = kit.Input("deep.ndjson");
        const int bad = 1_500_000;
        await using (var writer = new StreamWriter(deep))
        {
            for (var i = 1; i < bad; i++)
            {
                await writer.WriteAsync($"{{\"n\": {i}}}\n");
            }

            await writer.WriteAsync("{\"n\": \"Zebulonville\"}\n{\"n\": 1}\n");
        }

        error = await Assert.ThrowsAsync<FileConversionException>(() => kit.ConvertFileAsync(deep, FileFormat.Json, kit.Database("deep"), Token));
        Assert.StartsWith("deep.ndjson: not a valid JSON file: ", error.Message, StringComparison.Ordinal);
        var range = System.Text.RegularExpressions.Regex.Match(error.Message, @"\(in values (\d+) to (\d+)\)\.$");
        Assert.True(range.Success, error.Message);
        Assert.InRange(bad, long.Parse(range.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(range.Groups[2].Value, CultureInfo.InvariantCulture));
        Assert.True(long.Parse(range.Groups[1].Value, CultureInfo.InvariantCulture) > 1, "The second segment's values are named: " + error.Message);
        Assert.Contains("a value does not match the type of its column", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Zebulon", error.Message, StringComparison.Ordinal);
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task A_wrong_key_cannot_open_the_database()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("a.csv");
        await File.WriteAllTextAsync(path, "a\n1\n", Token);
        await kit.ConvertFileAsync(path, FileFormat.Csv, cancellationToken: Token);

        var wrong = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        Assert.ThrowsAny<DuckDBException>(() => FileConverter.OpenReadOnly(kit.Database(), wrong).Dispose());
        Assert.Equal(1L, kit.Scalar("SELECT count(*) FROM a"));
    }

    public static TheoryData<string, FileFormat, byte[]> Corrupt => new()
    {
        { "bad.csv", FileFormat.Csv, "a,b\n1,2\n3,Zebulonville,extra,more\n"u8.ToArray() },
        { "bad.json", FileFormat.Json, "[{\"a\": 1}, {\"a\": Zebulonville"u8.ToArray() },
        { "bad.parquet", FileFormat.Parquet, [.. "PAR1Zebulonville"u8, .. new byte[4000], .. "PAR1"u8] },
        { "bad.sqlite", FileFormat.Sqlite, [.. "SQLite format 3\0"u8, .. new byte[100], .. "Zebulonville"u8, .. new byte[4000]] },
        { "bad.xlsx", FileFormat.Xlsx, [0x50, 0x4B, 0x03, 0x04, .. "Zebulonville"u8, .. new byte[2000]] },
        { "bad.xls", FileFormat.Xls, [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, .. "Zebulonville"u8, .. new byte[2000]] },
    };

    [Theory]
    [MemberData(nameof(Corrupt))]
    public async Task Corrupt_content_is_refused_with_the_file_name_and_no_cell_value(string name, FileFormat format, byte[] content)
    {
        using var kit = new ConversionKit();
        var path = kit.Input(name);
        await File.WriteAllBytesAsync(path, content, Token);

        var error = await Assert.ThrowsAsync<FileConversionException>(() => kit.ConvertFileAsync(path, format, cancellationToken: Token));

        Assert.StartsWith(name + ": ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Zebulon", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(kit.Database()));
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task A_csv_that_fails_while_its_pipe_is_still_being_written_does_not_block_the_writer()
    {
        using var kit = new ConversionKit();
        // DuckDB refuses the third line while some 40 MB are still to come, far more than a pipe holds.
        var conversion = kit.ConvertAsync(FileFormat.Csv, "long.csv",
            () => new RepeatingStream("a,b\n1,2\n3,4,5,6\n"u8.ToArray(), "7,8\n"u8.ToArray(), 40_000_000), cancellationToken: Token);

        await Assert.ThrowsAsync<FileConversionException>(() => conversion.WaitAsync(TimeSpan.FromSeconds(60), Token));
        Assert.False(File.Exists(kit.Database()));
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task Cancelling_a_conversion_leaves_no_file_and_no_blocked_task()
    {
        using var kit = new ConversionKit();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Token);
        var opened = new List<GeneratedCsv>();
        var conversion = kit.ConvertAsync(FileFormat.Csv, "slow.csv", () =>
        {
            var raw = new GeneratedCsv(long.MaxValue, TimeSpan.FromMilliseconds(2));
            opened.Add(raw);
            return raw;
        }, cancellationToken: cancel.Token);
        await Task.Delay(TimeSpan.FromSeconds(1), Token);
        Assert.False(conversion.IsCompleted);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => conversion.WaitAsync(TimeSpan.FromSeconds(60), Token));
        Assert.True(opened[0].BytesRead > 0);
        Assert.False(File.Exists(kit.Database()));
        kit.AssertWorkDirectoryEmpty();
    }

    [Fact]
    public async Task Cancelling_a_sqlite_conversion_removes_its_plaintext_copy()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("big.db");
        TestFiles.Sqlite(path, """
            CREATE TABLE t (id INTEGER, label TEXT);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) INSERT INTO t SELECT i, 'label ' || i FROM n;
            """);

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Token);
        var conversion = kit.ConvertFileAsync(path, FileFormat.Sqlite, cancellationToken: cancel.Token);
        // Cancelled as soon as the plaintext copy is there, while rows are being appended.
        while (!conversion.IsCompleted && !Directory.EnumerateFiles(kit.WorkDirectory, "copy-*", SearchOption.AllDirectories).Any())
        {
            await Task.Delay(5, Token);
        }

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => conversion.WaitAsync(TimeSpan.FromSeconds(60), Token));
        Assert.False(File.Exists(kit.Database()));
        kit.AssertWorkDirectoryEmpty();
    }

    /// <summary>
    /// About 200 MB of CSV, made up as it is read: the pipe copies it through one fixed buffer
    /// (the converter never asks the raw stream for more than that) and every row arrives.
    /// </summary>
    [Fact]
    public async Task A_large_csv_streams_through_one_fixed_buffer()
    {
        using var kit = new ConversionKit();
        const long Rows = 5_800_000;
        var opened = new List<GeneratedCsv>();

        var tables = await kit.ConvertAsync(FileFormat.Csv, "large.csv", () =>
        {
            var raw = new GeneratedCsv(Rows);
            opened.Add(raw);
            return raw;
        }, cancellationToken: Token);

        Assert.Equal([new ConvertedTable("large", Rows)], tables);
        var loaded = opened[^1];
        Assert.True(loaded.BytesRead > 190_000_000, $"only {loaded.BytesRead} bytes generated");
        Assert.All(opened, raw => Assert.InRange(raw.LargestRead, 1, FilePipe.BufferBytes));
        Assert.Equal(GeneratedCsv.AmountSum(Rows), kit.Scalar("SELECT sum(amount)::BIGINT FROM large"));
        kit.AssertWorkDirectoryEmpty();
    }

    /// <summary>
    /// DuckDB without OpenSSL draws each block's GCM nonce from a generator that is not
    /// cryptographic; a repeated nonce under one key breaks GCM. DuckDB's layout
    /// (single_file_block_manager, encryption_functions.cpp): three 4 KiB headers, then blocks of
    /// the block allocation size (256 KiB) each starting with its 12-byte nonce and 16-byte tag.
    /// </summary>
    [Fact]
    public async Task Every_block_of_a_large_encrypted_database_has_its_own_nonce()
    {
        using var kit = new ConversionKit();
        var path = kit.Input("random.csv");
        var random = new Random(11);
        await using (var writer = new StreamWriter(path))
        {
            await writer.WriteLineAsync("id,a,b");
            for (var i = 0; i < 300_000; i++)
            {
                await writer.WriteLineAsync($"{i},{RandomText(random, 24)},{RandomText(random, 40)}");
            }
        }

        await kit.ConvertFileAsync(path, FileFormat.Csv, kit.Database("first"), Token);
        await kit.ConvertFileAsync(path, FileFormat.Csv, kit.Database("second"), Token);

        var first = Nonces(kit.Database("first"));
        var second = Nonces(kit.Database("second"));
        Assert.True(first.Count >= 20, $"only {first.Count} blocks");
        Assert.Equal(first.Count, first.Distinct().Count());
        Assert.DoesNotContain(first, n => n == new string('0', 24));
        // The same content under the same key twice: had the 12 bytes been a function of the
        // block's content rather than random nonces, the two files would share them.
        Assert.Empty(first.Intersect(second));
        Assert.Equal(300_000L, kit.Scalar("SELECT count(*) FROM random", kit.Database("first")));
    }

    private static List<string> Nonces(string database)
    {
        const int HeaderBytes = 3 * 4096;
        const int BlockBytes = 256 * 1024;
        var bytes = File.ReadAllBytes(database);
        Assert.Equal("DUCK", Encoding.ASCII.GetString(bytes, 8, 4));
        Assert.Equal(0, (bytes.Length - HeaderBytes) % BlockBytes);
        var nonces = new List<string>();
        for (var offset = HeaderBytes; offset < bytes.Length; offset += BlockBytes)
        {
            nonces.Add(Convert.ToHexString(bytes, offset, 12));
        }

        return nonces;
    }

    private static string RandomText(Random random, int length) =>
        string.Create(length, random, (span, r) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = (char)('a' + r.Next(26));
            }
        });

    private static byte[] ReadBlob(ConversionKit kit, string sql)
    {
        using var connection = kit.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        using var stream = reader.GetStream(0);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>A prefix, then one line again and again up to <paramref name="length"/> bytes.</summary>
    private sealed class RepeatingStream(byte[] prefix, byte[] line, long length) : ReadOnlyStream
    {
        private long position;

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = 0;
            while (n < count && position < length)
            {
                buffer[offset + n++] = position < prefix.Length ? prefix[position] : line[(position - prefix.Length) % line.Length];
                position++;
            }

            return n;
        }
    }
}
