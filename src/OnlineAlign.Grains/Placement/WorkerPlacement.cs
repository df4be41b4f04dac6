using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// Puts a run's workers on the least busy GPU silos: it asks each GPU silo how many other runs it serves and how
/// much device memory they left (<see cref="ISiloLoadGrain"/>), picks with <see cref="GpuSiloChoice"/>, and activates
/// each replica there with a cheap call that carries Orleans' placement hint (<see cref="GpuSiloPlacementFilterDirector"/>
/// honours it). Later calls reach the activation wherever it lives. A singleton on each silo.
/// </summary>
public sealed class WorkerPlacement(IClusterMembershipService membership, ISiloMetadataCache metadata, IGrainFactory grains, ILogger<WorkerPlacement> log)
{
    /// <summary>A silo that does not answer in this time is left out of the choice (it may be dying).</summary>
    private static readonly TimeSpan LoadQueryTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The GPU silos membership says are active now.</summary>
    public IReadOnlyList<SiloAddress> GpuSilos() => membership.CurrentSnapshot.Members.Values
        .Where(m => m.Status == SiloStatus.Active
                    && metadata.GetSiloMetadata(m.SiloAddress).Metadata.GetValueOrDefault(GpuSiloPlacementFilterDirector.MetadataKey) == "gpu")
        .Select(m => m.SiloAddress).ToList();

    /// <summary>Silos for <paramref name="count"/> more of a run's replicas, least busy first; empty while no GPU silo answers.</summary>
    /// <param name="usedByRun">the silos the run's replicas placed already are on</param>
    public async Task<IReadOnlyList<SiloAddress>> Choose(string runId, int count, IReadOnlyCollection<SiloAddress> usedByRun)
    {
        var answers = await Task.WhenAll(GpuSilos().Select(async silo =>
        {
            try { return (silo, load: (SiloLoad?)await grains.GetGrain<ISiloLoadGrain>(silo.ToParsableString()).Load(runId).WaitAsync(LoadQueryTimeout)); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogWarning("GPU silo {Silo} did not say its load ({Error}); left out of run {Run}'s placement", silo, e.Message, runId);
                return (silo, load: (SiloLoad?)null);
            }
        }));
        var candidates = answers.Where(a => a.load is not null)
            .Select(a => (a.silo, a.silo.ToParsableString(), a.load!.Runs, a.load.FreeDeviceBytes)).ToList();
        var chosen = GpuSiloChoice.Pick(candidates, count, usedByRun);
        if (chosen.Count > 0)
            log.LogInformation("run {Run}: workers placed by load on {Silos} ({Loads})", runId, string.Join(", ", chosen),
                string.Join("; ", candidates.Select(c => $"{c.Item1}: {c.Runs} other runs")));
        return chosen;
    }

    /// <summary>Activates <paramref name="worker"/> on <paramref name="silo"/> unless it is active already; the hint goes with this call only.</summary>
    public static async Task Activate(IPolicyWorkerGrain worker, SiloAddress silo)
    {
        Task call;
        RequestContext.Set(IPlacementDirector.PlacementHintKey, silo);
        try { call = worker.Progress(); } // the request, with the context, is made before this returns
        finally { RequestContext.Remove(IPlacementDirector.PlacementHintKey); }
        await call;
    }
}
