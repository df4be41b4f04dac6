namespace OnlineAlign.Contracts;

/// <summary>
/// Where each run's worker replicas are placed on the GPU silos, and the device memory their plans take there (a single
/// grain, key 0). Runs go to the silos with the most device memory left; a run that fits nowhere waits.
/// </summary>
[Alias("onlinealign.IGpuLedgerGrain")]
public interface IGpuLedgerGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Places the run's <paramref name="replicas"/> replicas (0: one per GPU silo it fits on), each needing
    /// <paramref name="planBytes"/> of device memory, keeping the silos of replicas already placed while those are alive (a replica that shares a silo with another of
    /// the run's moves to a silo with room that holds none of them).
    /// </summary>
    /// <param name="placeable">the GPU silos the asking run's silo lists (it activates the replicas there, and its placement
    /// filter refuses a silo it does not list): only those are chosen</param>
    [Alias("Place")] Task<GpuPlacementDecision> Place(string runId, long planBytes, int replicas, List<string> placeable);

    /// <summary>The run no longer drives: its replicas' memory is free for other runs.</summary>
    [Alias("Release")] Task Release(string runId);

    /// <summary>Every run's placement now (for tests and operators).</summary>
    [Alias("Placements")] Task<Dictionary<string, RunPlacement>> Placements();
}

/// <summary>The silos a run's replicas are placed on (replica k on Silos[k]) and the device memory each replica's plan takes.</summary>
[GenerateSerializer]
[Alias("onlinealign.RunPlacement")]
public sealed record RunPlacement
{
    [Id(0)] public List<string> Silos { get; init; } = [];
    [Id(1)] public long PlanBytes { get; init; }
}

/// <summary>A placement: the run's replicas' silos, or why it must wait for GPU memory (then Placement is null).</summary>
[GenerateSerializer]
[Alias("onlinealign.GpuPlacementDecision")]
public sealed record GpuPlacementDecision
{
    [Id(0)] public RunPlacement? Placement { get; init; }
    [Id(1)] public string? Wait { get; init; }
}
