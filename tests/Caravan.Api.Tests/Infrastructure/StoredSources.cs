using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Secrets;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>A source's row as the store holds it; two snapshots are equal when nothing was written.</summary>
public sealed record StoredSource(
    string AccountName, string SettingsJson, string SecretsJson, long Version, bool IsFullyConfigured, long? DeletedAt)
{
    public JsonObject Settings => JsonNode.Parse(SettingsJson)!.AsObject();

    public JsonObject Secrets => JsonNode.Parse(SecretsJson)!.AsObject();
}

/// <summary>Looks into the store behind the API, to check what a request really wrote.</summary>
public static class StoredSources
{
    public static async Task<StoredSource> StoredSourceAsync(this CaravanApp app, long id)
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync();
        await using var command = connection.Command(
            "SELECT account_name, settings, secrets, version, is_fully_configured, deleted_at FROM sources WHERE id = @id").With("@id", id);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"source {id} is not in the store");
        return new StoredSource(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetBoolean(4),
            reader.IsDBNull(5) ? null : reader.GetInt64(5));
    }

    /// <summary>Decrypts one stored secret the way the service does.</summary>
    public static async Task<string> RevealAsync(this CaravanApp app, long id, string field)
    {
        var stored = await app.StoredSourceAsync(id);
        var entry = stored.Secrets[field] ?? throw new InvalidOperationException($"source {id} holds no {field}");
        return app.Services.GetRequiredService<SecretProtector>()
            .Unprotect(id, field, new StoredSecret(entry["k"]!.GetValue<string>(), entry["c"]!.GetValue<string>()));
    }
}
