using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>A blob in storage, named by path and checked by sha256: a checkpoint manifest or a phase's output.</summary>
[GenerateSerializer, Immutable]
public sealed record BlobRef
{
    [Id(0)] public string Path { get; init; } = "";
    [Id(1)] public string Sha256 { get; init; } = "";
}

/// <summary>A finished phase: where its output lies, and its small metrics (time/* included).</summary>
[GenerateSerializer, Immutable]
public sealed record PhaseOutput
{
    [Id(0)] public BlobRef Output { get; init; } = new();
    [Id(1)] public Dictionary<string, double> Metrics { get; init; } = new();
}

/// <summary>
/// One phase of a round: the round's models (checkpoint manifests; null where none yet) and the outputs of
/// the phases before it. A phase reads only what it needs; the same request always gives the same output.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record PhaseRequest
{
    [Id(0)] public string RunId { get; init; } = "";
    [Id(1)] public RunSpec Spec { get; init; } = new();
    [Id(2)] public int Round { get; init; }
    /// <summary>P_r, the policy at the round's start.</summary>
    [Id(3)] public BlobRef Policy { get; init; } = new();
    [Id(4)] public BlobRef Initial { get; init; } = new();
    /// <summary>P_{r-1} and P_{r-2}: the previous round's self-judge and its reference (CREAM).</summary>
    [Id(5)] public BlobRef? TrainedFrom { get; init; }
    [Id(6)] public BlobRef? TrainedFromBefore { get; init; }
    /// <summary>The generate phase's output, one blob per shard, in shard order.</summary>
    [Id(7)] public List<BlobRef> Generations { get; init; } = new();
    [Id(8)] public BlobRef? Judged { get; init; }
    [Id(9)] public BlobRef? Pairs { get; init; }
    /// <summary>The train phase's checkpoint (P_{r+1}).</summary>
    [Id(10)] public BlobRef? Trained { get; init; }
    /// <summary>Bumped when the run rolls back past a corrupt checkpoint, so redone phases never reuse outputs from before.</summary>
    [Id(11)] public int Epoch { get; init; }

    /// <summary>The round's reference model: the initial policy, or P_r ("previous_round").</summary>
    public BlobRef Reference => Spec.Reference == "initial" ? Initial : Policy;
}

/// <summary>One shard of a round's generation: the prompts (by position in the round) one replica samples for.</summary>
[GenerateSerializer, Immutable]
public sealed record GenerationRequest
{
    [Id(0)] public string RunId { get; init; } = "";
    [Id(1)] public RunSpec Spec { get; init; } = new();
    [Id(2)] public int Round { get; init; }
    [Id(3)] public BlobRef Policy { get; init; } = new();
    [Id(4)] public List<int> PromptPositions { get; init; } = new();
    [Id(5)] public int Shard { get; init; }
    [Id(6)] public int Epoch { get; init; }
    /// <summary>The run's round-0 checkpoint: the base a LoRA run's adapter-only checkpoints load onto.</summary>
    [Id(7)] public BlobRef? Initial { get; init; }
}

/// <summary>
/// Holds a run's models on a GPU-tagged silo (key: run id) and runs their tensor work on one dedicated
/// thread. Inputs and outputs are blob references, never tensors or batches (Orleans messages are capped
/// and an oversized one does not fail fast). Every phase is idempotent: a request whose output already
/// exists returns that output instead of computing it again, so a retried or duplicated call costs nothing.
/// </summary>
[Alias("onlinealign.IPolicyWorkerGrain")]
public interface IPolicyWorkerGrain : IGrainWithStringKey
{
    /// <summary>The run stopped: let the models go (the activation ends once the phase in flight has returned).</summary>
    [Alias("Retire")] Task Retire();

    /// <summary>Builds the initial policy (built-in model + warm-start SFT, or a Hugging Face folder) and checkpoints it as round 0.</summary>
    [Alias("Prepare"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Prepare(string runId, RunSpec spec, int epoch, CancellationToken cancellationToken = default);

    /// <summary>Samples one shard of a round's responses from the round's policy and writes them to a blob.</summary>
    [Alias("Generate"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Generate(GenerationRequest request, CancellationToken cancellationToken = default);

    /// <summary>Scores the responses (and, for CREAM, the previous round's judge's scores and the consistency C).</summary>
    [Alias("Judge"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Judge(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Builds preference pairs with the reference model's log-probs.</summary>
    [Alias("BuildPairs"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> BuildPairs(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Trains the policy on the pairs and checkpoints it (weights, optimiser state, run state).</summary>
    [Alias("Train"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Train(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Evaluates the trained policy on held-out prompts (accuracy, lengths, KL).</summary>
    [Alias("Evaluate"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Evaluate(PhaseRequest request, CancellationToken cancellationToken = default);

    [Alias("Progress"), AlwaysInterleave]
    Task<PhaseProgress?> Progress();
}
