namespace OnlineAlign.Specs;

/// <summary>What a round and a phase may cost (runs.proto BudgetSpec): a spec that can exceed it is refused, a phase that does is failed.</summary>
public sealed record BudgetSpec
{
    /// <summary>Token positions a round may cost: generated, judged, trained and evaluated (see RunSpecMapping.TokenBudgetProblem).</summary>
    public long MaxTokensPerRound { get; init; } = 10_000_000_000;
    /// <summary>Wall time of one phase attempt, in seconds: past it the phase is cancelled and fails (counted against max_phase_attempts).</summary>
    public int MaxPhaseSeconds { get; init; } = 86_400;

    /// <summary>The largest budgets a spec may state.</summary>
    public const long MaxTokensPerRoundLimit = 1_000_000_000_000;
    public const int MaxPhaseSecondsLimit = 30 * 86_400;

    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("budget");
        p.Range("max_tokens_per_round", MaxTokensPerRound, 1, MaxTokensPerRoundLimit);
        p.Range("max_phase_seconds", MaxPhaseSeconds, 1, MaxPhaseSecondsLimit);
        return p.List;
    }
}
