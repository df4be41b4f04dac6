using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>A finished phase: where its output lies, and its small metrics (time/* included).</summary>
[GenerateSerializer, Immutable]
public sealed record PhaseOutput
{
    [Id(0)] public BlobRef Output { get; init; } = new();
    [Id(1)] public Dictionary<string, double> Metrics { get; init; } = new();
    /// <summary>The prepare phase's second checkpoint: a built-in run's M0, stored once so no other silo pretrains it again (null: none).</summary>
    [Id(2)] public BlobRef? BeforeWarmStart { get; init; }
}
