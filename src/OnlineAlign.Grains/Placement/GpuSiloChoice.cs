namespace OnlineAlign.Grains.Placement;

/// <summary>
/// Which GPU silos a run's replicas go to. Each pick takes the silo this run uses least so far (its replicas spread
/// out while there are silos enough, and wrap around only when there are more replicas than silos), then the one
/// with the fewest other runs, then the most free device memory, then by address so that equal silos are picked the
/// same way everywhere.
/// </summary>
public static class GpuSiloChoice
{
    /// <param name="usedByRun">silos the run's already placed replicas are on (one entry per replica)</param>
    public static IReadOnlyList<T> Pick<T>(IReadOnlyList<(T Silo, string Address, int Runs, long FreeDeviceBytes)> silos, int count,
        IReadOnlyCollection<T>? usedByRun = null) where T : notnull
    {
        if (silos.Count == 0) return [];
        var uses = silos.ToDictionary(s => s.Silo, s => usedByRun?.Count(u => EqualityComparer<T>.Default.Equals(u, s.Silo)) ?? 0);
        var picked = new List<T>();
        for (int k = 0; k < Math.Max(1, count); k++)
        {
            var best = silos.OrderBy(s => uses[s.Silo]).ThenBy(s => s.Runs).ThenByDescending(s => s.FreeDeviceBytes)
                .ThenBy(s => s.Address, StringComparer.Ordinal).First().Silo;
            uses[best]++;
            picked.Add(best);
        }
        return picked;
    }
}
