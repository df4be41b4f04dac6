using OnlineAlign.Contracts;
using Orleans.Runtime;

namespace OnlineAlign.Grains.Runs;

/// <summary>The ids of all runs, in start order, and which of them are in progress (for the cluster's run limit).</summary>
[Placement.ControlSiloPreferred]
public sealed class RunRegistryGrain(
    [PersistentState("registry", "runs")] IPersistentState<List<string>> runs,
    [PersistentState("in-progress", "runs")] IPersistentState<HashSet<string>> inProgress) : Grain, IRunRegistryGrain
{
    public async Task Add(string runId)
    {
        if (runs.State.Contains(runId)) return;
        runs.State.Add(runId);
        try { await runs.WriteStateAsync(); }
        catch
        {
            runs.State.Remove(runId);
            throw;
        }
        _index?.Add(runId);
    }

    public Task<List<string>> List() => Task.FromResult(runs.State.ToList());

    public Task<(List<string> Ids, int Total)> Page(int start, int count)
    {
        start = Math.Clamp(start, 0, runs.State.Count);
        count = Math.Clamp(count, 0, runs.State.Count - start);
        return Task.FromResult((runs.State.GetRange(start, count), runs.State.Count));
    }

    public Task<bool> Contains(string runId)
    {
        _index ??= new HashSet<string>(runs.State, StringComparer.Ordinal);
        return Task.FromResult(_index.Contains(runId));
    }

    public async Task Admit(string runId, int limit)
    {
        if (inProgress.State.Contains(runId)) return;
        // A run that stopped driving without telling us (its silo died at that moment) must not hold a place forever.
        if (inProgress.State.Count >= limit) await ForgetRunsNoLongerDriving();
        if (inProgress.State.Count >= limit)
            throw new RunLimitException($"{inProgress.State.Count} runs are in progress on this cluster and its limit (Limits:RunsInProgress) is {limit}: " +
                                        "pause or cancel one, or wait for one to finish");
        inProgress.State.Add(runId);
        try { await inProgress.WriteStateAsync(); }
        catch
        {
            inProgress.State.Remove(runId);
            throw;
        }
    }

    public async Task Release(string runId)
    {
        if (inProgress.State.Remove(runId)) await inProgress.WriteStateAsync();
    }

    private async Task ForgetRunsNoLongerDriving()
    {
        foreach (var id in inProgress.State.ToList())
            if (await GrainFactory.GetGrain<IRunGrain>(id).Get() is not { } status || !status.State.IsDriving())
                inProgress.State.Remove(id);
        await inProgress.WriteStateAsync();
    }

    private HashSet<string>? _index;
}
