using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Hosting;

namespace Caravan.Api.Query;

/// <summary>Checks a query body: every problem is collected, as for every other body of the API.</summary>
public static class QueryRequestReader
{
    private static readonly HashSet<string> Known = new(["sql", "max_rows", "timeout_ms", "uid"], StringComparer.Ordinal);

    /// <summary>Reads a body; <paramref name="maxRowsLimit"/> is the operator's row ceiling (<see cref="QueryOptions.MaxRowsLimit"/>).</summary>
    public static (QueryRequest? Request, ValidationErrors Errors) Read(JsonObject body, int maxRowsLimit)
    {
        var errors = new ValidationErrors();
        foreach (var (name, _) in body)
        {
            if (!Known.Contains(name))
            {
                errors.Add(name, "Not a valid field for a query.");
            }
        }

        string? sql = null;
        if (!body.TryGetPropertyValue("sql", out var sqlNode))
        {
            errors.Add("sql", "This field is required.");
        }
        else if (sqlNode is null)
        {
            errors.Add("sql", "This field may not be null.");
        }
        else if (sqlNode is not JsonValue sqlValue || sqlValue.GetValueKind() != JsonValueKind.String)
        {
            errors.Add("sql", "Not a valid string.");
        }
        else if (string.IsNullOrWhiteSpace(sql = sqlValue.GetValue<string>()))
        {
            errors.Add("sql", "This field may not be blank.");
        }

        var maxRows = PositiveInteger(body, "max_rows", Math.Min(QueryOptions.DefaultMaxRows, maxRowsLimit), maxRowsLimit, errors);
        var timeoutMs = PositiveInteger(body, "timeout_ms", QueryOptions.DefaultTimeoutMs, QueryOptions.TimeoutLimitMs, errors);

        string? uid = null;
        if (body.TryGetPropertyValue("uid", out var uidNode) && uidNode is not null)
        {
            if (uidNode is not JsonValue uidValue || uidValue.GetValueKind() != JsonValueKind.String)
            {
                errors.Add("uid", "Not a valid string.");
            }
            else if ((uid = uidValue.GetValue<string>()).Length == 0)
            {
                errors.Add("uid", "This field may not be blank.");
            }
            else if (uid.Length > QueryOptions.MaxUidLength)
            {
                errors.Add("uid", $"Ensure this field has no more than {QueryOptions.MaxUidLength} characters.");
            }
            else if (uid.Any(c => c == '\0'))
            {
                errors.Add("uid", "Null characters are not allowed.");
            }
        }

        if (sql is not null && sql.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add("sql", "Null characters are not allowed.");
        }

        return errors.IsEmpty ? (new QueryRequest(sql!, maxRows, timeoutMs, uid), errors) : (null, errors);
    }

    /// <summary>A positive integer (a string of digits too, as DRF accepts), clamped to its maximum; absent or null takes the default.</summary>
    private static int PositiveInteger(JsonObject body, string field, int fallback, int maximum, ValidationErrors errors)
    {
        if (!body.TryGetPropertyValue(field, out var node) || node is null)
        {
            return fallback;
        }

        long? number = null;
        if (node is JsonValue value)
        {
            switch (value.GetValueKind())
            {
                case JsonValueKind.Number when value.TryGetValue<long>(out var whole):
                    number = whole;
                    break;
                case JsonValueKind.Number when value.TryGetValue<decimal>(out var big) && decimal.Truncate(big) == big:
                    number = big > 0 ? long.MaxValue : long.MinValue;
                    break;
                case JsonValueKind.String when long.TryParse(value.GetValue<string>().Trim(), System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out var parsed):
                    number = parsed;
                    break;
                case JsonValueKind.String when value.GetValue<string>().Trim() is { Length: > 0 } digits && digits.All(char.IsAsciiDigit):
                    number = long.MaxValue;
                    break;
            }
        }

        if (number is null)
        {
            errors.Add(field, "A valid integer is required.");
            return fallback;
        }

        if (number < 1)
        {
            errors.Add(field, "Ensure this value is greater than or equal to 1.");
            return fallback;
        }

        return (int)Math.Min(number.Value, maximum);
    }
}
