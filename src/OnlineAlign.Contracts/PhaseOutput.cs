using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>A finished phase: where its output lies, and its small metrics (time/* included).</summary>
[GenerateSerializer, Immutable]
public sealed record PhaseOutput
{
    [Id(0)] public BlobRef Output { get; init; } = new();
    [Id(1)] public Dictionary<string, double> Metrics { get; init; } = new();
}
