using OnlineAlign.Contracts;
using Orleans.Runtime;

namespace OnlineAlign.Grains.Runs;

/// <summary>The ids of all runs, in start order.</summary>
public sealed class RunRegistryGrain([PersistentState("registry", "runs")] IPersistentState<List<string>> runs) : Grain, IRunRegistryGrain
{
    public async Task Add(string runId)
    {
        if (runs.State.Contains(runId)) return;
        runs.State.Add(runId);
        await runs.WriteStateAsync();
    }

    public Task<List<string>> List() => Task.FromResult(runs.State.ToList());
}
