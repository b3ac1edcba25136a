using Caravan.Api.Hosting;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Hosting;

/// <summary>The token-bucket arithmetic of <see cref="RateLimits"/>, on a clock the test moves.</summary>
public sealed class RateLimiterTests
{
    private readonly ManualClock _clock = new();

    [Fact]
    public void A_full_bucket_takes_a_burst_of_the_limit_then_refuses_until_one_interval_has_passed()
    {
        var limits = Limits(requestsPerMinute: 6);

        for (var i = 0; i < 6; i++)
        {
            Assert.True(limits.TryAcquire("key-a", RateBucket.Requests, out _), $"request {i + 1}");
        }

        Assert.False(limits.TryAcquire("key-a", RateBucket.Requests, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(10), retryAfter);

        _clock.Advance(TimeSpan.FromSeconds(4));
        Assert.False(limits.TryAcquire("key-a", RateBucket.Requests, out retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(6), retryAfter);

        _clock.Advance(TimeSpan.FromSeconds(6));
        Assert.True(limits.TryAcquire("key-a", RateBucket.Requests, out _));
        Assert.False(limits.TryAcquire("key-a", RateBucket.Requests, out retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(10), retryAfter);
    }

    [Fact]
    public void Refusals_take_nothing()
    {
        var limits = Limits(requestsPerMinute: 60);
        Drain(limits, "key-a", RateBucket.Requests, 60);

        for (var i = 0; i < 1000; i++)
        {
            Assert.False(limits.TryAcquire("key-a", RateBucket.Requests, out _));
        }

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(limits.TryAcquire("key-a", RateBucket.Requests, out _));
        Assert.False(limits.TryAcquire("key-a", RateBucket.Requests, out _));
    }

    [Fact]
    public void Refill_is_continuous_and_never_beyond_a_full_bucket()
    {
        var limits = Limits(requestsPerMinute: 120);
        Drain(limits, "key-a", RateBucket.Requests, 120);

        // 15 s at 2 per second: 30 more.
        _clock.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal(30, Drain(limits, "key-a", RateBucket.Requests, 1000));

        // An hour idle fills the bucket once, not sixty times.
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(120, Drain(limits, "key-a", RateBucket.Requests, 1000));
    }

    [Fact]
    public void Keys_and_buckets_do_not_share()
    {
        var limits = Limits(requestsPerMinute: 3, testsPerMinute: 2);
        Assert.Equal(3, Drain(limits, "key-a", RateBucket.Requests, 10));

        Assert.Equal(2, Drain(limits, "key-a", RateBucket.Tests, 10));
        Assert.Equal(3, Drain(limits, "key-b", RateBucket.Requests, 10));
        Assert.Equal(2, Drain(limits, "key-b", RateBucket.Tests, 10));

        Assert.False(limits.TryAcquire("key-a", RateBucket.Tests, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(30), retryAfter);
    }

    [Fact]
    public void Concurrent_callers_get_exactly_the_burst()
    {
        var limits = Limits(requestsPerMinute: 500);
        var granted = 0;
        Parallel.For(0, 5000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, attempt =>
        {
            if (limits.TryAcquire("shared", RateBucket.Requests, out _))
            {
                Interlocked.Increment(ref granted);
            }
        });

        Assert.Equal(500, granted);
    }

    [Fact]
    public void Idle_keys_are_forgotten_and_come_back_with_a_full_bucket()
    {
        var limits = Limits(requestsPerMinute: 10);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(limits.TryAcquire($"key-{i}", RateBucket.Requests, out _));
        }

        Drain(limits, "busy", RateBucket.Requests, 10);
        Assert.Equal(101, limits.CellCount);

        // A minute later every bucket is full again: the next request sweeps them all away, and
        // only the key that asked is held again.
        _clock.Advance(TimeSpan.FromSeconds(61));
        Drain(limits, "busy", RateBucket.Requests, 10);
        Assert.Equal(1, limits.CellCount);
        Assert.Equal(10, Drain(limits, "key-7", RateBucket.Requests, 100));
    }

    [Fact]
    public void Disabled_limits_refuse_nothing()
    {
        var limits = Limits(requestsPerMinute: 1, enabled: false);
        Assert.Equal(10_000, Drain(limits, "key-a", RateBucket.Requests, 10_000));
        Assert.Equal(0, limits.CellCount);
    }

    [Fact]
    public void Defaults_are_on_with_1200_requests_and_60_tests_per_minute()
    {
        var defaults = new RateLimitOptions();
        Assert.Equal((true, 1200, 60), (defaults.Enabled, defaults.RequestsPerMinute, defaults.TestsPerMinute));
    }

    private RateLimits Limits(int requestsPerMinute, int testsPerMinute = 60, bool enabled = true) =>
        new(Options.Create(new RateLimitOptions { Enabled = enabled, RequestsPerMinute = requestsPerMinute, TestsPerMinute = testsPerMinute }), _clock);

    /// <summary>Takes up to <paramref name="most"/> requests at this instant; how many were granted.</summary>
    private static int Drain(RateLimits limits, string key, RateBucket bucket, int most)
    {
        var granted = 0;
        while (granted < most && limits.TryAcquire(key, bucket, out _))
        {
            granted++;
        }

        return granted;
    }
}
