using OnlineAlign.Alignment.Judges;

namespace OnlineAlign.Tests.Judging;

/// <summary>
/// The remote judge's retry schedule as a pure function: full jitter below the exponential cap, reproducible per request
/// seed (no shared Random, no clock), different between requests, and a server's Retry-After honoured up to the bound.
/// </summary>
public sealed class RetryDelaysTests
{
    private static readonly TimeSpan First = TimeSpan.FromSeconds(1), Max = TimeSpan.FromSeconds(60);

    private static List<TimeSpan> Schedule(long seed, int attempts = 10, TimeSpan? retryAfter = null)
    {
        var delays = new RetryDelays(seed, First, Max);
        return [.. Enumerable.Range(1, attempts).Select(a => delays.Next(a, retryAfter))];
    }

    [Fact]
    public void EachWaitIsDrawnBelowTheExponentialCapWhichIsBounded()
    {
        Assert.Equal(TimeSpan.FromSeconds(1), RetryDelays.Cap(1, First, Max));
        Assert.Equal(TimeSpan.FromSeconds(8), RetryDelays.Cap(4, First, Max));
        Assert.Equal(Max, RetryDelays.Cap(7, First, Max));
        Assert.Equal(Max, RetryDelays.Cap(1000, First, Max));
        for (long seed = 0; seed < 200; seed++)
        {
            var waits = Schedule(seed);
            for (int a = 1; a <= waits.Count; a++)
                Assert.InRange(waits[a - 1], TimeSpan.Zero, RetryDelays.Cap(a, First, Max));
        }
        Assert.Equal(TimeSpan.Zero, RetryDelays.Delay(3, 0, First, Max, null));
        Assert.Equal(TimeSpan.FromSeconds(2), RetryDelays.Delay(3, 0.5, First, Max, null));
    }

    [Fact]
    public void ARequestsScheduleIsReproducibleAndRequestsDoNotRetryInLockstep()
    {
        Assert.Equal(Schedule(42), Schedule(42));
        // Without jitter every request would wait exactly the cap: the herd that failed together returns together.
        var firstWaits = Enumerable.Range(0, 100).Select(seed => Schedule(seed, 3)[2]).ToList();
        Assert.True(firstWaits.Distinct().Count() > 90, $"{firstWaits.Distinct().Count()} distinct third waits of 100 requests");
        Assert.Contains(firstWaits, w => w < TimeSpan.FromSeconds(2));
        Assert.Contains(firstWaits, w => w > TimeSpan.FromSeconds(2));
        Assert.NotEqual(Schedule(1), Schedule(2));
    }

    [Fact]
    public void RetryAfterIsALowerBoundItselfBoundedByMax()
    {
        var asked = TimeSpan.FromSeconds(5);
        Assert.All(Schedule(7, 3, asked), w => Assert.Equal(asked, w)); // caps 1, 2, 4 s: the server's 5 s wins
        Assert.All(Schedule(7, 10, asked), w => Assert.InRange(w, asked, Max));
        Assert.All(Schedule(7, 10, TimeSpan.FromHours(1)), w => Assert.Equal(Max, w));
    }

    [Fact]
    public void RetryAfterIsReadAsSecondsOrAnHttpDate()
    {
        var now = new DateTimeOffset(2026, 12, 2, 20, 0, 0, TimeSpan.Zero);
        Assert.Equal(TimeSpan.FromSeconds(30), RetryDelays.ParseRetryAfter("30", now));
        Assert.Equal(TimeSpan.FromSeconds(90), RetryDelays.ParseRetryAfter("Wed, 02 Dec 2026 20:01:30 GMT", now));
        Assert.Equal(TimeSpan.Zero, RetryDelays.ParseRetryAfter("Wed, 02 Dec 2026 19:00:00 GMT", now));
        Assert.Null(RetryDelays.ParseRetryAfter("-3", now));
        Assert.Null(RetryDelays.ParseRetryAfter("soon", now));
        Assert.Null(RetryDelays.ParseRetryAfter(null, now));
        Assert.Equal(TimeSpan.FromDays(1), RetryDelays.ParseRetryAfter("99999999999", now));
    }
}
