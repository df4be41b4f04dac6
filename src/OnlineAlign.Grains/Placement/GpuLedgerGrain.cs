using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// The cluster's ledger of placements (see <see cref="IGpuLedgerGrain"/>): persisted, so a restarted ledger decides from
/// the same state; the decision itself is <see cref="GpuPlacement.Decide"/>'s, over the GPU silos this silo sees now.
/// Not reentrant: one placement at a time, so two runs never take the same free memory.
/// </summary>
public sealed class GpuLedgerGrain(
    [PersistentState("gpu-ledger", "runs")] IPersistentState<Dictionary<string, RunPlacement>> ledger,
    GpuSilos gpuSilos) : Grain, IGpuLedgerGrain
{
    public async Task<GpuPlacementDecision> Place(string runId, long planBytes, int replicas)
    {
        var decision = GpuPlacement.Decide(gpuSilos.Known(), ledger.State, runId, Math.Max(0, planBytes), replicas);
        if (decision.Placement is { } placement && (ledger.State.GetValueOrDefault(runId) is not { } known
            || known.PlanBytes != placement.PlanBytes || !known.Silos.SequenceEqual(placement.Silos)))
        {
            ledger.State[runId] = placement;
            await ledger.WriteStateAsync();
        }
        return decision;
    }

    public async Task Release(string runId)
    {
        if (ledger.State.Remove(runId)) await ledger.WriteStateAsync();
    }

    public Task<Dictionary<string, RunPlacement>> Placements() => Task.FromResult(new Dictionary<string, RunPlacement>(ledger.State));
}
