using System.Text;
using Caravan.Api.Connectors.Files;

namespace Caravan.Api.Tests.Files;

public sealed class FileFormatsTests
{
    private static readonly byte[] Png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52];

    private static readonly byte[] Ole2 = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0, 0, 0];

    public static TheoryData<string, string, FileFormat?> Texts => new()
    {
        { "sales.csv", "id,name\n1,a\n", FileFormat.Csv },
        { "sales.CSV", "id;name\n1;a\n", FileFormat.Csv },
        { "sales.tsv", "id\tname\n1\ta\n", FileFormat.Tsv },
        { "sales.tab", "id\tname\n", FileFormat.Tsv },
        { "sales.txt", "id\tname\n1\ta,b\n", FileFormat.Tsv },
        { "sales.txt", "id,name\tx\n", FileFormat.Csv },
        { "sales.txt", "just one column\n", FileFormat.Csv },
        { "export", "id,name\n", FileFormat.Csv },
        { "export", "id\tname\tcity\n", FileFormat.Tsv },
        { "export", "no delimiter at all\n", null },
        { "rows.json", "[{\"a\": 1}]", FileFormat.Json },
        { "rows.jsonl", "{\"a\": 1}\n{\"a\": 2}\n", FileFormat.Json },
        { "rows.ndjson", "{\"a\": 1}\n", FileFormat.Json },
        { "rows.txt", "  \n {\"a\": 1}\n", FileFormat.Json },
        { "rows", "\uFEFF[{\"a\": 1}]", FileFormat.Json },
        // A text file's name decides between CSV and JSON: a .csv starting with '[' is a CSV.
        { "odd.csv", "[a],b\n", FileFormat.Csv },
        { "empty.csv", "", null },
        { "blank.csv", " \r\n\t\n", null },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void Text_files_are_told_apart_by_name_then_first_line(string name, string content, FileFormat? expected) =>
        Assert.Equal(expected, FileFormats.Detect(name, Encoding.UTF8.GetBytes(content)));

    [Fact]
    public void Binary_formats_are_recognised_by_their_magic_bytes_whatever_the_name()
    {
        Assert.Equal(FileFormat.Parquet, FileFormats.Detect("data.parquet", "PAR1\0\0\0\x15"u8));
        Assert.Equal(FileFormat.Parquet, FileFormats.Detect("data.csv", "PAR1\0\0\0\x15"u8));
        Assert.Equal(FileFormat.Sqlite, FileFormats.Detect("shop.db", "SQLite format 3\0\x10\0"u8));
        Assert.Equal(FileFormat.Sqlite, FileFormats.Detect("shop.json", "SQLite format 3\0\x10\0"u8));
        Assert.Equal(FileFormat.Xls, FileFormats.Detect("old.xls", Ole2));
        Assert.Equal(FileFormat.Xls, FileFormats.Detect("old.csv", Ole2));

        var zip = new byte[] { 0x50, 0x4B, 0x03, 0x04, 0x14, 0 };
        Assert.Equal(FileFormat.Xlsx, FileFormats.Detect("book.xlsx", zip));
        Assert.Equal(FileFormat.Xlsx, FileFormats.Detect("book.bin", [.. zip, .. "\0\0xl/workbook.xml"u8]));
        Assert.Null(FileFormats.Detect("archive.zip", zip));
    }

    [Fact]
    public void Anything_else_is_no_format()
    {
        Assert.Null(FileFormats.Detect("photo.png", Png));
        Assert.Null(FileFormats.Detect("photo.csv", Png));
        Assert.Null(FileFormats.Detect("empty.parquet", []));
        Assert.Null(FileFormats.Detect("empty.xlsx", []));

        var random = new byte[FileFormats.HeadBytes];
        new Random(7).NextBytes(random);
        Assert.Null(FileFormats.Detect("noise.csv", random));
        Assert.Null(FileFormats.Detect("noise.json", random));
    }

    [Theory]
    [InlineData("sales.csv", "sales")]
    [InlineData("Sales 2024.csv", "sales_2024")]
    [InlineData("Café Crème.xlsx", "cafe_creme")]
    [InlineData("2024-report.csv", "t_2024_report")]
    [InlineData("a  b--c.TSV", "a_b_c")]
    [InlineData("_already_snake_.csv", "already_snake")]
    [InlineData("data.tar.csv", "data_tar")]
    [InlineData("folder/sub\\name.csv", "name")]
    [InlineData("日本.csv", "file")]
    [InlineData("___.csv", "file")]
    [InlineData(".csv", "file")]
    [InlineData("", "file")]
    public void Table_stems_are_lower_case_ascii_words(string fileName, string expected) =>
        Assert.Equal(expected, FileFormats.TableStem(fileName));

    [Fact]
    public void Table_stems_and_part_names_stay_within_63_characters()
    {
        var stem = FileFormats.TableStem(new string('x', 100) + ".csv");
        Assert.Equal(new string('x', 63), stem);
        Assert.Equal(63, FileFormats.TableName(stem, "Q1").Length);
        Assert.Equal("book_q1_sales", FileFormats.TableName("book", "Q1 Sales"));
        Assert.Equal("book_resume_2024", FileFormats.TableName("book", "Résumé.2024"));
        Assert.Equal("shop_order_items", FileFormats.TableName("shop", "Order \"Items\""));
    }
}
