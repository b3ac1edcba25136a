using System.Collections;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace Caravan.Api.Query;

/// <summary>
/// Turns what a driver returns into the few kinds a sink writes (null, bool, integer, decimal,
/// double, string, <see cref="RawJson"/>, list), the same way for every database: times as RFC 3339
/// text, binary as base64, JSON columns as JSON.
/// </summary>
public static class QueryValues
{
    public static object? Normalize(object? value, string typeName)
    {
        switch (value)
        {
            case null or DBNull:
                return null;
            case bool or long or ulong or decimal or double or string or RawJson:
                return value is string text && IsJsonType(typeName) ? new RawJson(text) : value;
            case int or short or sbyte or byte or ushort or uint:
                return Convert.ToInt64(value, CultureInfo.InvariantCulture);
            case float single:
                return (double)single;
            case BigInteger big:
                return big >= long.MinValue && big <= long.MaxValue ? (long)big : big.ToString(CultureInfo.InvariantCulture);
            case DateTime time when time.Kind == DateTimeKind.Utc || typeName.Contains("time zone", StringComparison.OrdinalIgnoreCase)
                && !typeName.Contains("without", StringComparison.OrdinalIgnoreCase):
                return time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
            case DateTime time when typeName.Equals("date", StringComparison.OrdinalIgnoreCase) && time.TimeOfDay == TimeSpan.Zero:
                return time.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            case DateTime time:
                return time.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture);
            case DateTimeOffset offset:
                return offset.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
            case DateOnly date:
                return date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            case TimeOnly time:
                return time.ToString("HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture);
            case TimeSpan span:
                return span.ToString("c", CultureInfo.InvariantCulture);
            case Guid guid:
                return guid.ToString("D");
            case byte[] bytes:
                return Convert.ToBase64String(bytes);
            case char character:
                return character.ToString();
            case IEnumerable items when value is not string:
                var list = new List<object?>();
                foreach (var item in items)
                {
                    list.Add(Normalize(item, string.Empty));
                }

                return list;
            case IFormattable formattable:
                return formattable.ToString(null, CultureInfo.InvariantCulture);
            default:
                return value.ToString();
        }
    }

    public static bool IsJsonType(string typeName) =>
        typeName.Equals("json", StringComparison.OrdinalIgnoreCase) || typeName.Equals("jsonb", StringComparison.OrdinalIgnoreCase);

    /// <summary>About how many bytes a value takes in a JSON answer: what the result byte cap counts.</summary>
    public static long EstimateBytes(object? value) => value switch
    {
        null => 4,
        bool => 5,
        long or ulong or double or decimal => 20,
        string text => Encoding.UTF8.GetByteCount(text) + 2,
        RawJson json => Encoding.UTF8.GetByteCount(json.Text),
        IReadOnlyList<object?> list => 2 + list.Sum(EstimateBytes) + list.Count,
        _ => 16,
    };

    /// <summary>The <c>columns</c> member of a result: each column's name and database type, in order.</summary>
    public static void WriteColumns(Utf8JsonWriter json, IReadOnlyList<QueryColumn> columns)
    {
        json.WriteStartArray("columns");
        foreach (var column in columns)
        {
            json.WriteStartObject();
            json.WriteString("name", column.Name);
            json.WriteString("type", column.Type);
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    /// <summary>
    /// The members after the rows: <c>row_count</c>, <c>truncated</c>, <c>duration_ms</c> (the
    /// contract's), and <c>truncated_by</c>, naming the limit, only when the result was cut, so a
    /// whole answer keeps exactly the contract's shape.
    /// </summary>
    public static void WriteSummary(Utf8JsonWriter json, QuerySummary summary)
    {
        json.WriteNumber("row_count", summary.RowCount);
        json.WriteBoolean("truncated", summary.Truncated);
        if (summary.TruncatedBy is { } limit)
        {
            json.WriteString("truncated_by", limit);
        }

        json.WriteNumber("duration_ms", summary.DurationMs);
    }

    public static void WriteJson(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case bool flag:
                writer.WriteBooleanValue(flag);
                break;
            case long number:
                writer.WriteNumberValue(number);
                break;
            case ulong number:
                writer.WriteNumberValue(number);
                break;
            case decimal number:
                writer.WriteNumberValue(number);
                break;
            case double number when double.IsFinite(number):
                writer.WriteNumberValue(number);
                break;
            case double number:
                writer.WriteStringValue(number.ToString(CultureInfo.InvariantCulture));
                break;
            case string text:
                writer.WriteStringValue(text);
                break;
            case RawJson json:
                WriteRaw(writer, json.Text);
                break;
            case IReadOnlyList<object?> list:
                writer.WriteStartArray();
                foreach (var item in list)
                {
                    WriteJson(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                writer.WriteStringValue(value.ToString());
                break;
        }
    }

    /// <summary>The text of a CSV field; null for SQL NULL (an empty, unquoted field).</summary>
    public static string? CsvText(object? value) => value switch
    {
        null => null,
        bool flag => flag ? "true" : "false",
        long number => number.ToString(CultureInfo.InvariantCulture),
        ulong number => number.ToString(CultureInfo.InvariantCulture),
        decimal number => number.ToString(CultureInfo.InvariantCulture),
        double number => number.ToString("R", CultureInfo.InvariantCulture),
        string text => text,
        RawJson json => json.Text,
        IReadOnlyList<object?> list => JsonText(list),
        _ => value.ToString(),
    };

    /// <summary>One CSV field as RFC 4180 writes it: quoted when it holds a comma, quote, line break or edge space.</summary>
    public static void AppendCsvField(StringBuilder line, string? text)
    {
        if (text is null)
        {
            return;
        }

        if (text.Length == 0 || text.AsSpan().IndexOfAny(",\"\r\n") >= 0 || char.IsWhiteSpace(text[0]) || char.IsWhiteSpace(text[^1]))
        {
            line.Append('"').Append(text.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
        }
        else
        {
            line.Append(text);
        }
    }

    private static void WriteRaw(Utf8JsonWriter writer, string text)
    {
        try
        {
            writer.WriteRawValue(text, skipInputValidation: false);
        }
        catch (JsonException)
        {
            writer.WriteStringValue(text);
        }
    }

    private static string JsonText(IReadOnlyList<object?> list)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteJson(writer, list);
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
