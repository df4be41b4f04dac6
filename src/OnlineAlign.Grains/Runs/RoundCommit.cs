using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Runs;

/// <summary>Turns a round's finished phases into its committed record: metrics, warnings, outputs, time split.</summary>
public static class RoundCommit
{
    /// <param name="baseline">round 0, the initial policy's evaluation, which health/length_drift is measured against</param>
    public static RoundRecord Record(RoundProgress p, IReadOnlyList<RoundRecord> earlier, RoundRecord? baseline = null)
    {
        var metrics = new Dictionary<string, double>();
        // Shards generate in parallel: their times overlap, so the phase took as long as the slowest shard.
        foreach (var shards in p.Generations.SelectMany(g => g.Metrics).GroupBy(kv => kv.Key, kv => kv.Value))
            metrics[shards.Key] = shards.Max();
        ShardMetrics.AddStragglers(metrics, "generate", p.Generations.Select(g => g.Metrics.GetValueOrDefault("time/generate")).ToList());
        metrics = ShardMetrics.WithThroughput(metrics, "generate", p.Generations.Select(g => (IReadOnlyDictionary<string, double>)g.Metrics).ToList(),
            "time/generate");
        if (p.Replicas > 0) metrics["shards/replicas"] = p.Replicas;   // the replicas (GPU silos) the round was spread over
        foreach (var phase in new[] { p.Judged!, p.Pairs!, p.Trained!, p.Evaluated! })
            foreach (var (key, value) in phase.Metrics)
                metrics[key] = key.StartsWith("time/", StringComparison.Ordinal) && metrics.TryGetValue(key, out var sum) ? sum + value : value;

        HealthSignals.AddLengthDrift(metrics, baseline?.Metrics);

        // What the phases do not account for: messages, the orchestrator's state writes, scheduling.
        double inPhases = metrics.Where(kv => IsPhaseTime(kv.Key)).Sum(kv => kv.Value);
        metrics["time/round"] = p.Seconds;
        metrics["time/orchestration"] = Math.Max(0, p.Seconds - inPhases);

        var outputs = new Dictionary<string, string>();
        for (int k = 0; k < p.Generations.Count; k++) outputs[$"generate/shard-{k}"] = p.Generations[k].Output.Path;
        outputs["judge"] = p.Judged!.Output.Path;
        outputs["pairs"] = p.Pairs!.Output.Path;
        outputs["train"] = p.Trained!.Output.Path;
        outputs["evaluate"] = p.Evaluated!.Output.Path;

        return new RoundRecord
        {
            Round = p.Round,
            Metrics = metrics,
            Warnings = RoundWarnings.For(metrics, earlier.Count > 0 ? earlier[earlier.Count - 1].Metrics : null, earlier.Count > 0 ? earlier[0].Metrics : null),
            ManifestPath = p.Trained.Output.Path,
            ManifestSha256 = p.Trained.Output.Sha256,
            Seconds = p.Seconds,
            Outputs = outputs,
        };
    }

    /// <summary>
    /// Whether a metric is a time of its own, added into the round's accounted time: time/*, but not the parts of the train
    /// phase's time (time/train/load and time/train/save lie within time/train).
    /// </summary>
    public static bool IsPhaseTime(string key) =>
        key.StartsWith("time/", StringComparison.Ordinal) && !key.StartsWith("time/train/", StringComparison.Ordinal);
}
