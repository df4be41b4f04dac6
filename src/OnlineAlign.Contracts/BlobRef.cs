using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>A blob in storage, named by path and checked by sha256: a checkpoint manifest or a phase's output.</summary>
[GenerateSerializer, Immutable]
public sealed record BlobRef
{
    [Id(0)] public string Path { get; init; } = "";
    [Id(1)] public string Sha256 { get; init; } = "";
}
