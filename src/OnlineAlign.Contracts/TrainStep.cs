using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>
/// Data-parallel training (optimizer.data_parallel): replica 0 asks replica <see cref="Replica"/> of <see cref="Replicas"/>
/// for the gradients of its share of step <see cref="Step"/>'s micro-batches. The first call of a session opens it (the
/// replica loads the round's policy and pairs); a new session (a retried train phase) starts over.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record TrainStepCall
{
    [Id(0)] public PhaseRequest Request { get; init; } = new();
    [Id(1)] public string Session { get; init; } = "";
    [Id(2)] public int Step { get; init; }
    [Id(3)] public int Replica { get; init; }
    [Id(4)] public int Replicas { get; init; }
}

/// <summary>
/// A replica's answer: its micro-batches' sums (six a micro-batch, in micro-batch order) and the length of each micro-batch's
/// gradient, which the coordinator then fetches in chunks under the message-size limit.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record TrainStepGradients
{
    [Id(0)] public List<double[]> Sums { get; init; } = new();
    [Id(1)] public long Length { get; init; }
}
