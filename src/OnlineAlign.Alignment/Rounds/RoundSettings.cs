using OnlineAlign.Alignment.Losses;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>
/// Everything one online round needs to know besides its models and prompts. Its defaults are a run spec's
/// (OnlineAlign.Contracts.RunSpec; a test keeps them equal).
/// </summary>
public sealed record RoundSettings
{
    public static readonly string[] JudgeKinds = ["implicit", "llm", "verifier", "reward_model", "majority", "likelihood", "self_consistent"];
    public static readonly string[] ConsistencyModes = ["none", "dyn", "avg"];

    public int SamplesPerPrompt { get; init; } = 8;
    public SamplingOptions Sampling { get; init; } = new() { Temperature = 0.8, TopP = 0.95, MaxNewTokens = 16 };
    public string Judge { get; init; } = "self_consistent";
    public int Judgements { get; init; } = 3;
    /// <summary>The LLM judge's prompt (JudgePrompts): "rubric" is scored by sampling judgements, "compact" by the expected score digit.</summary>
    public string JudgeTemplate { get; init; } = "compact";
    /// <summary>Which model the LLM judge runs on: "policy" (the policy at the round's start) or "initial" (frozen).</summary>
    public string JudgeModel { get; init; } = "policy";
    public static readonly string[] JudgeModels = ["policy", "initial"];
    /// <summary>CREAM consistency regularisation: none, dyn (per prompt C) or avg (the round's mean C).</summary>
    public string Consistency { get; init; } = "none";
    public string PairStrategy { get; init; } = "best_vs_worst";
    public double MinScoreGap { get; init; }
    public LossSettings Loss { get; init; } = new() { Kind = "dpo" };
    public OptimizerSettings Optimizer { get; init; } = new() { LearningRate = 3e-5, WeightDecay = 0 };
    public int Epochs { get; init; } = 1;
    public int BatchSize { get; init; } = 16;
    public int EvalMaxNewTokens { get; init; } = 16;
    /// <summary>Sequences decoded together. Decoding small batches is bound by per-op overhead, so on a GPU a
    /// larger batch is nearly free throughput, paid for in KV-cache memory.</summary>
    public int GenerationBatchSize { get; init; } = 64;
    /// <summary>
    /// Keep AdamW's moments from one round to the next (one long optimisation) instead of starting each
    /// round's update fresh, as Self-Rewarding and CREAM train each iteration.
    /// </summary>
    public bool CarryOptimizerState { get; init; }

    /// <summary>Every out-of-range value, named by field (empty when valid).</summary>
    public List<string> Problems()
    {
        var problems = new List<string>();
        if (SamplesPerPrompt < 2) problems.Add($"samples_per_prompt must be at least 2 (a pair needs two responses), got {SamplesPerPrompt}");
        if (Sampling.Temperature < 0 || double.IsNaN(Sampling.Temperature)) problems.Add($"sampling.temperature must be >= 0, got {Sampling.Temperature}");
        if (Sampling.TopP <= 0 || Sampling.TopP > 1) problems.Add($"sampling.top_p must be in (0, 1], got {Sampling.TopP}");
        if (Sampling.TopK < 0) problems.Add($"sampling.top_k must be >= 0, got {Sampling.TopK}");
        if (GenerationBatchSize < 0) problems.Add($"sampling.batch_size must be at least 0 (0: planned from the device's memory), got {GenerationBatchSize}");
        if (Sampling.MaxNewTokens < 1) problems.Add($"sampling.max_new_tokens must be at least 1, got {Sampling.MaxNewTokens}");
        if (!JudgeKinds.Contains(Judge)) problems.Add($"judge.kind '{Judge}' is not one of {string.Join(", ", JudgeKinds)}");
        try { Judges.JudgePrompts.Text(JudgeTemplate); } catch (ArgumentException e) { problems.Add(e.Message); }
        if (!JudgeModels.Contains(JudgeModel)) problems.Add($"judge.model '{JudgeModel}' is not one of {string.Join(", ", JudgeModels)}");
        if (Judgements < 1) problems.Add($"judge.judgements must be at least 1, got {Judgements}");
        if (!ConsistencyModes.Contains(Consistency)) problems.Add($"consistency '{Consistency}' is not one of {string.Join(", ", ConsistencyModes)}");
        if (!Pairs.PairBuilder.Strategies.Contains(PairStrategy)) problems.Add($"pair_strategy '{PairStrategy}' is not one of {string.Join(", ", Pairs.PairBuilder.Strategies)}");
        if (MinScoreGap < 0) problems.Add($"min_score_gap must be >= 0, got {MinScoreGap}");
        try { Loss.Validate(); } catch (ArgumentException e) { problems.Add(e.Message); }
        if (!(Optimizer.LearningRate > 0)) problems.Add($"optimizer.learning_rate must be > 0, got {Optimizer.LearningRate}");
        if (Epochs < 1) problems.Add($"optimizer.epochs must be at least 1, got {Epochs}");
        if (BatchSize < 1) problems.Add($"optimizer.batch_size must be at least 1, got {BatchSize}");
        return problems;
    }
}
