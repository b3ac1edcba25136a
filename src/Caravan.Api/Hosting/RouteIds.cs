using System.Globalization;

namespace Caravan.Api.Hosting;

/// <summary>The <c>{id}</c> of a route, as camelAI declares it: a string, of which only a positive integer names anything.</summary>
internal static class RouteIds
{
    /// <summary>A source id is a positive integer; anything else is simply not found.</summary>
    public static long? Parse(string id) =>
        id.Length is > 0 and <= 18 && id.All(char.IsAsciiDigit) && long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : null;
}
