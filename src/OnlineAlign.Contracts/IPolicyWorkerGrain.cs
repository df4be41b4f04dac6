using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>What a round needs from storage: the manifests of the models involved (null where none).</summary>
[GenerateSerializer, Immutable]
public sealed record RoundRequest
{
    [Id(0)] public string RunId { get; init; } = "";
    [Id(1)] public RunSpec Spec { get; init; } = new();
    [Id(2)] public int Round { get; init; }
    [Id(3)] public ModelPointer Policy { get; init; } = new();
    [Id(4)] public ModelPointer Initial { get; init; } = new();
    [Id(5)] public ModelPointer? TrainedFrom { get; init; }
    [Id(6)] public ModelPointer? TrainedFromBefore { get; init; }
    [Id(7)] public List<RoundRecord> Earlier { get; init; } = new();
    /// <summary>The round's generation output, one blob per shard, written by the generate phase.</summary>
    [Id(8)] public List<ModelPointer> Generations { get; init; } = new();
}

/// <summary>One shard of a round's generation: the prompts (by index) one replica samples for.</summary>
[GenerateSerializer, Immutable]
public sealed record GenerationRequest
{
    [Id(0)] public string RunId { get; init; } = "";
    [Id(1)] public RunSpec Spec { get; init; } = new();
    [Id(2)] public int Round { get; init; }
    [Id(3)] public ModelPointer Policy { get; init; } = new();
    [Id(4)] public List<int> PromptPositions { get; init; } = new();
    [Id(5)] public int Shard { get; init; }
}

/// <summary>A checkpoint manifest in blob storage (path + sha256).</summary>
[GenerateSerializer, Immutable]
public sealed record ModelPointer
{
    [Id(0)] public string Path { get; init; } = "";
    [Id(1)] public string Sha256 { get; init; } = "";
}

/// <summary>
/// Holds a run's models on a GPU-tagged silo (key: run id) and runs their tensor work on one dedicated
/// thread. Inputs and outputs are blob pointers, never tensors (Orleans messages are capped and an
/// oversized one does not fail fast).
/// </summary>
[Alias("onlinealign.IPolicyWorkerGrain")]
public interface IPolicyWorkerGrain : IGrainWithStringKey
{
    /// <summary>Builds the initial policy (built-in model + warm-start SFT, or a Hugging Face folder) and checkpoints it as round 0.</summary>
    [Alias("Prepare"), ResponseTimeout("01:00:00")]
    Task<ModelPointer> Prepare(string runId, RunSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Runs one round from the given checkpoints, writes the new policy's checkpoint, returns the round's record.</summary>
    [Alias("RunRound"), ResponseTimeout("01:00:00")]
    Task<RoundRecord> RunRound(RoundRequest request, CancellationToken cancellationToken = default);

    /// <summary>Samples one shard of a round's responses from the given policy checkpoint and writes them to a blob.</summary>
    [Alias("Generate"), ResponseTimeout("01:00:00")]
    Task<ModelPointer> Generate(GenerationRequest request, CancellationToken cancellationToken = default);

    [Alias("Progress"), AlwaysInterleave]
    Task<PhaseProgress?> Progress();
}
