namespace OnlineAlign.Grains.Placement;

/// <summary>
/// The worker activations on this silo, by grain key ("run" or "run#genK"): what <see cref="SiloLoadGrain"/> counts.
/// An activation counts from the moment it exists, before it loads models (the memory ledger only sees it then), so
/// two runs started together do not both see an empty silo. A singleton on each silo; thread-safe.
/// </summary>
public sealed class WorkerCensus
{
    private readonly HashSet<string> _workers = new(StringComparer.Ordinal);

    public void Add(string key) { lock (_workers) _workers.Add(key); }

    public void Remove(string key) { lock (_workers) _workers.Remove(key); }

    /// <summary>Distinct runs with a worker here, <paramref name="exceptRun"/> left out.</summary>
    public int Runs(string exceptRun)
    {
        lock (_workers)
            return _workers.Select(key => GpuSiloPlacementFilterDirector.RunAndReplica(key).Run).Where(run => run != exceptRun).Distinct().Count();
    }
}
