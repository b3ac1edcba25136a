using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors.Snowflake;

/// <summary>
/// Snowflake, by password or key pair. With neither, Caravan makes an RSA-2048 pair, keeps the
/// private key as a secret and answers the <c>ALTER USER</c> statement that registers the public one.
/// </summary>
public sealed partial class SnowflakeType : SourceType
{
    private const string PrivateKey = "private_key";
    private const string Passphrase = "private_key_passphrase";
    private const string PublicKey = "public_key";

    public override string Name => "SNOWFLAKE";

    public override string DisplayName => "Snowflake";

    public override int Order => 30;

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Text("account", "Account identifier, e.g. xy12345.us-east-1 or myorg-myaccount").AsRequired().AsDestination(),
        Field.Text("user", "Snowflake user name").AsRequired(),
        Field.Secret("password", "Password; omit it (and the keys) to have Caravan generate a key pair"),
        Field.Pem(PublicKey, "RSA public key (PEM or bare base64) registered for the user"),
        Field.Text("warehouse", "Warehouse to run queries on"),
        Field.Secret(PrivateKey, "Your own RSA private key (PEM) instead of a generated one") with { MaxLength = 16 * 1024 },
        Field.Secret(Passphrase, "Passphrase of an encrypted private_key"),
        Field.Text("database", "Default database"),
        Field.Text("role", "Role to use"),
        Field.Names("selected_schemas", "Schemas to include, as schema or database.schema"),
    ];

    public override IReadOnlyList<string> KeyPairUnless => ["password", PublicKey, PrivateKey];

    public override void Check(SourceChange change, ConfigView? stored, ValidationErrors errors)
    {
        base.Check(change, stored, errors);
        if (change.Settings.TryGetValue("account", out var account) && account?.GetValue<string>() is { } identifier)
        {
            if (identifier.Contains("://", StringComparison.Ordinal) || identifier.Contains("snowflakecomputing.com", StringComparison.OrdinalIgnoreCase))
            {
                errors.Add("account", "Enter the account identifier (e.g. xy12345.us-east-1 or myorg-myaccount), not the URL.");
            }
            else if (!AccountPattern().IsMatch(identifier))
            {
                errors.Add("account", "Enter a valid Snowflake account identifier: letters, digits, '.', '-' and '_' only.");
            }
        }

        if (change.Settings.TryGetValue(PublicKey, out var publicKey) && publicKey is not null)
        {
            var body = NormalizePublicKey(publicKey.GetValue<string>());
            if (body is null)
            {
                errors.Add(PublicKey, "Enter an RSA public key, in PEM or as bare base64.");
            }
            else
            {
                change.Set(PublicKey, JsonValue.Create(body));
            }
        }

        if (!change.Gives(PrivateKey) && !change.Gives(Passphrase) && !change.Gives(PublicKey))
        {
            return;
        }

        var privateKey = change.Secrets.TryGetValue(PrivateKey, out var sentKey) ? sentKey : stored?.RevealSecret(PrivateKey);
        if (privateKey is null || errors.Has(PrivateKey) || errors.Has(Passphrase))
        {
            return;
        }

        var passphrase = change.Secrets.TryGetValue(Passphrase, out var sentPassphrase) ? sentPassphrase : stored?.RevealSecret(Passphrase);
        var derived = PublicKeyOf(privateKey, passphrase, out var problem);
        if (derived is null)
        {
            errors.Add(change.Gives(PrivateKey) ? PrivateKey : Passphrase, problem!);
            return;
        }

        var heldPublicKey = change.Settings.TryGetValue(PublicKey, out var sentPublic) ? sentPublic?.GetValue<string>() : stored?.Text(PublicKey);
        if (change.Gives(PublicKey) && heldPublicKey is not null && heldPublicKey != derived)
        {
            errors.Add(PublicKey, "This public key does not belong to private_key.");
        }
        else if (!change.Gives(PublicKey))
        {
            // A new private key brings its own public key; keeping the old one would contradict it.
            change.Set(PublicKey, JsonValue.Create(derived));
        }
    }

    public override string? PrepareCreate(SourceChange change, ValidationErrors errors)
    {
        var user = change.Settings["user"]!.GetValue<string>();
        if (change.Settings.TryGetValue(PublicKey, out var publicKey) && publicKey is not null)
        {
            return AlterUserSql(user, publicKey.GetValue<string>());
        }

        if (change.Gives("password"))
        {
            return null;
        }

        using var rsa = RSA.Create(2048);
        change.SetSecret(PrivateKey, rsa.ExportPkcs8PrivateKeyPem());
        var body = Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo());
        change.Set(PublicKey, JsonValue.Create(body));
        return AlterUserSql(user, body);
    }

    public override bool IsFullyConfigured(ConfigView config) =>
        config.Has("account") && config.Has("user") && (config.Has("password") || config.Has(PrivateKey));

    public static string AlterUserSql(string user, string publicKeyBody) =>
        $"ALTER USER \"{user.Replace("\"", "\"\"", StringComparison.Ordinal)}\" SET RSA_PUBLIC_KEY='{publicKeyBody}';";

    /// <summary>The bare base64 of a public key's SubjectPublicKeyInfo, or null when it is not an RSA key.</summary>
    private static string? NormalizePublicKey(string text)
    {
        var body = Field.PemBody(text);
        try
        {
            var der = Convert.FromBase64String(body);
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(der, out _);
            return Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo());
        }
        catch (FormatException)
        {
            return null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    private static string? PublicKeyOf(string privateKeyPem, string? passphrase, out string? problem)
    {
        problem = null;
        try
        {
            using var rsa = RSA.Create();
            if (privateKeyPem.Contains("ENCRYPTED", StringComparison.Ordinal))
            {
                if (passphrase is null)
                {
                    problem = "This private key is encrypted: send private_key_passphrase too.";
                    return null;
                }

                rsa.ImportFromEncryptedPem(privateKeyPem, passphrase);
            }
            else
            {
                rsa.ImportFromPem(privateKeyPem);
            }

            return Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo());
        }
        catch (Exception exception) when (exception is ArgumentException or CryptographicException)
        {
            problem = passphrase is not null && privateKeyPem.Contains("ENCRYPTED", StringComparison.Ordinal)
                ? "The private key could not be decrypted with private_key_passphrase."
                : "Enter an RSA private key in PEM format.";
            return null;
        }
    }

    [GeneratedRegex(@"^[A-Za-z0-9._-]+$")]
    private static partial Regex AccountPattern();
}
