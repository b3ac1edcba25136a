using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Caravan.Api.Connectors.BigQuery;

/// <summary>BigQuery, reached with a service-account key; the project comes from the key.</summary>
public sealed class BigQueryType : SourceType
{
    public override string Name => "BIGQUERY";

    public override string DisplayName => "BigQuery";

    public override int Order => 40;

    public override string SchemaKind => "datasets";

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Document("service_account_key", "Google Cloud service-account key: the JSON object, or a string holding it", ServiceAccountKey.Parse)
            .AsRequired(),
        Field.Names("selected_datasets", "Dataset ids to include; empty means every dataset of the project"),
    ];

    public override IEnumerable<string> SecretParts(string field, string value) =>
        field == "service_account_key" ? ServiceAccountKey.SecretParts(value) : base.SecretParts(field, value);
}

/// <summary>Checks a service-account key without ever quoting it: it holds a private key.</summary>
internal static class ServiceAccountKey
{
    private const string Shape = "Enter the service account key JSON: an object, or a string holding one.";

    public static string? Parse(JsonNode node, List<string> messages)
    {
        JsonObject? key = node as JsonObject;
        if (key is null && node.GetValueKind() == JsonValueKind.String)
        {
            var text = node.GetValue<string>();
            if (string.IsNullOrWhiteSpace(text))
            {
                messages.Add("This field may not be blank.");
                return null;
            }

            if (Field.IsPlaceholder(text))
            {
                messages.Add(Field.PlaceholderMessage);
                return null;
            }

            if (text.Length > 32 * 1024)
            {
                messages.Add("Ensure this field has no more than 32768 characters.");
                return null;
            }

            try
            {
                // Parsed strictly first: a repeated key would otherwise fail later, when read.
                using var strict = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 16, AllowDuplicateProperties = false });
                key = JsonNode.Parse(strict.RootElement.GetRawText()) as JsonObject;
            }
            catch (Exception exception) when (exception is JsonException or ArgumentException or InvalidOperationException)
            {
                key = null;
            }
        }

        if (key is null)
        {
            messages.Add(Shape);
            return null;
        }

        var before = messages.Count;
        if (Text(key, "type") != "service_account")
        {
            messages.Add("The key's \"type\" must be \"service_account\".");
        }

        foreach (var required in new[] { "project_id", "private_key", "client_email" })
        {
            if (string.IsNullOrWhiteSpace(Text(key, required)))
            {
                messages.Add($"The key is missing \"{required}\".");
            }
        }

        if (Text(key, "client_email") is { Length: > 0 } email && !email.Contains('@', StringComparison.Ordinal))
        {
            messages.Add("The key's \"client_email\" is not an e-mail address.");
        }

        if (Text(key, "private_key") is { Length: > 0 } pem)
        {
            if (Field.IsPlaceholder(pem))
            {
                messages.Add("The key's \"private_key\" is a placeholder. " + Field.PlaceholderMessage);
            }
            else if (!IsPrivateKey(pem))
            {
                messages.Add("The key's \"private_key\" is not a valid PEM private key.");
            }
        }

        return messages.Count == before ? key.ToJsonString() : null;
    }

    /// <summary>
    /// The secret parts of a stored key: the body of its private key and the key's id. The rest
    /// (project, client e-mail, Google's URLs) is no secret, and is named in messages.
    /// </summary>
    public static IEnumerable<string> SecretParts(string stored)
    {
        JsonObject? key;
        try
        {
            key = JsonNode.Parse(stored) as JsonObject;
        }
        catch (JsonException)
        {
            key = null;
        }

        if (key is null)
        {
            return [stored];
        }

        return new[] { Text(key, "private_key") is { } pem ? Field.PemBody(pem) : null, Text(key, "private_key_id") }.OfType<string>();
    }

    private static string? Text(JsonObject key, string name) =>
        key[name] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static bool IsPrivateKey(string pem)
    {
        try
        {
            using var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}
