using System.Buffers.Text;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Secrets;
using Microsoft.IdentityModel.Tokens;

namespace Caravan.Api.Tokens;

/// <summary>
/// The ES256 keys that sign tokens, kept in the store (<c>token_signing_keys</c>, migration 0007)
/// so that every replica signs and verifies with the same ones; each private key is encrypted under
/// the master key ring like a secret, bound to its <c>kid</c> by associated data. The key without a
/// retirement time signs new tokens; <c>tokens rotate-signing-key</c> retires it and makes a new
/// one, and a retired key stays published (and accepted) until the last token it signed expired.
/// Public keys are cached in memory; a <c>kid</c> this replica does not know yet (a key another
/// replica or the command line just made) reloads them from the store, at most once per
/// <see cref="ReloadEvery"/>, so garbage <c>kid</c>s cannot hammer the store.
/// </summary>
public sealed class TokenSigningKeys(Database database, SecretProtector protector, TimeProvider time, ILogger<TokenSigningKeys> logger) : IDisposable
{
    /// <summary>The longest lifetime of a token (contract section 9.1: ttl 60–900 seconds).</summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromSeconds(900);

    /// <summary>How far apart the clocks of replicas may be; tokens are accepted this long past their expiry.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    /// <summary>How long a retired key stays published and accepted: until every token it signed has expired.</summary>
    public static readonly TimeSpan Retention = MaxLifetime + ClockSkew;

    /// <summary>The least time between two reloads of the public keys from the store.</summary>
    public static readonly TimeSpan ReloadEvery = TimeSpan.FromSeconds(1);

    // Serializes rotations on PostgreSQL; the number is this table's own (the migrator uses another).
    private const long RotationLock = 7290444;

    private readonly SemaphoreSlim _reload = new(1, 1);
    private volatile KeySet _keys = KeySet.Empty;
    private volatile Signer? _signer;

    /// <summary>
    /// The credentials of the key that signs new tokens, read from the store on every call so that a
    /// rotation on any replica or on the command line takes effect at once (the private key itself is
    /// decrypted once per key). The first call on a store without a key makes one.
    /// </summary>
    public async Task<SigningCredentials> SigningCredentialsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var current = await ReadCurrentAsync(connection, cancellationToken);
        if (current is null)
        {
            await CreateFirstAsync(connection, cancellationToken);
            current = await ReadCurrentAsync(connection, cancellationToken)
                ?? throw new InvalidOperationException("No token signing key could be stored.");
        }

        var (kid, secret) = current.Value;
        if (_signer is { } signer && signer.Kid == kid)
        {
            return signer.Credentials;
        }

        var pkcs8 = Convert.FromBase64String(protector.UnprotectServerKey(SecretName(kid), secret));
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }

        var credentials = new SigningCredentials(new ECDsaSecurityKey(ecdsa) { KeyId = kid }, SecurityAlgorithms.EcdsaSha256);
        _signer = new Signer(kid, credentials);

        // This replica must verify what it signs from the first token on.
        if (!_keys.ByKid.ContainsKey(kid))
        {
            await ReloadAsync(force: true, cancellationToken);
        }

        return credentials;
    }

    /// <summary>
    /// The public key of <paramref name="kid"/>, if this replica knows it (see <see cref="RefreshAsync"/>)
    /// and it is still published: a key retired longer ago than <see cref="Retention"/> verifies nothing.
    /// </summary>
    public SecurityKey? Find(string kid) =>
        _keys.ByKid.TryGetValue(kid, out var key) && key.IsPublished(time.GetUtcNow().ToUnixTimeMilliseconds()) ? key.SecurityKey : null;

    /// <summary>Reloads the public keys from the store, unless that was done less than <see cref="ReloadEvery"/> ago.</summary>
    public Task RefreshAsync(CancellationToken cancellationToken) => ReloadAsync(force: false, cancellationToken);

    /// <summary>
    /// The JSON Web Key Set to publish: the current key first, then every retired one whose tokens
    /// may not all have expired yet, the latest retired first. Public halves only.
    /// </summary>
    public async Task<JsonObject> JwksAsync(CancellationToken cancellationToken)
    {
        await ReloadAsync(force: false, cancellationToken);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var keys = new JsonArray();
        foreach (var key in _keys.ByKid.Values.Where(k => k.IsPublished(now))
            .OrderByDescending(k => k.RetiredAt ?? long.MaxValue).ThenByDescending(k => k.CreatedAt).ThenBy(k => k.Kid, StringComparer.Ordinal))
        {
            keys.Add(JsonNode.Parse(key.Jwk));
        }

        return new JsonObject { ["keys"] = keys };
    }

    /// <summary>
    /// <c>tokens rotate-signing-key</c>: retires the current key (if any) and makes a new one current,
    /// in one transaction; keys retired so long ago that their tokens have all expired are erased.
    /// Returns the new key's <c>kid</c> and the retired one's.
    /// </summary>
    public async Task<(string Kid, string? Retired)> RotateAsync(CancellationToken cancellationToken = default)
    {
        var (kid, jwk, secret) = NewKey();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        if (database.Provider == StorageProvider.Postgres)
        {
            // Two rotations at once take turns; the second retires the first one's key.
            await connection.Command($"SELECT pg_advisory_xact_lock({RotationLock})", transaction).ExecuteNonQueryAsync(cancellationToken);
        }

        var retired = await connection.Command("SELECT kid FROM token_signing_keys WHERE retired_at IS NULL", transaction)
            .ExecuteScalarAsync(cancellationToken) as string;
        await connection.Command("UPDATE token_signing_keys SET retired_at = @now WHERE retired_at IS NULL", transaction)
            .With("@now", now).ExecuteNonQueryAsync(cancellationToken);
        await InsertAsync(connection, transaction, kid, jwk, secret, now, cancellationToken);
        var erased = await connection.Command("DELETE FROM token_signing_keys WHERE retired_at IS NOT NULL AND retired_at < @before", transaction)
            .With("@before", now - (long)Retention.TotalMilliseconds).ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        logger.LogInformation("Token signing key {Kid} is current; {Retired} retired; {Erased} expired key(s) erased", kid, retired ?? "none", erased);
        return (kid, retired);
    }

    /// <summary>The signing keys as a table of server keys, for <c>secrets rotate</c> and <c>secrets status</c>.</summary>
    internal static ServerKeys.KeyTable Table { get; } = new("token_signing_keys", "kid", SecretName);

    public void Dispose() => _reload.Dispose();

    /// <summary>The name a private key is encrypted under: its associated data is <c>caravan:server:token-signing:&lt;kid&gt;</c>.</summary>
    private static string SecretName(string kid) => "token-signing:" + kid;

    private async Task ReloadAsync(bool force, CancellationToken cancellationToken)
    {
        if (!force && IsFresh())
        {
            return;
        }

        await _reload.WaitAsync(cancellationToken);
        try
        {
            // Whoever waited while another request reloaded has its answer.
            if (!force && IsFresh())
            {
                return;
            }

            var loadedAt = time.GetTimestamp();
            var known = _keys.ByKid;
            var keys = new Dictionary<string, PublicKey>(StringComparer.Ordinal);
            await using var lease = await database.LeaseReadAsync(cancellationToken);
            await using var reader = await lease.Command("SELECT kid, public_jwk, created_at, retired_at FROM token_signing_keys")
                .ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var kid = reader.GetString(0);
                var retiredAt = reader.IsDBNull(3) ? (long?)null : reader.GetInt64(3);

                // A key already loaded keeps its object, and with it the library's cached verifier.
                var key = known.TryGetValue(kid, out var loaded) ? loaded with { RetiredAt = retiredAt }
                    : PublicKey.Read(kid, reader.GetString(1), reader.GetInt64(2), retiredAt);
                keys[kid] = key;
            }

            _keys = new KeySet(keys, loadedAt);
        }
        finally
        {
            _reload.Release();
        }
    }

    private bool IsFresh() => _keys.LoadedAt is { } loadedAt && time.GetElapsedTime(loadedAt) < ReloadEvery;

    private static async Task<(string Kid, StoredSecret Secret)?> ReadCurrentAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var reader = await connection.Command("SELECT kid, key_id, ciphertext FROM token_signing_keys WHERE retired_at IS NULL")
            .ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetString(0), new StoredSecret(reader.GetString(1), reader.GetString(2))) : null;
    }

    private async Task CreateFirstAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        // Replicas may race to create it: the unique index on the current key lets one insert win,
        // and every replica goes on with the winner's key.
        var (kid, jwk, secret) = NewKey();
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        var inserted = await InsertAsync(connection, transaction, kid, jwk, secret, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken, ifNoCurrent: true);
        await transaction.CommitAsync(cancellationToken);
        if (inserted > 0)
        {
            logger.LogInformation("Created the first token signing key {Kid}", kid);
        }
    }

    private static Task<int> InsertAsync(
        DbConnection connection, DbTransaction transaction, string kid, string jwk, StoredSecret secret, long now, CancellationToken cancellationToken,
        bool ifNoCurrent = false) =>
        connection.Command($"""
            INSERT INTO token_signing_keys (kid, public_jwk, key_id, ciphertext, created_at) VALUES (@kid, @jwk, @key, @ciphertext, @now)
            {(ifNoCurrent ? "ON CONFLICT DO NOTHING" : string.Empty)}
            """, transaction)
            .With("@kid", kid).With("@jwk", jwk).With("@key", secret.KeyId).With("@ciphertext", secret.Ciphertext).With("@now", now)
            .ExecuteNonQueryAsync(cancellationToken);

    /// <summary>A new P-256 key: its kid, its public JWK, and its private key (PKCS#8) encrypted under the master key.</summary>
    private (string Kid, string Jwk, StoredSecret Secret) NewKey()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var kid = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(12));
        var point = ecdsa.ExportParameters(includePrivateParameters: false).Q;
        var jwk = new JsonObject
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64Url.EncodeToString(point.X),
            ["y"] = Base64Url.EncodeToString(point.Y),
            ["kid"] = kid,
            ["use"] = "sig",
            ["alg"] = SecurityAlgorithms.EcdsaSha256,
        };
        var pkcs8 = ecdsa.ExportPkcs8PrivateKey();
        try
        {
            return (kid, jwk.ToJsonString(), protector.ProtectServerKey(SecretName(kid), Convert.ToBase64String(pkcs8)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    private sealed record Signer(string Kid, SigningCredentials Credentials);

    /// <summary>The public keys as last loaded, and when (a <see cref="TimeProvider"/> timestamp; null: never).</summary>
    private sealed record KeySet(IReadOnlyDictionary<string, PublicKey> ByKid, long? LoadedAt)
    {
        public static KeySet Empty { get; } = new(new Dictionary<string, PublicKey>(), null);
    }

    /// <summary>One signing key's public half: as a verification key, and as its JWK text.</summary>
    private sealed record PublicKey(string Kid, SecurityKey SecurityKey, string Jwk, long CreatedAt, long? RetiredAt)
    {
        public bool IsPublished(long now) => RetiredAt is not { } retired || now < retired + (long)Retention.TotalMilliseconds;

        public static PublicKey Read(string kid, string jwk, long createdAt, long? retiredAt)
        {
            var fields = JsonNode.Parse(jwk)!.AsObject();
            var ecdsa = ECDsa.Create(new ECParameters
            {
                Curve = ECCurve.NamedCurves.nistP256,
                Q = new ECPoint
                {
                    X = Base64Url.DecodeFromChars(fields["x"]!.GetValue<string>()),
                    Y = Base64Url.DecodeFromChars(fields["y"]!.GetValue<string>()),
                },
            });
            return new PublicKey(kid, new ECDsaSecurityKey(ecdsa) { KeyId = kid }, jwk, createdAt, retiredAt);
        }
    }
}
