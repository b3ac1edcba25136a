using System.Globalization;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Secrets;

namespace Caravan.Api.Cli;

/// <summary>
/// The administrative role of the program: with a command it does one job with the same
/// configuration as the server, then exits. Results go to standard output; logs to standard error.
/// </summary>
internal static class CommandLine
{
    private const string Usage = """
        Usage:
          Caravan.Api                          serve the API
          Caravan.Api keys create --org NAME   create an API key (printed once, as the last line)
          Caravan.Api keys list [--org NAME]   list keys: id, organization, prefix, created, state
          Caravan.Api keys revoke KEY_ID       revoke a key
          Caravan.Api secrets rotate           re-encrypt every stored secret under the newest master key
          Caravan.Api secrets status           how many stored secrets each master key protects
          Caravan.Api tokens rotate-signing-key  sign new tokens with a new key; the old one verifies until its tokens expire
          Caravan.Api migrate                  apply schema migrations to the configured store
        """;

    public static bool IsCommand(string[] args) => args.Length > 0 && args[0] is "keys" or "migrate" or "secrets" or "tokens" or "help" or "--help";

    /// <summary>Command output must be the only thing on standard output.</summary>
    public static void QuietLogging(ILoggingBuilder logging)
    {
        logging.ClearProviders();
        logging.AddBatchedConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
        logging.SetMinimumLevel(LogLevel.Warning);
    }

    public static async Task<int> RunAsync(IServiceProvider services, string[] args, TextWriter output, TextWriter error)
    {
        try
        {
            return args switch
            {
                ["keys", "create", .. var rest] => await CreateKeyAsync(services, rest, output, error),
                ["keys", "list", .. var rest] => await ListKeysAsync(services, rest, output, error),
                ["keys", "revoke", var keyId] => await RevokeKeyAsync(services, keyId, output, error),
                ["secrets", "rotate"] => await RotateAsync(services, output),
                ["secrets", "status"] => await SecretsStatusAsync(services, output),
                ["tokens", "rotate-signing-key"] => await RotateSigningKeyAsync(services, output),
                ["migrate"] => await MigrateAsync(services, output),
                _ => Fail(error, Usage),
            };
        }
        catch (Exception exception) when (exception is InvalidOperationException or System.Data.Common.DbException or IOException or SecretDecryptionException)
        {
            await error.WriteLineAsync($"error: {exception.Message}");
            return 1;
        }
    }

    private static async Task<int> CreateKeyAsync(IServiceProvider services, string[] rest, TextWriter output, TextWriter error)
    {
        if (Option(rest, "--org") is not { } organization || !IsOrganizationName(organization))
        {
            return Fail(error, "keys create needs --org NAME (1-100 characters, no spaces or control characters).");
        }

        await EnsureStoreAsync(services);
        var (id, key) = await services.GetRequiredService<ApiKeys>().CreateAsync(organization);
        await output.WriteLineAsync($"Created key {id} for organization {organization}. It is shown only now; store it safely.");
        await output.WriteLineAsync(key);
        return 0;
    }

    private static async Task<int> ListKeysAsync(IServiceProvider services, string[] rest, TextWriter output, TextWriter error)
    {
        if (rest.Length > 0 && Option(rest, "--org") is null)
        {
            return Fail(error, "keys list takes only --org NAME.");
        }

        await EnsureStoreAsync(services);
        foreach (var key in await services.GetRequiredService<ApiKeys>().ListAsync(Option(rest, "--org")))
        {
            var created = key.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            await output.WriteLineAsync($"{key.Id}\t{key.Organization}\t{key.Prefix}\t{created}\t{(key.Revoked ? "revoked" : "active")}");
        }

        return 0;
    }

    private static async Task<int> RevokeKeyAsync(IServiceProvider services, string keyId, TextWriter output, TextWriter error)
    {
        await EnsureStoreAsync(services);
        if (!await services.GetRequiredService<ApiKeys>().RevokeAsync(keyId))
        {
            return Fail(error, $"No key with id {Printable(keyId)}.");
        }

        await output.WriteLineAsync($"Revoked key {keyId}.");
        return 0;
    }

    private static async Task<int> RotateAsync(IServiceProvider services, TextWriter output)
    {
        await EnsureStoreAsync(services);
        var report = await services.GetRequiredService<SecretRotation>().RotateAsync();
        if (report.AddedKeyId is not null)
        {
            await output.WriteLineAsync($"Added master key {report.AddedKeyId} to the key file.");
        }

        await output.WriteLineAsync(
            $"Re-encrypted {report.Secrets} secret(s) in {report.Sources} source(s); every stored secret is under master key {report.CurrentKeyId}.");
        if (report.ServerKeys > 0)
        {
            await output.WriteLineAsync($"Re-encrypted {report.ServerKeys} server key(s) (the fingerprint key, token signing keys); fingerprints and tokens are unchanged.");
        }
        return 0;
    }

    private static async Task<int> SecretsStatusAsync(IServiceProvider services, TextWriter output)
    {
        await EnsureStoreAsync(services);
        var protector = services.GetRequiredService<SecretProtector>();
        var counts = await services.GetRequiredService<SecretRotation>().CountByKeyAsync();
        foreach (var keyId in protector.KeyIds.Union(counts.Keys))
        {
            var role = keyId == protector.CurrentKeyId ? "current" : protector.KeyIds.Contains(keyId) ? "previous" : "missing";
            await output.WriteLineAsync($"{keyId}	{role}	{counts.GetValueOrDefault(keyId)}");
        }

        return 0;
    }

    private static async Task<int> RotateSigningKeyAsync(IServiceProvider services, TextWriter output)
    {
        await EnsureStoreAsync(services);
        var (kid, retired) = await services.GetRequiredService<Tokens.TokenSigningKeys>().RotateAsync();
        await output.WriteLineAsync($"Token signing key {kid} signs new tokens from now on, on every replica.");
        if (retired is not null)
        {
            var until = Tokens.TokenSigningKeys.Retention.TotalSeconds;
            await output.WriteLineAsync($"The previous key {retired} stays published and accepted for {until:0} seconds, until its last token expired.");
        }

        return 0;
    }

    private static async Task<int> MigrateAsync(IServiceProvider services, TextWriter output)
    {
        var applied = await services.GetRequiredService<Migrator>().MigrateAsync();
        await output.WriteLineAsync(applied == 0 ? "The store is up to date." : $"Applied {applied} migration(s).");
        return 0;
    }

    // The embedded SQLite store migrates itself, as the server does on start; PostgreSQL is
    // migrated only by the migrate command, deliberately.
    private static async Task EnsureStoreAsync(IServiceProvider services)
    {
        var database = services.GetRequiredService<Database>();
        var migrator = services.GetRequiredService<Migrator>();
        if (database.Provider == StorageProvider.Sqlite)
        {
            await migrator.MigrateAsync();
        }
        else if ((await migrator.PendingAsync()).Count > 0)
        {
            throw new InvalidOperationException("The store has migrations to apply; run the migrate command first.");
        }
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    private static bool IsOrganizationName(string name) =>
        name.Length is > 0 and <= 100 && !name.Any(c => char.IsControl(c) || char.IsWhiteSpace(c));

    private static string Printable(string value) => new([.. value.Where(c => !char.IsControl(c)).Take(60)]);

    private static int Fail(TextWriter error, string message)
    {
        error.WriteLine(message);
        return 2;
    }
}
