using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Caravan.Api.Connectivity;

/// <summary>
/// Removes a source's secrets from text that is about to leave the process, and is the only place
/// that shortens such text, in this order. First every secret is masked whole, and so is every run
/// of <see cref="FragmentLength"/> or more characters that is part of one, wherever it stands (a
/// server may quote a secret cut short, or a cut made before this one may have split it), in each
/// form a server may echo it in: as sent, URL-encoded, JSON- or HTML-escaped, and base64 as in an
/// <c>Authorization: Basic</c> header. Then the text is cut, never inside a mask. A cut made after
/// masking finds no secret left to split, and since masking looked at every run of the whole text,
/// no fragment of one is left at the cut either.
/// </summary>
public sealed class SecretScrubber
{
    public const string Mask = "[redacted]";

    /// <summary>The shortest run of a secret's characters that is masked wherever it appears.</summary>
    public const int FragmentLength = 6;

    /// <summary>Shorter values are not masked: masking every "ab" would ruin messages and protect little.</summary>
    public const int ShortestSecret = 3;

    private const string Ellipsis = "…";

    private readonly string[] _secrets;
    private Masks? _masks;

    /// <param name="secrets">
    /// The secret text itself, not a document around it: a connection string's password, a PEM
    /// key's body (see <c>SourceType.SecretParts</c>), so harmless text such as a host name or a
    /// <c>BEGIN PRIVATE KEY</c> line is not masked.
    /// </param>
    public SecretScrubber(IEnumerable<string?> secrets) =>
        _secrets = [.. secrets.OfType<string>().Where(s => s.Length >= ShortestSecret).Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// The text with every secret and every fragment of one masked, then cut to at most
    /// <paramref name="maxLength"/> characters (and an ellipsis) where it is longer.
    /// </summary>
    public string Scrub(string text, int maxLength = int.MaxValue)
    {
        // Built on first use: most queries never fail, and their scrubber is never asked.
        var masks = _masks ??= Masks.Of(_secrets);
        var masked = masks.Apply(text);
        return masked.Length > maxLength ? Cut(masked, maxLength) + Ellipsis : masked;
    }

    /// <summary>The first <paramref name="length"/> characters or fewer: a cut never halves a mask or a surrogate pair.</summary>
    private static string Cut(string text, int length)
    {
        var at = Math.Max(0, length);
        var mask = text.IndexOf(Mask, Math.Max(0, at - Mask.Length + 1), StringComparison.Ordinal);
        if (mask >= 0 && mask < at)
        {
            at = mask;
        }

        if (at > 0 && char.IsHighSurrogate(text[at - 1]))
        {
            at--;
        }

        return text[..at];
    }

    /// <summary>What to look for: the fragments of the longer secrets, and the shorter ones whole.</summary>
    private sealed class Masks
    {
        private readonly HashSet<string> _fragments = new(StringComparer.Ordinal);

        // The first three characters of every fragment, hashed into 65,536 bits: most windows of a
        // message fail this test and never reach the set.
        private readonly ulong[] _starts = new ulong[1024];

        // Every character of every fragment, one bit each: a window holding another cannot match.
        private readonly ulong[] _chars = new ulong[1024];
        private readonly List<string> _whole = [];

        public static Masks Of(IEnumerable<string> secrets)
        {
            var masks = new Masks();
            foreach (var secret in secrets)
            {
                var fragmented = secret.Length >= FragmentLength;
                var forms = IsWellFormed(secret) ? Forms(secret, fragmented) : [secret];
                foreach (var form in forms.Distinct(StringComparer.Ordinal))
                {
                    if (!fragmented)
                    {
                        masks._whole.Add(form);
                        continue;
                    }

                    for (var i = 0; i + FragmentLength <= form.Length; i++)
                    {
                        var start = Start(form.AsSpan(i));
                        masks._starts[start >> 6] |= 1UL << start;
                        masks._fragments.Add(form.Substring(i, FragmentLength));
                    }

                    foreach (var c in form)
                    {
                        masks._chars[c >> 6] |= 1UL << c;
                    }
                }
            }

            // Longest first, so a short secret inside another is masked with it.
            masks._whole.Sort((a, b) => b.Length.CompareTo(a.Length));
            return masks;
        }

        public string Apply(string text)
        {
            bool[]? hidden = null;
            MarkFragments(text, ref hidden);
            foreach (var form in _whole)
            {
                for (var at = text.IndexOf(form, StringComparison.Ordinal); at >= 0; at = text.IndexOf(form, at + 1, StringComparison.Ordinal))
                {
                    Hide(ref hidden, text.Length, at, form.Length);
                }
            }

            if (hidden is null)
            {
                return text;
            }

            var result = new StringBuilder(text.Length);
            var i = 0;
            while (i < text.Length)
            {
                var span = hidden.AsSpan(i);
                var run = hidden[i] ? span.IndexOf(false) : span.IndexOf(true);
                run = run < 0 ? span.Length : run;
                result.Append(hidden[i] ? Mask : text.AsSpan(i, run));
                i += run;
            }

            return result.ToString();
        }

        private void MarkFragments(string text, ref bool[]? hidden)
        {
            if (_fragments.Count == 0)
            {
                return;
            }

            var lookup = _fragments.GetAlternateLookup<ReadOnlySpan<char>>();
            var i = 0;
            while (i + FragmentLength <= text.Length)
            {
                // A window holding a character that is in no secret cannot match: skip past it.
                var foreign = LastForeign(text, i);
                if (foreign >= 0)
                {
                    i = foreign + 1;
                    continue;
                }

                var start = Start(text.AsSpan(i));
                if ((_starts[start >> 6] & (1UL << start)) != 0 && lookup.Contains(text.AsSpan(i, FragmentLength)))
                {
                    Hide(ref hidden, text.Length, i, FragmentLength);
                }

                i++;
            }
        }

        /// <summary>The position of the last character of the window at <paramref name="start"/> that is in no fragment, or -1.</summary>
        private int LastForeign(string text, int start)
        {
            for (var j = start + FragmentLength - 1; j >= start; j--)
            {
                var c = text[j];
                if ((_chars[c >> 6] & (1UL << c)) == 0)
                {
                    return j;
                }
            }

            return -1;
        }

        private static int Start(ReadOnlySpan<char> window) =>
            (int)((((uint)window[0] * 0x9E3779B1u) ^ ((uint)window[1] * 0x85EBCA77u) ^ ((uint)window[2] * 0xC2B2AE3Du)) >> 16);

        private static void Hide(ref bool[]? hidden, int length, int start, int count)
        {
            hidden ??= new bool[length];
            Array.Fill(hidden, true, start, count);
        }

        /// <summary>A secret as a server may echo it; base64 only for the longer ones (its pieces are what is compared).</summary>
        private static IEnumerable<string> Forms(string secret, bool fragmented)
        {
            yield return secret;
            var escaped = Uri.EscapeDataString(secret);
            yield return escaped;
            yield return LowerHex(escaped);
            yield return escaped.Replace("%20", "+", StringComparison.Ordinal);
            yield return JsonEncodedText.Encode(secret).Value;
            yield return JsonEncodedText.Encode(secret, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value;
            yield return WebUtility.HtmlEncode(secret);
            if (!fragmented)
            {
                yield break;
            }

            // The secret's bytes base64-encoded at each of the three offsets it may have inside a
            // longer value (user:password): only the characters that depend on the secret alone.
            var bytes = Encoding.UTF8.GetBytes(secret);
            for (var offset = 0; offset < 3; offset++)
            {
                var padded = new byte[offset + bytes.Length + 2];
                bytes.CopyTo(padded, offset);
                var first = ((8 * offset) + 5) / 6;
                var end = 8 * (offset + bytes.Length) / 6;
                var encoded = Convert.ToBase64String(padded)[first..end];
                yield return encoded;
                yield return encoded.Replace('+', '-').Replace('/', '_');
            }
        }

        /// <summary>False for text with a lone surrogate, which the encoders refuse (no stored secret has one).</summary>
        private static bool IsWellFormed(string text)
        {
            for (var i = 0; i < text.Length; i++)
            {
                if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    i++;
                }
                else if (char.IsSurrogate(text[i]))
                {
                    return false;
                }
            }

            return true;
        }

        private static string LowerHex(string escaped)
        {
            var chars = escaped.ToCharArray();
            for (var i = 0; i + 2 < chars.Length; i++)
            {
                if (chars[i] == '%')
                {
                    chars[i + 1] = char.ToLowerInvariant(chars[i + 1]);
                    chars[i + 2] = char.ToLowerInvariant(chars[i + 2]);
                    i += 2;
                }
            }

            return new string(chars);
        }
    }
}
