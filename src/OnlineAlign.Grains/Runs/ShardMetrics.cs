namespace OnlineAlign.Grains.Runs;

/// <summary>
/// A sharded phase's time metrics: its shards run side by side, so the phase took as long as its slowest shard, then its
/// merge; shards/{phase}/* tell how many shards there were and how the slowest compares with the mean (stragglers).
/// Only times are combined here: every other metric comes from the merge, computed once from the merged arrays.
/// </summary>
public static class ShardMetrics
{
    /// <param name="merge">the merge's metrics (the phase's own, times included)</param>
    /// <param name="shards">each shard's metrics: time/{phase}-shard for its compute, and its storage and overhead times</param>
    public static Dictionary<string, double> Combine(string phase, IReadOnlyDictionary<string, double> merge, IReadOnlyList<Dictionary<string, double>> shards)
    {
        var metrics = new Dictionary<string, double>(merge);
        string shardKey = $"time/{phase}-shard";
        foreach (var times in shards.SelectMany(m => m).Where(kv => kv.Key.StartsWith("time/", StringComparison.Ordinal))
                     .GroupBy(kv => kv.Key == shardKey ? $"time/{phase}" : kv.Key, kv => kv.Value))
            metrics[times.Key] = metrics.GetValueOrDefault(times.Key) + times.Max();
        metrics.Remove(shardKey);
        AddStragglers(metrics, phase, shards.Select(m => m.GetValueOrDefault(shardKey)).ToList());
        return metrics;
    }

    /// <summary>shards/{phase}/count, slowest_seconds and mean_seconds from each shard's compute time.</summary>
    public static void AddStragglers(Dictionary<string, double> metrics, string phase, IReadOnlyList<double> seconds)
    {
        if (seconds.Count == 0) return;
        metrics[$"shards/{phase}/count"] = seconds.Count;
        metrics[$"shards/{phase}/slowest_seconds"] = seconds.Max();
        metrics[$"shards/{phase}/mean_seconds"] = seconds.Average();
    }
}
