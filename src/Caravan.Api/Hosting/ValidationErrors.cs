namespace Caravan.Api.Hosting;

/// <summary>
/// Collects every validation message of one request before answering, keyed by field in the order
/// the problems were found, so a client fixes all of them in one round trip.
/// </summary>
public sealed class ValidationErrors
{
    public const string NonField = "non_field_errors";

    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    public bool IsEmpty => _order.Count == 0;

    public bool Has(string field) => _errors.ContainsKey(field);

    public void Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var messages))
        {
            messages = [];
            _errors[field] = messages;
            _order.Add(field);
        }

        if (!messages.Contains(message, StringComparer.Ordinal))
        {
            messages.Add(message);
        }
    }

    public ErrorBody ToBody()
    {
        var fields = _order.Where(f => f != NonField).ToList();
        var summary = fields.Count switch
        {
            0 when _errors.TryGetValue(NonField, out var general) => general[0],
            1 => $"Invalid value for {fields[0]}.",
            _ => $"Invalid values for {string.Join(", ", fields)}.",
        };

        return new ErrorBody(summary, _order.ToDictionary(f => f, f => (IReadOnlyList<string>)_errors[f], StringComparer.Ordinal));
    }
}
