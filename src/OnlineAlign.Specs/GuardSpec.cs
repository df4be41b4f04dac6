namespace OnlineAlign.Specs;

/// <summary>
/// The label-free guard (runs.proto GuardSpec): when enabled, a run stops after a round whose health signals (round
/// metrics named health/...) say the policy is exploiting its judge, and marks its best round as the last round
/// before any signal crossed its threshold. Off by default; the signals are recorded either way.
/// </summary>
public sealed record GuardSpec
{
    public bool Enabled { get; init; }
    /// <summary>health/judge_drift_tau below this: the judge ranks the fixed probe set unlike the round-0 judge.</summary>
    public double MinJudgeTau { get; init; } = 0.5;
    /// <summary>health/kl_initial above this (nats per sequence): the policy moved too far from the initial one.</summary>
    public double MaxKlInitial { get; init; } = 5;
    /// <summary>
    /// health/kl_initial_per_token above this (nats per response token), a bound that does not grow with the response
    /// length; 0: never trips. Off by default: no bound has been calibrated on a real model yet.
    /// </summary>
    public double MaxKlInitialPerToken { get; init; }
    /// <summary>|health/length_drift| above this (relative change of the mean sampled length since round 0).</summary>
    public double MaxLengthDrift { get; init; } = 0.5;
    /// <summary>health/unscored_rate above this: the judge no longer gives scores.</summary>
    public double MaxUnscoredRate { get; init; } = 0.5;
    /// <summary>health/score_entropy below this (0 to 1): the judge's scores collapse to one value per prompt (0: never trips).</summary>
    public double MinScoreEntropy { get; init; }
    /// <summary>
    /// health/score_entropy above this (0 to 1; 1: never trips, the entropy is at most 1): the judge scores the policy's
    /// samples for a prompt nearly all differently, which on the built-in tasks marks the task the model cannot judge
    /// (its samples disagree with one another and its scores follow no answer). A task-level signal, not a measure of
    /// the judge's accuracy: docs/experiments.md gives what it was calibrated on.
    /// </summary>
    public double MaxScoreEntropy { get; init; } = 1;
    /// <summary>
    /// health/score_entropy higher than the round before's by more than this (0 to 1; 1: never trips, the entropy is at
    /// most 1). A round's samples come from the policy before its update, so a rise at round r says P_{r-1} scatters its
    /// samples more than P_{r-2} did, as policies losing ground do (SPPO on shuffled scores) and gaining ones do not (their
    /// samples agree more): the best round is then r - 2. Relative to the run itself, so no bound is chosen per model:
    /// docs/experiments.md gives the margin's calibration.
    /// </summary>
    public double MaxScoreEntropyRise { get; init; } = 1;
    /// <summary>health/implicit_agreement below this (a Kendall tau, -1: never trips): the LLM judge and the implicit reward part ways.</summary>
    public double MinImplicitAgreement { get; init; } = -1;
    /// <summary>
    /// health/majority_agreement below this (a Kendall tau, -1: never trips): the judge ranks the samples unlike majority
    /// voting over their answers, as a judge that cannot tell right from wrong does.
    /// </summary>
    public double MinMajorityAgreement { get; init; } = -1;
    /// <summary>Prompts of the fixed probe set re-judged every round (their samples_per_prompt responses from the initial policy); 0: no judge drift.</summary>
    public int ProbePrompts { get; init; } = 4;
    /// <summary>
    /// Pairs of the RewardBench-style set judge/pairwise_accuracy is measured on (0: not measured). Reported only: no guard
    /// threshold reads it, and nothing is chosen by it. A built-in task draws them from its validation stream; a JSONL set
    /// (<see cref="PairwiseJsonl"/>) gives its first this many lines.
    /// </summary>
    public int PairwisePairs { get; init; } = 32;
    /// <summary>A RewardBench-format file ({"prompt", "chosen", "rejected"} per line) under the silo's data roots; unset: a built-in task's own set.</summary>
    public string? PairwiseJsonl { get; init; }

    public const int ProbePromptsLimit = 256;
    public const int PairwisePairsLimit = 1024;

    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("guard");
        Tau(p, "min_judge_tau", MinJudgeTau);
        p.Real("max_kl_initial", MaxKlInitial, 0, false, limits.Coefficient * 1000);
        p.Real("max_kl_initial_per_token", MaxKlInitialPerToken, 0, true, limits.Coefficient);
        p.Real("max_length_drift", MaxLengthDrift, 0, false, limits.Coefficient);
        p.Real("max_unscored_rate", MaxUnscoredRate, 0, true, 1);
        p.Real("min_score_entropy", MinScoreEntropy, 0, true, 1);
        p.Real("max_score_entropy", MaxScoreEntropy, 0, true, 1);
        p.Real("max_score_entropy_rise", MaxScoreEntropyRise, 0, true, 1);
        Tau(p, "min_implicit_agreement", MinImplicitAgreement);
        Tau(p, "min_majority_agreement", MinMajorityAgreement);
        p.Range("probe_prompts", ProbePrompts, 0, ProbePromptsLimit);
        p.Range("pairwise_pairs", PairwisePairs, 0, PairwisePairsLimit);
        p.Length("pairwise_jsonl", PairwiseJsonl, limits.PathLength);
        return p.List;
    }

    /// <summary>A Kendall tau bound: -1 to 1.</summary>
    private static void Tau(SpecProblems p, string field, double value) => p.Real(field, value, -1, true, 1);
}
