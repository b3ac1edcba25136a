using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Secrets;

namespace Caravan.Api.Sources;

/// <summary>
/// <c>Idempotency-Key</c> on the create routes (contract section 8): the same key and the same
/// request within 24 hours answer the first response again and create nothing; the same key with
/// another request is a 409. Keys belong to the organization. The key is claimed inside the
/// create's own write transaction (<see cref="IdempotencyClaim"/>), so of concurrent duplicates
/// exactly one creates and the others answer what it stored. Only successful creates are kept.
/// </summary>
public sealed class IdempotencyKeys(Database database, RequestMacs macs, TimeProvider time, ILogger<IdempotencyKeys> logger)
{
    public const string Header = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";
    public const int MaxKeyLength = 255;
    public const string ConflictDetail = "Idempotency-Key was already used with a different request.";

    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);

    private const string JsonContentType = "application/json; charset=utf-8";
    private const int MaxAttempts = 3;
    private static readonly TimeSpan PruneEvery = TimeSpan.FromMinutes(10);

    private long _nextPruneAt;

    /// <summary>
    /// Reads the header: null and no key when it is absent, a 400 when it is not one 1–255
    /// printable ASCII characters (the error names the header as its field).
    /// </summary>
    public static IResult? ReadHeader(HttpRequest request, out string? key)
    {
        key = null;
        if (!request.Headers.TryGetValue(Header, out var values))
        {
            return null;
        }

        var errors = new ValidationErrors();
        // Surrounding whitespace is not part of a header value (Kestrel trims it too).
        var value = values.Count == 1 ? (values[0] ?? string.Empty).Trim(' ', '\t') : null;
        if (value is null)
        {
            errors.Add(Header, "Send one Idempotency-Key header, not several.");
        }
        else if (value.Length == 0)
        {
            errors.Add(Header, "This header may not be blank.");
        }
        else if (value.Length > MaxKeyLength)
        {
            errors.Add(Header, $"Ensure this header has no more than {MaxKeyLength} characters.");
        }
        else if (value.Any(c => c is < ' ' or > '~'))
        {
            errors.Add(Header, "Use printable ASCII characters only.");
        }
        else
        {
            key = value;
        }

        return key is null ? ApiResults.Invalid(errors) : null;
    }

    /// <summary>
    /// Before the body is checked: the stored answer when the key is live (a replay, or 409 for
    /// another request), else the claim to take in the create's transaction.
    /// </summary>
    public async Task<(IResult? Answer, IdempotencyClaim? Claim)> BeginAsync(HttpRequest request, string key, JsonObject body, CancellationToken cancellationToken)
    {
        var fingerprint = Fingerprint(request, body);
        var (macKeyId, mac) = macs.Compute(fingerprint);
        var claim = new IdempotencyClaim(request.HttpContext.Caller().OrganizationId, key, fingerprint, macKeyId, mac);
        var answer = await StoredAnswerAsync(claim, request.HttpContext, cancellationToken);
        return (answer, answer is null ? claim : null);
    }

    /// <summary>
    /// Runs <paramref name="create"/>. Without a claim it simply answers 200 with the response; with
    /// one, the response is stored with the source, and a claim lost to a concurrent request with
    /// the same key answers what that request stored.
    /// </summary>
    public async Task<IResult> CreateAsync<T>(
        HttpContext context,
        IdempotencyClaim? claim,
        Func<IdempotencyClaim?, Task<SourceWriter.Created?>> create,
        Func<SourceWriter.Created, T> respond,
        JsonTypeInfo<T> typeInfo,
        CancellationToken cancellationToken)
    {
        if (claim is null)
        {
            var created = await create(null) ?? throw new InvalidOperationException("A create without an idempotency claim always creates.");
            return TypedResults.Json(respond(created), typeInfo);
        }

        claim.Respond = created => JsonSerializer.Serialize(respond(created), typeInfo);
        for (var attempt = 1; ; attempt++)
        {
            if (await create(claim) is not null)
            {
                await PruneIfDueAsync();
                return Stored(StatusCodes.Status200OK, claim.ResponseBody!);
            }

            if (await StoredAnswerAsync(claim, context, cancellationToken) is { } answer)
            {
                return answer;
            }

            // The claim was lost, yet no live answer is stored: the winner's row expired or was
            // pruned in between. Claim again; the next attempt finds the key free.
            if (attempt == MaxAttempts)
            {
                throw new InvalidOperationException("An Idempotency-Key was taken by another request whose answer could not be read.");
            }
        }
    }

    /// <summary>The cut-off of live keys: a key stored at or before it has expired.</summary>
    internal static long Cutoff(long now) => now - (long)Lifetime.TotalMilliseconds;

    private async Task<IResult?> StoredAnswerAsync(IdempotencyClaim claim, HttpContext context, CancellationToken cancellationToken)
    {
        byte[] storedMac;
        string storedKeyId;
        int status;
        string body;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            await using var reader = await connection.Command("""
                SELECT request_mac, mac_key_id, response_status, response_body FROM idempotency_keys
                WHERE organization_id = @org AND key = @key AND created_at > @cutoff
                """)
                .With("@org", claim.OrganizationId).With("@key", claim.Key).With("@cutoff", Cutoff(Now()))
                .ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return null;
            }

            storedMac = (byte[])reader.GetValue(0);
            storedKeyId = reader.GetString(1);
            status = Convert.ToInt32(reader.GetValue(2), CultureInfo.InvariantCulture);
            body = reader.GetString(3);
        }

        var same = storedKeyId == claim.MacKeyId
            ? CryptographicOperations.FixedTimeEquals(storedMac, claim.Mac)
            : macs.Matches(storedKeyId, storedMac, claim.Request);
        if (same is null)
        {
            // Only when the master key was retired within a day of the first request.
            logger.LogWarning(
                "A stored Idempotency-Key request was signed under master key {KeyId}, which is no longer configured; it cannot be compared, so the request is refused as a different one.",
                storedKeyId);
        }

        if (same != true)
        {
            return ApiResults.Detail(StatusCodes.Status409Conflict, ConflictDetail);
        }

        context.Response.Headers[ReplayedHeader] = "true";
        return Stored(status, body);
    }

    private static IResult Stored(int status, string body) => Results.Text(body, JsonContentType, statusCode: status);

    /// <summary>
    /// What is compared: the method, the route and the body as canonical JSON (keys sorted, no
    /// whitespace, strings re-escaped one way), so a client that re-serializes the same object
    /// in another order or layout is still sending the same request. Numbers stay as written.
    /// </summary>
    internal static byte[] Fingerprint(HttpRequest request, JsonObject body)
    {
        var route = (request.HttpContext.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? request.Path.Value ?? string.Empty;
        using var buffer = new MemoryStream();
        buffer.Write(Encoding.UTF8.GetBytes($"{request.Method} {route}\n"));
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteCanonical(writer, body);
        }

        return buffer.ToArray();
    }

    private static void WriteCanonical(Utf8JsonWriter writer, JsonNode? node)
    {
        switch (node)
        {
            case null:
                writer.WriteNullValue();
                break;
            case JsonObject properties:
                writer.WriteStartObject();
                foreach (var (name, value) in properties.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(name);
                    WriteCanonical(writer, value);
                }

                writer.WriteEndObject();
                break;
            case JsonArray items:
                writer.WriteStartArray();
                foreach (var item in items)
                {
                    WriteCanonical(writer, item);
                }

                writer.WriteEndArray();
                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                writer.WriteStringValue(value.GetValue<string>());
                break;
            default:
                node.WriteTo(writer);
                break;
        }
    }

    /// <summary>Expired keys no longer count; every so often, after a keyed create, they are deleted.</summary>
    private async Task PruneIfDueAsync()
    {
        var now = Now();
        var due = Interlocked.Read(ref _nextPruneAt);
        if (now < due || Interlocked.CompareExchange(ref _nextPruneAt, now + (long)PruneEvery.TotalMilliseconds, due) != due)
        {
            return;
        }

        try
        {
            await using var connection = await database.OpenAsync();
            await using var transaction = await database.BeginWriteAsync(connection);
            var pruned = await connection.Command("DELETE FROM idempotency_keys WHERE created_at <= @cutoff", transaction)
                .With("@cutoff", Cutoff(now)).ExecuteNonQueryAsync();
            await transaction.CommitAsync();
            logger.LogDebug("Deleted {Count} expired idempotency keys", pruned);
        }
        catch (Exception exception) when (exception is DbException or TimeoutException)
        {
            logger.LogWarning(exception, "Deleting expired idempotency keys failed; they do not count, and the next keyed create after {Minutes} minutes tries again.", PruneEvery.TotalMinutes);
        }
    }

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();
}

/// <summary>
/// An Idempotency-Key to take in a create's write transaction: <see cref="TakeAsync"/> before the
/// source is inserted, <see cref="RecordAsync"/> once its response is known, so the key, the source
/// and the stored response commit together or not at all.
/// </summary>
public sealed class IdempotencyClaim
{
    internal IdempotencyClaim(long organizationId, string key, byte[] request, string macKeyId, byte[] mac)
    {
        OrganizationId = organizationId;
        Key = key;
        Request = request;
        MacKeyId = macKeyId;
        Mac = mac;
    }

    internal long OrganizationId { get; }

    internal string Key { get; }

    /// <summary>The fingerprinted request (it holds the body's secrets): kept in memory only, never stored.</summary>
    internal byte[] Request { get; }

    internal string MacKeyId { get; }

    internal byte[] Mac { get; }

    internal Func<SourceWriter.Created, string>? Respond { get; set; }

    internal string? ResponseBody { get; private set; }

    /// <summary>
    /// Claims the key; false when a live claim exists, and the caller must roll back and answer
    /// from it. On PostgreSQL the insert waits for a concurrent holder of the key to finish; on
    /// SQLite the write transaction already excludes every other writer. An expired row of the
    /// same key is replaced.
    /// </summary>
    internal async Task<bool> TakeAsync(DbConnection connection, DbTransaction transaction, long now, CancellationToken cancellationToken)
    {
        await connection.Command("DELETE FROM idempotency_keys WHERE organization_id = @org AND key = @key AND created_at <= @cutoff", transaction)
            .With("@org", OrganizationId).With("@key", Key).With("@cutoff", IdempotencyKeys.Cutoff(now))
            .ExecuteNonQueryAsync(cancellationToken);
        var inserted = await connection.Command("""
            INSERT INTO idempotency_keys (organization_id, key, request_mac, mac_key_id, response_status, response_body, source_id, created_at)
            VALUES (@org, @key, @mac, @macKeyId, 0, '', NULL, @now)
            ON CONFLICT (organization_id, key) DO NOTHING
            """, transaction)
            .With("@org", OrganizationId).With("@key", Key).With("@mac", Mac).With("@macKeyId", MacKeyId).With("@now", now)
            .ExecuteNonQueryAsync(cancellationToken);
        return inserted == 1;
    }

    /// <summary>Stores the response of the create beside the claim, in the same transaction.</summary>
    internal async Task RecordAsync(DbConnection connection, DbTransaction transaction, SourceWriter.Created created, CancellationToken cancellationToken)
    {
        ResponseBody = (Respond ?? throw new InvalidOperationException("The claim has no response to record."))(created);
        await connection.Command("""
            UPDATE idempotency_keys SET response_status = @status, response_body = @body, source_id = @source
            WHERE organization_id = @org AND key = @key
            """, transaction)
            .With("@status", StatusCodes.Status200OK).With("@body", ResponseBody).With("@source", created.Row.Id)
            .With("@org", OrganizationId).With("@key", Key)
            .ExecuteNonQueryAsync(cancellationToken);
    }
}
