using OnlineAlign.Specs;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>
/// Everything one online round needs to know besides its models and prompts: the run spec's sampling, judge, loss and
/// optimizer sections as they are (they own their defaults and checks), and the spec's top-level round fields.
/// </summary>
public sealed record RoundSettings
{
    public static readonly string[] ConsistencyModes = ["none", "dyn", "avg"];

    // The spec's top-level round fields (runs.proto RunSpec; a test keeps these defaults equal to the spec's).
    public int SamplesPerPrompt { get; init; } = 8;
    /// <summary>CREAM consistency regularisation: none, dyn (per prompt C) or avg (the round's mean C).</summary>
    public string Consistency { get; init; } = "none";
    public string PairStrategy { get; init; } = "best_vs_worst";
    public double MinScoreGap { get; init; }

    /// <summary>sampling.max_new_tokens bounds evaluation's greedy answers too; batch_size 0 is replaced by the planned batch.</summary>
    public SamplingSpec Sampling { get; init; } = new();
    /// <summary>The judge section with judge.template "auto" resolved (compact for a built-in task: see RunSpecMapping.JudgeTemplate).</summary>
    public JudgeSpec Judge { get; init; } = new() { Template = "compact" };
    public LossSpec Loss { get; init; } = new();
    public OptimizerSpec Optimizer { get; init; } = new();

    /// <summary>Every bad value, named by its spec path: the round fields' and each section's (empty when valid).</summary>
    public List<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("");
        p.Range("samples_per_prompt", SamplesPerPrompt, 2, limits.SamplesPerPrompt); // a pair needs two responses
        p.OneOf("consistency", Consistency, ConsistencyModes, limits.TextLength);
        p.OneOf("pair_strategy", PairStrategy, Pairs.PairBuilder.Strategies, limits.TextLength);
        p.Real("min_score_gap", MinScoreGap, 0, minIncluded: true, limits.Coefficient);
        // RFT is supervised fine-tuning on the judge's best sample: a pair whose chosen side is drawn without the scores (the
        // random control) would make it fine-tuning on any sample, and RPO's term is that same NLL again.
        if (Loss.Kind == "rft" && PairStrategy is "random" or Pairs.PairBuilder.ShuffledScores)
            p.Add($"loss.kind 'rft' trains on the judge's best sample, which pair_strategy '{PairStrategy}' does not choose " +
                "(use best_vs_worst; random pairs and shuffled scores are controls for the preference losses)");
        if (Loss.Kind == "rft" && double.IsFinite(Loss.RpoAlpha) && Loss.RpoAlpha > 0)
            p.Add($"loss.rpo_alpha {Loss.RpoAlpha.ToString(System.Globalization.CultureInfo.InvariantCulture)} with loss.kind 'rft': " +
                "RFT's loss already is the chosen response's NLL (set rpo_alpha to 0)");
        return [.. p.List, .. Sampling.Problems(limits), .. Judge.Problems(limits), .. Loss.Problems(limits), .. Optimizer.Problems(limits)];
    }
}
