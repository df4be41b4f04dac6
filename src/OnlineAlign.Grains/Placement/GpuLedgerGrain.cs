using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// The cluster's ledger of placements (see <see cref="IGpuLedgerGrain"/>): persisted, so a restarted ledger decides from
/// the same state; the decision itself is <see cref="GpuPlacement.Decide"/>'s, over the GPU silos this silo sees now.
/// Not reentrant: one placement at a time, so two runs never take the same free memory.
/// </summary>
[ControlSiloPreferred]
public sealed class GpuLedgerGrain(
    [PersistentState("gpu-ledger", "runs")] IPersistentState<Dictionary<string, RunPlacement>> ledger,
    GpuSilos gpuSilos,
    ILogger<GpuLedgerGrain> log) : Grain, IGpuLedgerGrain
{
    /// <summary>Which silo holds the ledger, and what it read from storage (after its silo died: the placements it still knows).</summary>
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        log.LogInformation("GPU ledger active on this silo with {Count} placements: {Runs}", ledger.State.Count,
            string.Join(", ", ledger.State.Select(p => $"{p.Key} ({p.Value.Silos.Count} replicas)")));
        return Task.CompletedTask;
    }

    public async Task<GpuPlacementDecision> Place(string runId, long planBytes, int replicas, List<string> placeable)
    {
        var known = gpuSilos.Known();
        var silos = GpuPlacement.Within(known, placeable);
        var decision = GpuPlacement.Decide(silos, ledger.State, runId, Math.Max(0, planBytes), replicas);
        // A run that stopped driving without releasing (its silo died at that moment) must not hold memory forever.
        if (decision.Placement is null && await ForgetRunsNoLongerDriving(runId))
            decision = GpuPlacement.Decide(silos, ledger.State, runId, Math.Max(0, planBytes), replicas);
        if (decision.Placement is null && silos.Count == 0 && known.Count > 0)
            decision = decision with { Wait = "the run's silo lists none of the cluster's GPU silos yet (their metadata has not reached it)" };
        if (decision.Placement is { } placement && (ledger.State.GetValueOrDefault(runId) is not { } previous
            || previous.PlanBytes != placement.PlanBytes || !previous.Silos.SequenceEqual(placement.Silos)))
        {
            ledger.State[runId] = placement;
            await ledger.WriteStateAsync();
            // Which silos a run got, and which GPU silos this silo saw then: a run on fewer replicas than expected (a silo whose
            // metadata had not arrived here) is told from the log alone.
            log.LogInformation("GPU ledger: run {Run} placed on {Silos} (GPU silos seen here: {Known}; listed by the run's silo: {Placeable}; " +
                "active silos without metadata here: {Unknown})",
                runId, string.Join(", ", placement.Silos), string.Join(", ", known.Select(s => s.Address)), string.Join(", ", placeable),
                gpuSilos.WithoutMetadata() is { Count: > 0 } unknown ? string.Join(", ", unknown) : "none");
        }
        return decision;
    }

    public async Task Release(string runId)
    {
        if (ledger.State.Remove(runId)) await ledger.WriteStateAsync();
    }

    /// <summary>Drops the placements of runs (other than the one asking) that are no longer driving; true when any was dropped.</summary>
    private async Task<bool> ForgetRunsNoLongerDriving(string asking)
    {
        var stale = new List<string>();
        foreach (var id in ledger.State.Keys.Where(id => id != asking).ToList())
            if (await GrainFactory.GetGrain<IRunGrain>(id).Get() is not { } status || !status.State.IsDriving()) stale.Add(id);
        if (stale.Count == 0) return false;
        foreach (var id in stale) ledger.State.Remove(id);
        await ledger.WriteStateAsync();
        return true;
    }

    public Task<Dictionary<string, RunPlacement>> Placements() => Task.FromResult(new Dictionary<string, RunPlacement>(ledger.State));
}
