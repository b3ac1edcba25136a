using System.Globalization;
using System.Text;

namespace Caravan.Api.Connectors;

/// <summary>Lexical pieces shared by the connection string parsers.</summary>
internal static class ConnectionStringSyntax
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Decodes %XX escapes. Unlike <see cref="Uri.UnescapeDataString(string)"/>, a malformed escape
    /// or invalid UTF-8 fails instead of passing through, and '+' stays '+' as libpq and the
    /// MongoDB drivers read it.
    /// </summary>
    public static bool TryPercentDecode(string value, out string decoded)
    {
        decoded = value;
        var bytes = new List<byte>(value.Length);
        try
        {
            var i = 0;
            while (i < value.Length)
            {
                if (value[i] != '%')
                {
                    var next = value.IndexOf('%', i);
                    next = next < 0 ? value.Length : next;
                    bytes.AddRange(StrictUtf8.GetBytes(value, i, next - i));
                    i = next;
                    continue;
                }

                // libpq refuses %00 because its strings are NUL-terminated; the drivers that would
                // later receive the value may do the same.
                if (i + 2 >= value.Length
                    || !byte.TryParse(value.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b)
                    || b == 0)
                {
                    return false;
                }

                bytes.Add(b);
                i += 3;
            }

            decoded = StrictUtf8.GetString([.. bytes]);
            return true;
        }
        catch (Exception e) when (e is EncoderFallbackException or DecoderFallbackException)
        {
            // Lone surrogates in the input, or escapes that do not form UTF-8.
            return false;
        }
    }

    /// <summary>Parses a TCP port: ASCII digits only (no sign, no spaces), 1 to 65535.</summary>
    public static bool TryParsePort(string value, out int port)
    {
        port = 0;
        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return value.Length > 0
            && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out port)
            && port is >= 1 and <= 65535;
    }

    /// <summary>Parameter names in URI query strings and libpq key/value strings.</summary>
    public static bool IsParameterName(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>
    /// Splits a URI query into decoded, lower-cased key/value pairs; false when a pair has no '=',
    /// the name is not a parameter name, or an escape is malformed.
    /// </summary>
    public static bool TryReadQuery(string query, List<KeyValuePair<string, string>> pairs)
    {
        foreach (var segment in query.Split('&'))
        {
            // Empty segments come from "a=1&&b=2" or a trailing '&', which both libpq and the
            // MongoDB drivers tolerate.
            if (segment.Length == 0)
            {
                continue;
            }

            var equals = segment.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0
                || !TryPercentDecode(segment[..equals], out var key)
                || !IsParameterName(key)
                || !TryPercentDecode(segment[(equals + 1)..], out var value))
            {
                return false;
            }

            pairs.Add(new(key.ToLowerInvariant(), value));
        }

        return true;
    }
}
