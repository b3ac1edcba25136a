using System.Security.Cryptography;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>
/// The check that no part of a secret leaves: not the secret, and no run of
/// <see cref="SecretScrubber.FragmentLength"/> or more of its characters either (a message cut in the
/// middle of a secret leaks what comes before the cut), as written or URL- or JSON-escaped.
/// </summary>
public static class SecretFragments
{
    public const int Length = SecretScrubber.FragmentLength;

    private const string Letters = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

    /// <summary>
    /// A secret made to be searched for in fragments: random letters and digits with a '~' at every
    /// third place, so each run of six of its characters holds a '~' between random letters and
    /// appears in nothing else a response or a shared log could hold.
    /// </summary>
    public static string New(int length = 24) =>
        string.Concat(Enumerable.Range(0, length).Select(i => i % 3 == 2 ? '~' : Letters[RandomNumberGenerator.GetInt32(Letters.Length)]));

    /// <summary>The runs of <see cref="Length"/> characters of <paramref name="secret"/> (or of its escaped forms) found in <paramref name="text"/>.</summary>
    public static IEnumerable<string> In(string text, string secret) =>
        Forms(secret)
            .SelectMany(form => Enumerable.Range(0, Math.Max(0, form.Length - Length + 1)).Select(i => form.Substring(i, Length)))
            .Distinct(StringComparer.Ordinal)
            .Where(fragment => text.Contains(fragment, StringComparison.Ordinal));

    /// <summary>Asserts that no fragment of any of the secrets is in any of the texts.</summary>
    public static void AssertNone(IEnumerable<string> texts, IEnumerable<string> secrets, string where)
    {
        var secretList = secrets.ToList();
        Assert.NotEmpty(secretList);
        var leaks = texts
            .SelectMany(text => secretList.SelectMany(secret => In(text, secret).Select(fragment => (fragment, text))))
            .Take(5)
            .ToList();
        Assert.True(leaks.Count == 0, $"Fragments of a secret in {where}:\n" + string.Join("\n", leaks.Select(l => $"\"{l.fragment}\" in: {l.text}")));
    }

    private static IEnumerable<string> Forms(string secret) =>
        new[] { secret, Uri.EscapeDataString(secret), JsonText.Quote(secret)[1..^1] }.Distinct(StringComparer.Ordinal);
}
