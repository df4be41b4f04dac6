using OnlineAlign.Modeling;

namespace OnlineAlign.Execution.Specs;

/// <summary>
/// One silo's memory shared by the runs on it: each worker that holds models reserves its run's plan peak (device and
/// host) and releases it when it lets them go (the run completed, failed, was cancelled or paused, or the worker
/// deactivated). A run whose plan does not fit beside the reservations already made is refused, naming their total.
/// Thread-safe; a singleton on each worker silo.
/// </summary>
public sealed class MemoryLedger
{
    /// <summary>Bytes a holder keeps reserved on the device and on the host.</summary>
    public sealed record Reservation(long DeviceBytes, long HostBytes);

    private readonly Dictionary<string, Reservation> _held = new(StringComparer.Ordinal);
    private readonly object _lock = new();

    /// <summary>The reservations of every holder but <paramref name="except"/> (a holder's own does not crowd itself out).</summary>
    public Reservation Reserved(string? except = null)
    {
        lock (_lock)
        {
            var others = _held.Where(kv => kv.Key != except).Select(kv => kv.Value).ToList();
            return new Reservation(others.Sum(r => r.DeviceBytes), others.Sum(r => r.HostBytes));
        }
    }

    public int Holders
    {
        get { lock (_lock) return _held.Count; }
    }

    /// <summary>
    /// Reserves <paramref name="need"/> for <paramref name="holder"/> (replacing its earlier reservation) when it fits beside
    /// the others within the budgets (0: that budget is not checked); null when reserved, else why not (nothing reserved).
    /// </summary>
    public string? TryReserve(string holder, Reservation need, MemoryPlanning.DeviceBudget budget)
    {
        lock (_lock)
        {
            var others = Reserved(holder);
            if (Refusal(need, others, budget) is { } refusal) return refusal;
            _held[holder] = need;
            return null;
        }
    }

    /// <summary>Lets a holder's reservation go; false when it held none.</summary>
    public bool Release(string holder)
    {
        lock (_lock) return _held.Remove(holder);
    }

    /// <summary>Why <paramref name="need"/> does not fit beside <paramref name="others"/>; null when it does.</summary>
    public static string? Refusal(Reservation need, Reservation others, MemoryPlanning.DeviceBudget budget)
    {
        if (budget.Bytes > 0 && others.DeviceBytes > 0 && need.DeviceBytes + others.DeviceBytes > budget.Bytes)
            return $"model: the run does not fit {budget.Name} beside the runs already on this silo: they reserve {MemoryPlan.Gib(others.DeviceBytes)} " +
                   $"of its {MemoryPlan.Gib(budget.Bytes)}, this run's plan peak is {MemoryPlan.Gib(need.DeviceBytes)} (device memory budget); " +
                   "wait for them to finish, or use another silo";
        if (budget.HostBytes > 0 && others.HostBytes > 0 && need.HostBytes + others.HostBytes > budget.HostBytes)
            return $"model: the run does not fit this silo's host memory beside the runs already on it: they reserve {MemoryPlan.Gib(others.HostBytes)} " +
                   $"of its {MemoryPlan.Gib(budget.HostBytes)}, this run's host plan peak is {MemoryPlan.Gib(need.HostBytes)} (host memory budget, Silo:HostMemoryBytes); " +
                   "wait for them to finish, or use another silo";
        return null;
    }
}
