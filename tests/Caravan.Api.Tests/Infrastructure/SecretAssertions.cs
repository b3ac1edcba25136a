namespace Caravan.Api.Tests.Infrastructure;

/// <summary>The check that a secret never leaves whole (for fragments of one, see <see cref="SecretFragments"/>).</summary>
public static class SecretAssertions
{
    /// <summary>Asserts that none of the secrets appears in the texts (answers, messages) or in any line the app logged.</summary>
    public static void AssertNoSecrets(this CaravanApp app, IEnumerable<string> texts, params string[] secrets)
    {
        var textList = texts.ToList();

        // An empty secret (a server run without a password) is in every text and cannot leak.
        foreach (var secret in secrets.Where(s => s.Length > 0))
        {
            foreach (var text in textList)
            {
                Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            }

            Assert.DoesNotContain(app.Logs.Lines, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }
}
