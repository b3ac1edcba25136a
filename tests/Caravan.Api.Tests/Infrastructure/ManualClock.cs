namespace Caravan.Api.Tests.Infrastructure;

/// <summary>
/// A clock whose timestamps (what intervals are measured with) move only when a test says so; the
/// wall clock (<see cref="TimeProvider.GetUtcNow"/>) stays the system's.
/// </summary>
public sealed class ManualClock : TimeProvider
{
    private long _ticks = TimeSpan.FromDays(3).Ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
