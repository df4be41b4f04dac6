using System.Globalization;

namespace OnlineAlign.Alignment.Judges;

/// <summary>
/// The wait before each retry of one remote judge request: full jitter (a uniform draw between zero and the exponential
/// cap, first * 2^(attempt-1) bounded by max), so the many requests that a 429 or a restart failed together do not all
/// come back at the same instant. The draws come from a generator seeded by the request (never the shared Random), so a
/// request's schedule is reproducible and read by tests without a clock. A server's Retry-After is honoured: the wait is
/// at least what it asked, still bounded by max (a server asking for an hour does not stall the phase for an hour).
/// </summary>
public sealed class RetryDelays(long seed, TimeSpan first, TimeSpan max)
{
    private readonly Random _random = new(unchecked((int)(seed ^ (seed >>> 32)) ^ SeedSalt));

    // The request's seed also goes to the judge (its sampling seed); the salt keeps the two streams apart.
    private const int SeedSalt = 0x5EED_1A7E;

    /// <summary>The wait after failed attempt <paramref name="attempt"/> (1-based), given the server's Retry-After if any.</summary>
    public TimeSpan Next(int attempt, TimeSpan? retryAfter) => Delay(attempt, _random.NextDouble(), first, max, retryAfter);

    /// <summary>The pure schedule: <paramref name="draw"/> in [0, 1) picks the point between zero and the attempt's cap.</summary>
    public static TimeSpan Delay(int attempt, double draw, TimeSpan first, TimeSpan max, TimeSpan? retryAfter)
    {
        var jittered = TimeSpan.FromTicks((long)(Cap(attempt, first, max).Ticks * Math.Clamp(draw, 0, 1)));
        if (retryAfter is { } asked && asked > jittered) return asked < max ? asked : max;
        return jittered;
    }

    /// <summary>The exponential bound of attempt <paramref name="attempt"/>'s wait: first * 2^(attempt-1), at most max.</summary>
    public static TimeSpan Cap(int attempt, TimeSpan first, TimeSpan max) =>
        TimeSpan.FromTicks(Math.Min(max.Ticks, first.Ticks << Math.Clamp(attempt - 1, 0, 20)));

    /// <summary>A Retry-After header's wait: delay-seconds, or an HTTP date (relative to <paramref name="now"/>); null if neither.</summary>
    public static TimeSpan? ParseRetryAfter(string? value, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        value = value.Trim();
        if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds))
            return TimeSpan.FromSeconds(Math.Min(seconds, (long)TimeSpan.FromDays(1).TotalSeconds));
        if (DateTimeOffset.TryParseExact(value, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
            return at > now ? at - now : TimeSpan.Zero;
        return null;
    }
}
