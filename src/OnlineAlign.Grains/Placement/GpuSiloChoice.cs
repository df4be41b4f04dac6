namespace OnlineAlign.Grains.Placement;

/// <summary>
/// Which GPU silos a run's replicas go to: the least busy first (fewest other runs, then the most free device
/// memory, then by address so that equal silos are picked the same way everywhere), one replica per silo while
/// there are enough, wrapping around when a run asks for more replicas than there are silos.
/// </summary>
public static class GpuSiloChoice
{
    public static IReadOnlyList<T> Pick<T>(IReadOnlyList<(T Silo, string Address, int Runs, long FreeDeviceBytes)> silos, int replicas)
    {
        if (silos.Count == 0) return [];
        var order = silos.OrderBy(s => s.Runs).ThenByDescending(s => s.FreeDeviceBytes)
            .ThenBy(s => s.Address, StringComparer.Ordinal).Select(s => s.Silo).ToList();
        return Enumerable.Range(0, Math.Max(1, replicas)).Select(k => order[k % order.Count]).ToList();
    }
}
