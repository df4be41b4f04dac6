using OnlineAlign.Contracts;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Grains.Workers;

/// <summary>Validates specs on a GPU silo (see <see cref="ISpecCheckGrain"/>); stateless, so any activation will do.</summary>
[GpuSiloOnly]
public sealed class SpecCheckGrain(WorkerSettings settings) : Grain, ISpecCheckGrain
{
    /// <summary>
    /// The spec's problems on this silo: its plan must fit the device and host memory. Alone: a run that does not fit beside
    /// the runs already placed is not refused but waits for memory (placement by load, <see cref="GpuLedgerGrain"/>).
    /// </summary>
    public Task<List<string>> Problems(RunSpec spec)
    {
        // The files are read (configs, tokenizers, weight headers) only where their paths were confined, checked on each open handle.
        using (settings.ConfineReads())
            return Task.FromResult(RunSpecMapping.Problems(spec, settings.Limits, settings.DataRoots, device: settings.Budget(spec)));
    }

    public Task<string> Plan(RunSpec spec)
    {
        // GetRun asks on every call (watchers poll it): a spec's plan is made once per silo.
        if (Plans.TryGetValue(spec, out var known)) return Task.FromResult(known);
        string plan = SpecPlans.Describe(spec, settings);
        if (Plans.Count >= MaxPlans) Plans.Clear();
        Plans[spec] = plan;
        return Task.FromResult(plan);
    }

    public Task<long> PlanPeak(RunSpec spec)
    {
        if (Peaks.TryGetValue(spec, out long known)) return Task.FromResult(known);
        long peak = SpecPlans.Peak(spec, settings);
        if (Peaks.Count >= MaxPlans) Peaks.Clear();
        Peaks[spec] = peak;
        return Task.FromResult(peak);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<RunSpec, string> Plans = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<RunSpec, long> Peaks = new();
    private const int MaxPlans = 1024;
}
