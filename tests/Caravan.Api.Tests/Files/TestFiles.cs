using System.IO.Compression;
using System.Text;
using DuckDB.NET.Data;
using Microsoft.Data.Sqlite;

namespace Caravan.Api.Tests.Files;

/// <summary>Real data files written the way their own tools write them, for the converter's tests and the routes' alike.</summary>
internal static class TestFiles
{
    /// <summary>
    /// A minimal .xlsx: a ZIP of the OPC parts Excel itself needs, sheets given as rows of cells
    /// (string, double, bool, DateTime or null). Strings go in as inline strings, except the
    /// first sheet's header, which uses the shared string table, so both paths are read. Dates
    /// are serial numbers with a date style (numFmtId 14), as Excel stores them.
    /// </summary>
    public static void Xlsx(string path, params (string Name, object?[][] Rows)[] sheets)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Part(string name, string xml)
        {
            using var writer = new StreamWriter(zip.CreateEntry(name).Open(), new UTF8Encoding(false));
            writer.Write(xml);
        }

        const string Main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        const string Rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
        Part("[Content_Types].xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
            <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
            <Default Extension="xml" ContentType="application/xml"/>
            <Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
            <Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
            <Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
            {string.Concat(sheets.Select((_, i) => $"<Override PartName=\"/xl/worksheets/sheet{i + 1}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"))}
            </Types>
            """);
        Part("_rels/.rels", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
            <Relationship Id="rId1" Type="{Rel}/officeDocument" Target="xl/workbook.xml"/>
            </Relationships>
            """);
        Part("xl/workbook.xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <workbook xmlns="{Main}" xmlns:r="{Rel}"><sheets>
            {string.Concat(sheets.Select((s, i) => $"<sheet name=\"{Escape(s.Name)}\" sheetId=\"{i + 1}\" r:id=\"rId{i + 1}\"/>"))}
            </sheets></workbook>
            """);
        Part("xl/_rels/workbook.xml.rels", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
            {string.Concat(sheets.Select((_, i) => $"<Relationship Id=\"rId{i + 1}\" Type=\"{Rel}/worksheet\" Target=\"worksheets/sheet{i + 1}.xml\"/>"))}
            <Relationship Id="rId{sheets.Length + 1}" Type="{Rel}/styles" Target="styles.xml"/>
            <Relationship Id="rId{sheets.Length + 2}" Type="{Rel}/sharedStrings" Target="sharedStrings.xml"/>
            </Relationships>
            """);
        Part("xl/styles.xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <styleSheet xmlns="{Main}">
            <fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>
            <fills count="1"><fill><patternFill patternType="none"/></fill></fills>
            <borders count="1"><border/></borders>
            <cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
            <cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
            </styleSheet>
            """);
        var shared = sheets[0].Rows[0].OfType<string>().ToList();
        Part("xl/sharedStrings.xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <sst xmlns="{Main}" count="{shared.Count}" uniqueCount="{shared.Count}">{string.Concat(shared.Select(s => $"<si><t>{Escape(s)}</t></si>"))}</sst>
            """);
        for (var s = 0; s < sheets.Length; s++)
        {
            var rows = new StringBuilder();
            for (var r = 0; r < sheets[s].Rows.Length; r++)
            {
                rows.Append(System.Globalization.CultureInfo.InvariantCulture, $"<row r=\"{r + 1}\">");
                for (var c = 0; c < sheets[s].Rows[r].Length; c++)
                {
                    var cell = $"{(char)('A' + c)}{r + 1}";
                    rows.Append(sheets[s].Rows[r][c] switch
                    {
                        null => "",
                        string text when s == 0 && r == 0 => $"<c r=\"{cell}\" t=\"s\"><v>{shared.IndexOf(text)}</v></c>",
                        string text => $"<c r=\"{cell}\" t=\"inlineStr\"><is><t>{Escape(text)}</t></is></c>",
                        bool flag => $"<c r=\"{cell}\" t=\"b\"><v>{(flag ? 1 : 0)}</v></c>",
                        DateTime date => $"<c r=\"{cell}\" s=\"1\"><v>{date.ToOADate().ToString(System.Globalization.CultureInfo.InvariantCulture)}</v></c>",
                        double number => $"<c r=\"{cell}\"><v>{number.ToString(System.Globalization.CultureInfo.InvariantCulture)}</v></c>",
                        var other => throw new ArgumentException("No cell for " + other.GetType()),
                    });
                }

                rows.Append("</row>");
            }

            Part($"xl/worksheets/sheet{s + 1}.xml", $"""
                <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
                <worksheet xmlns="{Main}"><sheetData>{rows}</sheetData></worksheet>
                """);
        }
    }

    private static string Escape(string text) => System.Security.SecurityElement.Escape(text);

    /// <summary>A Parquet file written by DuckDB itself: the rows of <paramref name="query"/>.</summary>
    public static void Parquet(string path, string query)
    {
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var command = duck.CreateCommand();
        command.CommandText = $"COPY ({query}) TO '{path.Replace("'", "''", StringComparison.Ordinal)}' (FORMAT parquet)";
        command.ExecuteNonQuery();
    }

    /// <summary>A SQLite database made by running <paramref name="sql"/> on a new file (closed, no pool left holding it).</summary>
    public static void Sqlite(string path, string sql)
    {
        using (var sqlite = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            sqlite.Open();
            using var command = sqlite.CreateCommand();
            command.CommandText = sql;
            command.ExecuteNonQuery();
        }

        SqliteConnection.ClearAllPools();
    }

    /// <summary>The bytes of a file that <paramref name="write"/> writes at the path it is given (a temporary one, removed after).</summary>
    public static byte[] Bytes(Action<string> write)
    {
        var folder = Directory.CreateTempSubdirectory("caravan-test-file-").FullName;
        try
        {
            var path = Path.Combine(folder, "file");
            write(path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
