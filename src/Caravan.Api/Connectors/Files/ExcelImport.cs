using System.Globalization;
using System.Text;
using System.Xml;
using DuckDB.NET.Data;
using ExcelDataReader;
using ExcelDataReader.Exceptions;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// A workbook (.xlsx or .xls), one table per sheet that has cells. The first row is the header;
/// rows with no value are skipped. Two passes over the seekable stream, never a whole sheet in
/// memory: the first finds each column's type over every row, the second appends the rows.
/// </summary>
internal static class ExcelImport
{
    static ExcelImport() =>
        // .xls files name their text's code page (often Windows-1252), which .NET only knows with this provider.
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    public static void Run(FileFormat format, string fileName, string stem, Func<Stream> openRaw, ConversionTarget target, CancellationToken cancellationToken)
    {
        using var stream = openRaw();
        try
        {
            using var reader = format == FileFormat.Xls
                ? ExcelReaderFactory.CreateBinaryReader(stream)
                : ExcelReaderFactory.CreateOpenXmlReader(stream);
            var sheets = Plan(fileName, reader, cancellationToken);
            reader.Reset();
            var index = 0;
            do
            {
                var sheet = sheets[index++];
                if (sheet.Columns.Count > 0)
                {
                    Append(reader, sheet, target, TableName(target, stem, sheet.Name), cancellationToken);
                }
            }
            while (index < sheets.Count && reader.NextResult());
        }
        catch (Exception exception) when (exception is ExcelReaderException or InvalidDataException or XmlException or FormatException
                                              or NotSupportedException or IndexOutOfRangeException or ArgumentOutOfRangeException or InvalidCastException)
        {
            throw new FileConversionException($"{fileName}: not a readable {(format == FileFormat.Xls ? "Excel 97-2003 (.xls)" : "Excel (.xlsx)")} workbook.", exception);
        }
    }

    private static string TableName(ConversionTarget target, string stem, string sheet) => target.Claim(FileFormats.TableName(stem, sheet));

    /// <summary>The first pass: every sheet's header and the type of each of its columns.</summary>
    private static List<Sheet> Plan(string fileName, IExcelDataReader reader, CancellationToken cancellationToken)
    {
        var sheets = new List<Sheet>();
        do
        {
            var width = reader.FieldCount;
            string?[]? header = null;
            var kinds = new Kinds[width];
            var rows = 0L;
            while (reader.Read())
            {
                if (header is null)
                {
                    header = new string?[width];
                    for (var i = 0; i < width; i++)
                    {
                        header[i] = HeaderText(reader.GetValue(i));
                    }

                    continue;
                }

                var any = false;
                for (var i = 0; i < width; i++)
                {
                    var kind = KindOf(reader.GetValue(i));
                    kinds[i] |= kind;
                    any |= kind != Kinds.None;
                }

                if (any && ++rows % 4096 == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }

            sheets.Add(Columns(fileName, reader.Name, header ?? [], kinds, rows));
        }
        while (reader.NextResult());

        return sheets;
    }

    private static Sheet Columns(string fileName, string name, string?[] header, Kinds[] kinds, long rows)
    {
        var headed = header.Any(h => h is not null);
        if (!headed)
        {
            // A sheet without cells is left out; one with values under an empty first row cannot be named.
            return rows == 0 ? new Sheet(name, [])
                : throw new FileConversionException($"{fileName}: sheet '{name}' has no header row (its first row is empty).");
        }

        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var columns = new List<Column>();
        for (var i = 0; i < header.Length; i++)
        {
            if (header[i] is null && kinds[i] == Kinds.None)
            {
                continue; // A formatted but empty column at the sheet's edge.
            }

            var title = header[i] ?? $"column_{i + 1}";
            var unique = title;
            for (var n = 2; !taken.Add(unique); n++)
            {
                unique = $"{title}_{n}";
            }

            columns.Add(new Column(i, unique, TypeOf(kinds[i])));
        }

        return new Sheet(name, columns);
    }

    /// <summary>The second pass over one sheet: creates its table and appends its rows.</summary>
    private static void Append(IExcelDataReader reader, Sheet sheet, ConversionTarget target, string table, CancellationToken cancellationToken)
    {
        var definition = string.Join(", ", sheet.Columns.Select(c => $"{ConversionTarget.Quote(c.Name)} {SqlType(c.Type)}"));
        target.Execute($"CREATE TABLE {ConversionTarget.Qualified(table)} ({definition})");
        using var appender = target.CreateAppender(table);
        var header = true;
        var rows = 0L;
        while (reader.Read())
        {
            if (header)
            {
                header = false;
                continue;
            }

            if (sheet.Columns.All(c => KindOf(reader.GetValue(c.Index)) == Kinds.None))
            {
                continue;
            }

            var row = appender.CreateRow();
            foreach (var column in sheet.Columns)
            {
                AppendCell(row, column.Type, reader.GetValue(column.Index));
            }

            row.EndRow();
            if (++rows % 4096 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    private static void AppendCell(IDuckDBAppenderRow row, ColumnType type, object? value)
    {
        if (KindOf(value) == Kinds.None)
        {
            row.AppendNullValue();
            return;
        }

        switch (type)
        {
            case ColumnType.BigInt:
                row.AppendValue((long)System.Convert.ToDouble(value, CultureInfo.InvariantCulture));
                break;
            case ColumnType.Double:
                row.AppendValue(System.Convert.ToDouble(value, CultureInfo.InvariantCulture));
                break;
            case ColumnType.Boolean:
                row.AppendValue((bool)value!);
                break;
            case ColumnType.Timestamp:
                row.AppendValue((DateTime)value!);
                break;
            default:
                row.AppendValue(Text(value!));
                break;
        }
    }

    private static string? HeaderText(object? value) =>
        KindOf(value) == Kinds.None ? null : Text(value!).Trim() is { Length: > 0 } text ? text : null;

    private static string Text(object value) => value switch
    {
        string text => text,
        DateTime time => time.TimeOfDay == TimeSpan.Zero
            ? time.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)
            : time.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static Kinds KindOf(object? value) => value switch
    {
        null or DBNull => Kinds.None,
        string text => text.Length == 0 ? Kinds.None : Kinds.Text,
        bool => Kinds.Boolean,
        DateTime => Kinds.Time,
        double number => IsIntegral(number) ? Kinds.Integer : Kinds.Fraction,
        float number => IsIntegral(number) ? Kinds.Integer : Kinds.Fraction,
        int or long or short or byte => Kinds.Integer,
        decimal number => number == decimal.Truncate(number) && Math.Abs(number) < 9e18m ? Kinds.Integer : Kinds.Fraction,
        _ => Kinds.Text,
    };

    private static bool IsIntegral(double number) => double.IsFinite(number) && number == Math.Floor(number) && Math.Abs(number) < 9e18;

    private static ColumnType TypeOf(Kinds kinds) => kinds switch
    {
        Kinds.Integer => ColumnType.BigInt,
        Kinds.Fraction or Kinds.Integer | Kinds.Fraction => ColumnType.Double,
        Kinds.Boolean => ColumnType.Boolean,
        Kinds.Time => ColumnType.Timestamp,
        _ => ColumnType.Varchar,
    };

    private static string SqlType(ColumnType type) => type switch
    {
        ColumnType.BigInt => "BIGINT",
        ColumnType.Double => "DOUBLE",
        ColumnType.Boolean => "BOOLEAN",
        ColumnType.Timestamp => "TIMESTAMP",
        _ => "VARCHAR",
    };

    [Flags]
    private enum Kinds
    {
        None = 0,
        Integer = 1,
        Fraction = 2,
        Boolean = 4,
        Time = 8,
        Text = 16,
    }

    private enum ColumnType
    {
        Varchar,
        BigInt,
        Double,
        Boolean,
        Timestamp,
    }

    private sealed record Column(int Index, string Name, ColumnType Type);

    private sealed record Sheet(string Name, List<Column> Columns);
}
