using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Caravan.Api.Sources;

namespace Caravan.Api.Hosting;

/// <summary>Every type that goes over the wire, source-generated so a missing one fails a test.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ConnectionResponse))]
[JsonSerializable(typeof(ConnectionPage))]
[JsonSerializable(typeof(CreatedResponse))]
[JsonSerializable(typeof(UpdateConfigResponse))]
[JsonSerializable(typeof(SourceConfigResponse))]
[JsonSerializable(typeof(SecretState))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(DetailBody))]
[JsonSerializable(typeof(ServerErrorBody))]
[JsonSerializable(typeof(StaleBody))]
[JsonSerializable(typeof(Connectivity.TestReport))]
[JsonSerializable(typeof(Connectivity.DiscoveryResponse))]
[JsonSerializable(typeof(Connectivity.ConnectivityFailureBody))]
[JsonSerializable(typeof(HealthBody))]
[JsonSerializable(typeof(Revisions.RevisionPage))]
[JsonSerializable(typeof(Connectivity.TestStreamLine))]
[JsonSerializable(typeof(SourceTypeList))]
[JsonSerializable(typeof(ListedConnectionPage))]
[JsonSerializable(typeof(Tokens.TokenResponse))]
[JsonSerializable(typeof(Tokens.StsErrorBody))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;

/// <summary>Timestamps leave as RFC 3339 UTC with a Z and whole seconds, as camelAI shows them.</summary>
internal sealed class UtcSecondsConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.Parse(reader.GetString()!, CultureInfo.InvariantCulture);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
}

/// <summary>The validation error shape of camelAI: a one-line summary and per-field messages.</summary>
public sealed record ErrorBody(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("errors")] IReadOnlyDictionary<string, IReadOnlyList<string>> Errors);

/// <summary>DRF's shape for everything that is not a validation error.</summary>
public sealed record DetailBody([property: JsonPropertyName("detail")] string Detail);

public sealed record ServerErrorBody(
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("trace_id")] string TraceId);

public sealed record StaleBody(
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("current_etag")] string CurrentEtag);

public sealed record HealthBody([property: JsonPropertyName("status")] string Status);

internal static class ApiJsonSetup
{
    /// <summary>
    /// The serializer settings of every answer: snake_case, whole-second UTC times, and quotes
    /// escaped as \" rather than \u0022, as the Python services this API copies write them.
    /// </summary>
    public static void Apply(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        options.Converters.Add(new UtcSecondsConverter());
    }

    public static IServiceCollection AddApiJson(this IServiceCollection services) =>
        services.ConfigureHttpJsonOptions(options =>
        {
            options.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJson.Context);
            Apply(options.SerializerOptions);
        });
}

/// <summary>The context to serialize with, carrying <see cref="ApiJsonSetup.Apply"/>'s settings.</summary>
internal static class ApiJson
{
    public static ApiJsonContext Context { get; } = Create();

    private static ApiJsonContext Create()
    {
        var options = new JsonSerializerOptions();
        ApiJsonSetup.Apply(options);
        return new ApiJsonContext(options);
    }
}
