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
        try { await runs.WriteStateAsync(); }
        catch
        {
            runs.State.Remove(runId);
            throw;
        }
        _index?.Add(runId);
    }

    public Task<List<string>> List() => Task.FromResult(runs.State.ToList());

    public Task<bool> Contains(string runId)
    {
        _index ??= new HashSet<string>(runs.State, StringComparer.Ordinal);
        return Task.FromResult(_index.Contains(runId));
    }

    private HashSet<string>? _index;
}
