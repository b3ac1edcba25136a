using System.Security.Cryptography;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>
/// Names and values no other test uses: the tests run in parallel against one shared Caravan and
/// shared database servers, so each makes its own organizations, databases, roles and secrets.
/// </summary>
public static class Unique
{
    /// <summary>
    /// <paramref name="prefix"/> and twelve random lower-case hex digits: with a prefix of letters,
    /// digits and <c>_</c> or <c>-</c>, a name fit for an organization, a database, a role or a schema.
    /// </summary>
    public static string Name(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>
    /// <paramref name="prefix"/> and twenty random hex digits: a password or token so distinctive that
    /// finding it in an answer or a log line can only mean that it leaked.
    /// </summary>
    public static string Secret(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));

    /// <summary>An API key in the form Caravan issues (<c>cvn_</c> and 48 hex digits), for a bootstrap key.</summary>
    public static string ApiKey() => "cvn_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
}
