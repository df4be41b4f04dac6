using OnlineAlign.Serving;

namespace OnlineAlign.Grains.Serving;

/// <summary>
/// A silo's serving of committed rounds: how many rounds it keeps loaded at once (Silo:MaxServedModels; a request for
/// another is refused with 503 until one is let go), how long a round stays loaded without requests
/// (Silo:ServeIdleSeconds), and what one request may ask for (the "Serve" section: <see cref="ServeLimits"/>). A singleton
/// on each silo; the loaded rounds are counted here.
/// </summary>
public sealed class ServingSettings(int maxModels, TimeSpan idleRelease, ServeLimits limits)
{
    private int _loaded;

    public int MaxModels { get; } = Math.Max(1, maxModels);
    public TimeSpan IdleRelease { get; } = idleRelease > TimeSpan.Zero ? idleRelease : TimeSpan.FromMinutes(5);
    public ServeLimits Limits { get; } = limits;

    /// <summary>Rounds loaded (or loading) on this silo now.</summary>
    public int Loaded => Volatile.Read(ref _loaded);

    /// <summary>Takes a slot for one more loaded round; false when all are taken.</summary>
    public bool TryTake()
    {
        while (true)
        {
            int loaded = Volatile.Read(ref _loaded);
            if (loaded >= MaxModels) return false;
            if (Interlocked.CompareExchange(ref _loaded, loaded + 1, loaded) == loaded) return true;
        }
    }

    public void Release() => Interlocked.Decrement(ref _loaded);
}
