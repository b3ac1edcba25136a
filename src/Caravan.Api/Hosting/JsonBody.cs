using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Hosting;

public sealed class LimitsOptions
{
    public const string Section = "Caravan:Limits";

    /// <summary>Largest request body accepted, in bytes (1 MiB by default).</summary>
    public int MaxBodyBytes { get; set; } = 1024 * 1024;
}

/// <summary>
/// Reads a request body as one JSON object, answering the contract's 413/415/400 shapes itself.
/// Bodies are parsed by hand rather than bound to records because the contract needs to see every
/// field the client sent: unknown fields, explicit nulls and wrong JSON types are all errors.
/// </summary>
internal static class JsonBody
{
    private static readonly JsonDocumentOptions ParseOptions = new()
    {
        MaxDepth = 64,
        AllowDuplicateProperties = false,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    public static async Task<BodyResult> ReadObjectAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var limit = request.HttpContext.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.MaxBodyBytes;
        if (request.ContentLength > limit)
        {
            return BodyResult.Fail(TooLarge());
        }

        var bytes = await ReadAtMostAsync(request.Body, limit + 1, cancellationToken);
        if (bytes.Length > limit)
        {
            return BodyResult.Fail(TooLarge());
        }

        if (IsBlank(bytes))
        {
            // DRF treats an empty body as an empty form: the fields are simply absent.
            return BodyResult.Ok([]);
        }

        if (!IsJsonContentType(request.ContentType))
        {
            return BodyResult.Fail(ApiResults.Detail(
                StatusCodes.Status415UnsupportedMediaType,
                $"Unsupported media type \"{MediaTypeForMessage(request.ContentType)}\" in request."));
        }

        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return BodyResult.Fail(ApiResults.Malformed("Malformed JSON: the body is not valid UTF-8."));
        }

        JsonNode? node;
        try
        {
            using var document = JsonDocument.Parse(bytes, ParseOptions);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return BodyResult.Fail(ApiResults.Malformed("Expected a JSON object."));
            }

            if (!HasOnlyValidText(document.RootElement))
            {
                return BodyResult.Fail(ApiResults.Malformed("Malformed JSON: a string holds an unpaired surrogate escape (\\uD800-\\uDFFF)."));
            }

            node = JsonNode.Parse(document.RootElement.GetRawText());
        }
        catch (JsonException exception)
        {
            return BodyResult.Fail(ApiResults.Malformed($"Malformed JSON: {ParserMessage(exception)}"));
        }
        catch (Exception exception) when (exception is ArgumentException or InvalidOperationException)
        {
            // Text the parser cannot decode, such as a key made of an unpaired surrogate escape.
            return BodyResult.Fail(ApiResults.Malformed("Malformed JSON: a string or key is not valid text."));
        }

        return BodyResult.Ok(node!.AsObject());
    }

    // JSON allows escapes such as \ud800 that decode to no valid text; they would fail later,
    // wherever a value is read, so they are refused here, once, as malformed input.
    private static bool HasOnlyValidText(JsonElement element)
    {
        try
        {
            return Walk(element);
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        static bool Walk(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    _ = element.GetString();
                    return true;
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        if (!Walk(property.Value))
                        {
                            return false;
                        }
                    }

                    return true;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        if (!Walk(item))
                        {
                            return false;
                        }
                    }

                    return true;
                default:
                    return true;
            }
        }
    }

    private static Microsoft.AspNetCore.Http.HttpResults.JsonHttpResult<DetailBody> TooLarge() => ApiResults.Detail(StatusCodes.Status413PayloadTooLarge, "Request body too large.");

    private static bool IsJsonContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return false;
        }

        var mediaType = contentType.Split(';', 2)[0].Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (mediaType.StartsWith("application/", StringComparison.OrdinalIgnoreCase)
                && mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
    }

    // The media type is echoed as DRF does, but cut short and stripped of control characters so a
    // hostile header cannot forge log lines or bloat the answer.
    private static string MediaTypeForMessage(string? contentType)
    {
        var value = (contentType ?? string.Empty).Split(';', 2)[0].Trim();
        value = new string([.. value.Where(c => !char.IsControl(c))]);
        return value.Length > 100 ? value[..100] : value;
    }

    // The parser's own words, without the position suffix: it points into the body, which may be
    // a secret, but never quotes more than one character of it.
    private static string ParserMessage(JsonException exception)
    {
        var message = exception.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        }

        message = cut > 0 ? message[..cut] : message;
        if (exception.LineNumber is { } line && exception.BytePositionInLine is { } position)
        {
            message += $" (line {line + 1}, byte {position + 1})";
        }

        return message;
    }

    private static bool IsBlank(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                return false;
            }
        }

        return true;
    }

    private static async Task<byte[]> ReadAtMostAsync(Stream body, int max, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(max, 16 * 1024));
        try
        {
            using var collected = new MemoryStream();
            while (collected.Length < max)
            {
                var read = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, max - collected.Length)), cancellationToken);
                if (read == 0)
                {
                    break;
                }

                collected.Write(buffer, 0, read);
            }

            return collected.ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }
}

internal readonly record struct BodyResult(JsonObject? Body, IResult? Error)
{
    public static BodyResult Ok(JsonObject body) => new(body, null);

    public static BodyResult Fail(IResult error) => new(null, error);
}
