namespace OnlineAlign.Grains.Runs;

/// <summary>
/// A sharded phase's time metrics: its shards run side by side, so the phase took as long as its slowest shard, then its
/// merge; shards/{phase}/* tell how many shards there were and how the slowest compares with the mean (stragglers).
/// Only times are combined here: every other metric comes from the merge, computed once from the merged arrays.
/// The speed of each GPU silo at a phase (shards/{phase}/tokens_per_second) comes from each shard's tokens and compute time.
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
        // Stragglers at a glance: 1 when the shards took equally long; the phase waited this many times the mean.
        if (seconds.Average() > 0) metrics[$"shards/{phase}/slowest_over_mean"] = seconds.Max() / seconds.Average();
    }

    /// <summary>
    /// The phase's tokens (shards/{phase}/tokens: summed over its shards) and tokens per second per GPU silo
    /// (shards/{phase}/tokens_per_second: the mean over the shards, each on its own replica, of its tokens over its compute
    /// time <paramref name="timeKey"/>). Unchanged when no shard counted tokens (pairs, evaluation).
    /// </summary>
    public static Dictionary<string, double> WithThroughput(IReadOnlyDictionary<string, double> metrics, string phase,
        IReadOnlyList<IReadOnlyDictionary<string, double>> shards, string timeKey)
    {
        string tokensKey = $"shards/{phase}/tokens";
        var result = new Dictionary<string, double>(metrics);
        var counted = shards.Where(m => m.ContainsKey(tokensKey)).ToList();
        if (counted.Count == 0) return result;
        result[tokensKey] = counted.Sum(m => m[tokensKey]);
        var rates = counted.Where(m => m.GetValueOrDefault(timeKey) > 0).Select(m => m[tokensKey] / m[timeKey]).ToList();
        if (rates.Count > 0) result[$"shards/{phase}/tokens_per_second"] = rates.Average();
        return result;
    }

    /// <summary>
    /// Where a phase's storage time went: shards/{phase}/storage_seconds is the phase's time/storage (checkpoint fetches, phase
    /// blob reads and writes, done markers: its slowest shard's plus its merge's), shards/{phase}/merge_storage_seconds the
    /// merge's alone (a sharded phase's merge on replica 0 reads every shard's blob). time/storage itself sums every phase.
    /// </summary>
    /// <param name="merge">a sharded phase's merge metrics (null: the phase ran whole)</param>
    public static Dictionary<string, double> WithStorage(Dictionary<string, double> metrics, string phase, IReadOnlyDictionary<string, double>? merge)
    {
        metrics[$"shards/{phase}/storage_seconds"] = metrics.GetValueOrDefault("time/storage");
        if (merge is not null) metrics[$"shards/{phase}/merge_storage_seconds"] = merge.GetValueOrDefault("time/storage");
        return metrics;
    }
}
