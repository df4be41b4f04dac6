using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

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
