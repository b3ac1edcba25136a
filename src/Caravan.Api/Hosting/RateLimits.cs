using System.Collections.Concurrent;
using System.Globalization;
using Caravan.Api.Auth;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Hosting;

/// <summary>What a request counts against (contract section 8).</summary>
public enum RateBucket
{
    /// <summary>Every authenticated request that is not a test, discovery or query.</summary>
    Requests,

    /// <summary>Connection tests, schema discovery, update-config with <c>verify=true</c>, queries.</summary>
    Tests,
}

public sealed class RateLimitOptions
{
    public const string Section = "Caravan:RateLimits";

    public bool Enabled { get; set; } = true;

    /// <summary>Requests per minute and API key in the <see cref="RateBucket.Requests"/> bucket; also the largest burst.</summary>
    public int RequestsPerMinute { get; set; } = 1200;

    /// <summary>Requests per minute and API key in the <see cref="RateBucket.Tests"/> bucket; also the largest burst.</summary>
    public int TestsPerMinute { get; set; } = 60;

    /// <summary>Settings that did not parse, by configuration name; start-up refuses them.</summary>
    internal List<string> Problems { get; } = [];

    internal void Read(IConfigurationSection section)
    {
        if (section[nameof(Enabled)] is { } enabled)
        {
            if (bool.TryParse(enabled, out var value))
            {
                Enabled = value;
            }
            else
            {
                Problems.Add($"Caravan__RateLimits__Enabled must be true or false (default true).");
            }
        }

        RequestsPerMinute = ReadLimit(section, nameof(RequestsPerMinute), RequestsPerMinute);
        TestsPerMinute = ReadLimit(section, nameof(TestsPerMinute), TestsPerMinute);
    }

    private int ReadLimit(IConfigurationSection section, string name, int fallback)
    {
        var text = section[name];
        if (text is null)
        {
            return fallback;
        }

        if (int.TryParse(text, NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite, CultureInfo.InvariantCulture, out var value) && value > 0)
        {
            return value;
        }

        Problems.Add($"Caravan__RateLimits__{name} must be a positive whole number of requests per minute (default {fallback}).");
        return fallback;
    }
}

/// <summary>
/// Route metadata naming the bucket a request of the route counts against; a route without it
/// counts against <see cref="RateBucket.Requests"/>.
/// </summary>
public sealed class RateBucketMetadata(Func<HttpRequest, RateBucket> select)
{
    /// <summary>Every request of the route is a test (connection tests, discovery).</summary>
    public static RateBucketMetadata Tests { get; } = new(_ => RateBucket.Tests);

    /// <summary>A request of the route is a test when <paramref name="isTest"/> says so (update-config with verify=true).</summary>
    public static RateBucketMetadata TestsWhen(Func<HttpRequest, bool> isTest) =>
        new(request => isTest(request) ? RateBucket.Tests : RateBucket.Requests);

    public RateBucket For(HttpRequest request) => select(request);
}

/// <summary>
/// Per-API-key rate limits: one bucket per key and <see cref="RateBucket"/>, holding up to the
/// per-minute limit and refilling continuously at that rate, so a key may burst to the limit and
/// then go on at the limit's pace. Implemented as GCRA ("theoretical arrival time"): a bucket is one
/// <see langword="long"/> updated with compare-and-swap, so the hot path takes no lock and allocates
/// nothing once a key has its cells. Cells of keys whose buckets are full again hold nothing a fresh
/// cell would not, and are dropped about once a minute, which bounds memory by the keys active in
/// the last minute. Each replica keeps its own buckets (no store round trip per request).
/// </summary>
public sealed class RateLimits
{
    // A cell being removed by the sweep; a request that meets it waits for its replacement.
    private const long Retired = long.MinValue;

    private readonly ConcurrentDictionary<(string KeyId, RateBucket Bucket), Cell> _cells = new();
    private readonly TimeProvider _time;
    private readonly Limit _requests;
    private readonly Limit _tests;
    private readonly long _sweepEvery;
    private long _nextSweep;

    public RateLimits(IOptions<RateLimitOptions> options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _time = time;
        var settings = options.Value;
        Enabled = settings.Enabled;
        _requests = new Limit(settings.RequestsPerMinute, time.TimestampFrequency);
        _tests = new Limit(settings.TestsPerMinute, time.TimestampFrequency);
        _sweepEvery = 60 * time.TimestampFrequency;
        _nextSweep = time.GetTimestamp() + _sweepEvery;
    }

    public bool Enabled { get; }

    /// <summary>The number of cells held (keys × buckets seen recently), for tests.</summary>
    internal int CellCount => _cells.Count;

    /// <summary>
    /// Takes one request from the bucket of <paramref name="keyId"/>; when the bucket is empty,
    /// false, with <paramref name="retryAfter"/> the time until a request would be accepted (and
    /// nothing taken: a refused request does not count). Always true when limits are disabled.
    /// </summary>
    public bool TryAcquire(string keyId, RateBucket bucket, out TimeSpan retryAfter)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        retryAfter = TimeSpan.Zero;
        if (!Enabled)
        {
            return true;
        }

        var limit = bucket == RateBucket.Tests ? _tests : _requests;
        var spin = default(SpinWait);
        while (true)
        {
            var now = _time.GetTimestamp();
            SweepIfDue(now);
            var cell = _cells.GetOrAdd((keyId, bucket), static (_, start) => new Cell(start), now);
            var arrival = Volatile.Read(ref cell.Arrival);
            if (arrival == Retired)
            {
                spin.SpinOnce();
                continue;
            }

            // The bucket is empty when taking one more would put the arrival time more than a full
            // bucket (the burst) ahead of now; it refills by one every interval.
            var next = Math.Max(arrival, now) + limit.Interval;
            if (next - now > limit.Burst)
            {
                retryAfter = _time.GetElapsedTime(now, next - limit.Burst);
                return false;
            }

            if (Interlocked.CompareExchange(ref cell.Arrival, next, arrival) == arrival)
            {
                return true;
            }
        }
    }

    private void SweepIfDue(long now)
    {
        var due = Volatile.Read(ref _nextSweep);
        if (now < due || Interlocked.CompareExchange(ref _nextSweep, now + _sweepEvery, due) != due)
        {
            return;
        }

        foreach (var (key, cell) in _cells)
        {
            var arrival = Volatile.Read(ref cell.Arrival);
            if (arrival != Retired && arrival <= now && Interlocked.CompareExchange(ref cell.Arrival, Retired, arrival) == arrival)
            {
                _cells.TryRemove(new KeyValuePair<(string, RateBucket), Cell>(key, cell));
            }
        }
    }

    private sealed class Cell(long arrival)
    {
        /// <summary>When the bucket would be full again (in timestamp ticks); at or before now, it is full.</summary>
        public long Arrival = arrival;
    }

    /// <summary>A per-minute limit in timestamp ticks: one request per interval, a burst of the whole minute.</summary>
    private readonly record struct Limit(long Interval, long Burst)
    {
        public Limit(int perMinute, long frequency)
            : this(60 * frequency / perMinute, 60 * frequency / perMinute * perMinute)
        {
        }
    }
}

/// <summary>
/// Runs after the API-key filter (the caller is known): 429 <c>{"detail": "Request was throttled."}</c>
/// with <c>Retry-After</c> when the key's bucket for the route is empty.
/// </summary>
internal sealed class RateLimitFilter(RateLimits limits) : IEndpointFilter
{
    public const string ThrottledDetail = "Request was throttled.";

    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;

        // A route that checks its key in its own query knows the caller only there; it calls Check itself.
        if (!limits.Enabled || http.GetEndpoint()?.Metadata.GetMetadata<KeyCheckedInQuery>() is not null)
        {
            return next(context);
        }

        var bucket = http.GetEndpoint()?.Metadata.GetMetadata<RateBucketMetadata>()?.For(http.Request) ?? RateBucket.Requests;
        return Check(http, limits, bucket) is { } throttled ? ValueTask.FromResult<object?>(throttled) : next(context);
    }

    /// <summary>Takes one request of <paramref name="bucket"/> for the authenticated caller; the 429 when there is none left.</summary>
    public static JsonHttpResult<DetailBody>? Check(HttpContext http, RateLimits limits, RateBucket bucket)
    {
        if (!limits.Enabled || limits.TryAcquire(http.Caller().KeyId, bucket, out var retryAfter))
        {
            return null;
        }

        // Whole seconds, rounded up, so a client that waits that long is accepted.
        var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return ApiResults.Detail(StatusCodes.Status429TooManyRequests, ThrottledDetail);
    }
}

internal static class RateLimitSetup
{
    public static IServiceCollection AddRateLimits(this IServiceCollection services)
    {
        services.AddOptions<RateLimitOptions>()
            .Configure<IConfiguration>((options, configuration) => options.Read(configuration.GetSection(RateLimitOptions.Section)))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidation>();
        services.AddSingleton<RateLimits>();
        return services;
    }

    private sealed class RateLimitOptionsValidation : IValidateOptions<RateLimitOptions>
    {
        public ValidateOptionsResult Validate(string? name, RateLimitOptions options) =>
            options.Problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(options.Problems);
    }
}
