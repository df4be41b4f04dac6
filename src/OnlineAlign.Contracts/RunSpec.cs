using OnlineAlign.Specs;

namespace OnlineAlign.Contracts;

/// <summary>
/// What a user asks for when starting a run (mirrors onlinealign.v1.RunSpec). The defaults are the main job's: the best
/// label-free recipe measured (docs/experiments.md): a warm start that teaches the task and how to judge it (IFT + EFT),
/// then one round judged by the model itself (its LLM judge) trained with SPPO's loss, whose bounded win-rate target moves
/// the policy little where the judge is wrong (DPO on the same judge collapsed there).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record RunSpec
{
    [Id(0)] public string Name { get; init; } = "run";
    [Id(78)] public ModelSpec Model { get; init; } = new();
    [Id(79)] public PromptSpec Prompts { get; init; } = new();
    [Id(5)] public int Rounds { get; init; } = 1;
    [Id(6)] public int PromptsPerRound { get; init; } = 512;
    [Id(7)] public int SamplesPerPrompt { get; init; } = 8;
    [Id(14)] public string Consistency { get; init; } = "none";
    [Id(15)] public string PairStrategy { get; init; } = "best_vs_worst";
    [Id(16)] public double MinScoreGap { get; init; }
    [Id(70)] public SamplingSpec Sampling { get; init; } = new();
    [Id(71)] public JudgeSpec Judge { get; init; } = new();
    [Id(72)] public LossSpec Loss { get; init; } = new();
    [Id(73)] public OptimizerSpec Optimizer { get; init; } = new();
    [Id(21)] public string Reference { get; init; } = "previous_round";
    [Id(29)] public ulong Seed { get; init; } = 1;
    [Id(30)] public string Device { get; init; } = "auto";
    [Id(31)] public int SftSteps { get; init; } = 400;
    [Id(32)] public double SftNoise { get; init; } = 0.3;
    /// <summary>
    /// A built-in model's warm-start peak learning rate (cosine schedule, batch 32): M0's pretraining (model.pretrain_steps)
    /// and IFT + EFT (sft_steps). 3e-3 was chosen for the tiny model; a larger one may need less.
    /// </summary>
    [Id(80)] public double SftLearningRate { get; init; } = 3e-3;
    /// <summary>
    /// Policy replicas that share a round's sharded phases; 0 (the default): one per GPU silo present when the round starts
    /// (where the run's memory plan fits), so a single-silo cluster gets 1.
    /// </summary>
    [Id(33)] public int GenerationReplicas { get; init; }
    /// <summary>
    /// Attempts of one phase with the same inputs before the run is failed. Only failures that are not
    /// transient count (a silo lost, a timeout or storage unavailable is retried with backoff apart from this).
    /// </summary>
    [Id(37)] public int MaxPhaseAttempts { get; init; } = 3;
    /// <summary>
    /// Evaluation examples (Self-Rewarding's EFT: a judge prompt, a response, the score the task's checker
    /// gives) mixed into a built-in task's warm start, so that the LLM judge can judge from round 1.
    /// </summary>
    [Id(38)] public int EftExamples { get; init; } = 2000;
    /// <summary>Where the EFT examples' responses come from: corruptions or own_samples (OnlineAlign.Alignment.Rounds.WarmStart.EftSources).</summary>
    [Id(76)] public string EftSource { get; init; } = "corruptions";
    [Id(74)] public BudgetSpec Budget { get; init; } = new();
    [Id(75)] public RetentionSpec Retention { get; init; } = new();
    /// <summary>The label-free guard: stop when the health signals say the judge is being exploited, and mark the best round.</summary>
    [Id(77)] public GuardSpec Guard { get; init; } = new();
}

/// <summary>Where a run stands.</summary>
[GenerateSerializer, Immutable]
public sealed record RunStatus
{
    [Id(0)] public string RunId { get; init; } = "";
    [Id(1)] public RunSpec Spec { get; init; } = new();
    [Id(2)] public RunLifecycle State { get; init; }
    [Id(3)] public int Round { get; init; }
    [Id(4)] public string Phase { get; init; } = "";
    [Id(5)] public int CommittedRounds { get; init; }
    [Id(6)] public string? Error { get; init; }
    /// <summary>How many writes the run's persisted state has had: a later answer has a larger version.</summary>
    [Id(7)] public long Version { get; init; }
    /// <summary>With the guard on: the best round by its label-free criterion, why, and why it stopped the run (null: it did not).</summary>
    [Id(8)] public int? BestRound { get; init; }
    [Id(9)] public string? BestReason { get; init; }
    [Id(10)] public string? StopReason { get; init; }
    /// <summary>Set when the run's state was saved in another format: why this version neither drives it nor reads its spec.</summary>
    [Id(12)] public string? OtherFormat { get; init; }
    /// <summary>A forked run's parent run and round (null: started from a spec).</summary>
    [Id(11)] public RunLineage? ForkedFrom { get; init; }
}

/// <summary>A committed round: its metrics, warnings and checkpoint manifest path.</summary>
[GenerateSerializer, Immutable]
public sealed record RoundRecord
{
    [Id(0)] public int Round { get; init; }
    [Id(1)] public Dictionary<string, double> Metrics { get; init; } = new();
    [Id(2)] public List<string> Warnings { get; init; } = new();
    [Id(3)] public string ManifestPath { get; init; } = "";
    [Id(4)] public string ManifestSha256 { get; init; } = "";
    [Id(5)] public double Seconds { get; init; }
    /// <summary>Each finished phase's output blob (generate/shard-k, judge, pairs, train, evaluate), by phase.</summary>
    [Id(6)] public Dictionary<string, string> Outputs { get; init; } = new();
    /// <summary>The run's epoch (rollbacks past a corrupt checkpoint before it) when this round was committed.</summary>
    [Id(7)] public int Epoch { get; init; }
    /// <summary>Set when a rollback past a corrupt checkpoint discarded this round: the epoch whose attempt redoes it.</summary>
    [Id(8)] public int? SupersededByEpoch { get; init; }
    /// <summary>The checkpoint was deleted from storage by the run's retention (the record and its metrics stay).</summary>
    [Id(9)] public bool CheckpointDeleted { get; init; }

    public bool Superseded => SupersededByEpoch is not null;
}

/// <summary>Progress inside the current round.</summary>
[GenerateSerializer, Immutable]
public sealed record PhaseProgress
{
    [Id(0)] public int Round { get; init; }
    [Id(1)] public string Phase { get; init; } = "";
    [Id(2)] public int Done { get; init; }
    [Id(3)] public int Total { get; init; }
}

/// <summary>One item of a run's live stream: progress, a committed round, or the run's new status.</summary>
[GenerateSerializer, Immutable]
public sealed record RunEvent
{
    [Id(0)] public PhaseProgress? Progress { get; init; }
    [Id(1)] public RoundRecord? RoundCommitted { get; init; }
    [Id(2)] public RunStatus? Status { get; init; }
}
