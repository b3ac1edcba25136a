using System.Text.RegularExpressions;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.Postgres;

/// <summary>How PostgreSQL receives a query's <c>uid</c> (<c>Caravan__Query__UidSetting</c>), validated at start-up.</summary>
public sealed partial class RowSecurityOptions
{
    public const string Section = QueryOptions.Section;

    /// <summary>The custom <c>prefix.name</c> setting that carries <c>uid</c>, made <c>LOCAL</c> to each statement.</summary>
    public string UidSetting { get; set; } = "caravan.uid";

    public static bool IsValidUidSetting(string? name) => name is { Length: <= 63 } && UidSettingName().IsMatch(name);

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex UidSettingName();
}
