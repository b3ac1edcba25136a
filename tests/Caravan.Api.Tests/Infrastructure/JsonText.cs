using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>
/// JSON text written without the reflection-based serializer, which is off in this project (so that
/// a type the service sends without it being in its source-generated context fails a test).
/// </summary>
public static class JsonText
{
    /// <summary>
    /// <paramref name="value"/> as a JSON string, quotes included, escaped as the serializer's default
    /// encoder escapes it (or as <paramref name="encoder"/> does).
    /// </summary>
    public static string Quote(string value, JavaScriptEncoder? encoder = null)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = encoder }))
        {
            writer.WriteStringValue(value);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
