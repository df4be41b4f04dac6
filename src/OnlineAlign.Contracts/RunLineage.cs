using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>
/// Where a forked run came from: its round 0 is a copy of <see cref="ParentRound"/>'s checkpoint of run
/// <see cref="ParentRunId"/> (<see cref="Initial"/>, in the child's own storage, so the parent's retention never
/// deletes what the child reads). The parent is never modified.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record RunLineage
{
    [Id(0)] public string ParentRunId { get; init; } = "";
    [Id(1)] public int ParentRound { get; init; }
    /// <summary>The child's round-0 checkpoint: the copy of the parent's round (a LoRA round's adapter together with its base).</summary>
    [Id(2)] public BlobRef Initial { get; init; } = new();
}
