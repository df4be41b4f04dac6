using System.Text.Json.Serialization;
using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

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
    /// <summary>The shard's number (its blob's name), of <see cref="ShardCount"/>.</summary>
    [Id(13)] public int Shard { get; init; }
    /// <summary>
    /// How many shards the phase is cut into (0: not a shard). The worker cuts its own share, the same way the orchestrator
    /// counted the shards (ShardPlan.Cut): only the worker knows the pairs phase's pairs, and a request stays small.
    /// </summary>
    [Id(15)] public int ShardCount { get; init; }
    /// <summary>The phase's shard outputs to merge, in shard order (empty: the phase was not sharded and is computed whole).</summary>
    [Id(14)] public List<BlobRef> Shards { get; init; } = new();
    /// <summary>
    /// M0, the model a built-in run's warm start began from, as the prepare phase stored it (null: a run prepared before it
    /// was stored, a fork, a model folder): the judges that compare with it read it from here instead of pretraining it on
    /// every silo. Left out of the JSON when null, so the done-marker keys of runs without it stay as they were.
    /// </summary>
    [Id(16), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public BlobRef? BeforeWarmStart { get; init; }

    /// <summary>The round's reference model: the initial policy, or P_r ("previous_round").</summary>
    public BlobRef Reference => Spec.Reference == "initial" ? Initial : Policy;
}
