using OnlineAlign.Contracts;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Grains.Workers;

/// <summary>Validates specs on a GPU silo (see <see cref="ISpecCheckGrain"/>); stateless, so any activation will do.</summary>
[GpuSiloOnly]
public sealed class SpecCheckGrain(WorkerSettings settings, FaultPoints faults) : Grain, ISpecCheckGrain
{
    /// <summary>
    /// The spec's problems on this silo: its plan must fit the device and host memory. Alone: a run that does not fit beside
    /// the runs already placed is not refused but waits for memory (placement by load, <see cref="GpuLedgerGrain"/>).
    /// </summary>
    public async Task<List<string>> Problems(RunSpec spec)
    {
        await faults.ReachAsync(ProblemsPoint, CancellationToken.None);
        // The files are read (configs, tokenizers, weight headers) only where their paths were confined, checked on each open handle.
        using (settings.ConfineReads())
            return RunSpecMapping.Problems(spec, settings.Limits, settings.DataRoots, device: settings.Budget(spec));
    }

    /// <summary>Fault points at a check's arrival (tests: a check that fails as a call out of reach would).</summary>
    public const string ProblemsPoint = "spec-check/problems", PlanPoint = "spec-check/plan";

    // GetRun asks on every call (watchers poll it): a spec's plan is made once per silo.
    public async Task<string> Plan(RunSpec spec)
    {
        await faults.ReachAsync(PlanPoint, CancellationToken.None);
        return Once(Plans, spec, () => SpecPlans.Describe(spec, settings));
    }

    public Task<long> PlanPeak(RunSpec spec) => Task.FromResult(Once(Peaks, spec, () => SpecPlans.Peak(spec, settings)));

    private static T Once<T>(System.Collections.Concurrent.ConcurrentDictionary<RunSpec, T> made, RunSpec spec, Func<T> make)
    {
        if (made.TryGetValue(spec, out var known)) return known;
        T value = make();
        if (made.Count >= MaxPlans) made.Clear();
        made[spec] = value;
        return value;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<RunSpec, string> Plans = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<RunSpec, long> Peaks = new();
    private const int MaxPlans = 1024;
}
