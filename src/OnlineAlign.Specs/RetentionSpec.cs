namespace OnlineAlign.Specs;

/// <summary>
/// Which rounds' checkpoints stay in storage once a newer round commits (runs.proto RetentionSpec). Always kept besides:
/// round 0 and the checkpoints the next round reads; a deleted checkpoint's round keeps its record and metrics.
/// </summary>
public sealed record RetentionSpec
{
    /// <summary>The last N committed rounds' checkpoints are kept (0: every round's).</summary>
    public int KeepLast { get; init; }
    /// <summary>Also keep the checkpoint of the round with the best <see cref="BestMetric"/> (higher is better).</summary>
    public bool KeepBest { get; init; } = true;
    public string BestMetric { get; init; } = "eval/accuracy";

    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("retention");
        p.Range("keep_last", KeepLast, 0, limits.Rounds);
        if (string.IsNullOrWhiteSpace(BestMetric)) p.Add("retention.best_metric must name a round metric (e.g. eval/accuracy)");
        p.Length("best_metric", BestMetric, limits.TextLength);
        return p.List;
    }
}
