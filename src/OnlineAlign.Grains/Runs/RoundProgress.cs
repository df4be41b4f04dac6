using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Runs;

/// <summary>The round in progress: the output of each phase that has finished (null: not yet).</summary>
[GenerateSerializer]
public sealed class RoundProgress
{
    [Id(0)] public int Round { get; set; }
    /// <summary>One output per generation shard, in shard order.</summary>
    [Id(1)] public List<PhaseOutput> Generations { get; set; } = new();
    [Id(2)] public PhaseOutput? Judged { get; set; }
    [Id(3)] public PhaseOutput? Pairs { get; set; }
    [Id(4)] public PhaseOutput? Trained { get; set; }
    [Id(5)] public PhaseOutput? Evaluated { get; set; }
    /// <summary>Wall seconds the orchestrator has spent on this round (summed over attempts).</summary>
    [Id(6)] public double Seconds { get; set; }
    /// <summary>
    /// The replicas the round's sharded phases use, fixed when the round starts (0: not yet), so a resumed round cuts the
    /// same shards and finds their outputs done.
    /// </summary>
    [Id(7)] public int Replicas { get; set; }
}
