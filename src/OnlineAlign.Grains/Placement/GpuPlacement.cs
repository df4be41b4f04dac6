using System.Globalization;
using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Placement;

/// <summary>A GPU-tagged silo as placement sees it: its address and the device memory it reported (null: not known yet).</summary>
public sealed record GpuSilo(string Address, long? DeviceBytes);

/// <summary>
/// Placement by load, as a pure function of the GPU silos and the placements already made (the ledger): each replica of
/// a run goes to the silo with the most device memory left after the plans placed there. Deterministic: ties go to the
/// silo whose address sorts first (ordinal). A silo whose device memory is not known yet (it joined, its metadata has
/// not arrived) is never picked, and placements on silos that are gone free nothing and count for nothing.
/// </summary>
public static class GpuPlacement
{
    /// <summary>
    /// The GPU silos the ledger sees that the asking run's silo lists too. The run's silo activates the replicas and its
    /// placement filter refuses a silo it does not list; Orleans fetches a silo's metadata only when the membership changes,
    /// so a silo that just started may miss one for minutes. Placing on a silo it cannot use would fail every phase until
    /// the views agree; placing on fewer silos changes nothing in the results (they do not depend on the replica count).
    /// </summary>
    public static List<GpuSilo> Within(IEnumerable<GpuSilo> known, IReadOnlyCollection<string> placeable) =>
        known.Where(s => placeable.Contains(s.Address, StringComparer.Ordinal)).ToList();

    /// <param name="silos">the GPU-tagged silos active now</param>
    /// <param name="placed">the ledger: every run's placement (this run's own included, if it has one)</param>
    /// <param name="replicas">the replicas wanted; 0: one on every silo where the plan fits (at least one)</param>
    public static GpuPlacementDecision Decide(IReadOnlyList<GpuSilo> silos, IReadOnlyDictionary<string, RunPlacement> placed,
        string runId, long planBytes, int replicas)
    {
        var known = silos.Where(s => s.DeviceBytes is > 0).OrderBy(s => s.Address, StringComparer.Ordinal).ToList();
        if (known.Count == 0)
            return new() { Wait = "no GPU silo with a known device memory is in the cluster yet" };
        var free = known.ToDictionary(s => s.Address, s => s.DeviceBytes!.Value, StringComparer.Ordinal);
        foreach (var (run, placement) in placed.Where(kv => kv.Key != runId))
            foreach (var silo in placement.Silos.Where(free.ContainsKey))
                free[silo] -= placement.PlanBytes;

        // This run's replicas whose silo is alive keep it (their models live there), unless it shares that silo while another
        // has room and none of the run's replicas (Unstack); the others are placed again. With 0, a replica whose silo is gone
        // is not: 0 is one per GPU silo present, and placed again it would share a live silo with another replica.
        var own = placed.GetValueOrDefault(runId)?.Silos ?? [];
        if (replicas == 0) own = own.Where(free.ContainsKey).ToList();
        int wanted = replicas > 0 ? replicas : Math.Max(own.Count, 1);
        var chosen = new List<string?>();
        for (int k = 0; k < wanted; k++)
        {
            string? keep = k < own.Count && free.TryGetValue(own[k], out long left) && left >= planBytes ? own[k] : null;
            chosen.Add(keep);
            if (keep is not null) free[keep] -= planBytes;
        }
        for (int k = 0; k < chosen.Count; k++)
        {
            if (chosen[k] is not null) continue;
            if (Best(free, chosen, planBytes) is not { } silo)
            {
                // Every replica of an explicit count must fit; with 0 a replica that fits nowhere is left out.
                if (replicas > 0 || k == 0) return new() { Wait = Reason(known, free, planBytes, k) };
                chosen.RemoveRange(k, chosen.Count - k);
                break;
            }
            chosen[k] = silo;
            free[silo] -= planBytes;
        }
        Unstack(free, chosen, planBytes);
        // 0 is one per silo: replicas still sharing one (a round resumed with its count after a silo died stacked them, and
        // no silo free of the run has room) are let go, the last first; every silo with room that holds none takes one.
        if (replicas == 0)
        {
            chosen = chosen.Distinct(StringComparer.Ordinal).ToList();
            while (Best(free, chosen, planBytes, newSilosOnly: true) is { } silo)
            {
                chosen.Add(silo);
                free[silo] -= planBytes;
            }
        }
        return new() { Placement = new RunPlacement { Silos = chosen.Select(s => s!).ToList(), PlanBytes = planBytes } };
    }

    /// <summary>
    /// Replicas kept beside another of the run's replicas (placed while a silo's metadata was on its way, or after a silo
    /// died) move, the last first, to a silo with room that holds none of the run's replicas: otherwise they would share
    /// one silo for as long as it lives. Replica 0 (the run's own worker, which merges and trains) is never the one moved.
    /// </summary>
    private static void Unstack(Dictionary<string, long> free, List<string?> chosen, long planBytes)
    {
        for (int k = chosen.Count - 1; k > 0; k--)
        {
            if (chosen.IndexOf(chosen[k]) == k) continue;   // the first of the run's replicas on its silo stays
            if (Best(free, chosen, planBytes, newSilosOnly: true) is not { } empty) return;
            free[chosen[k]!] += planBytes;
            chosen[k] = empty;
            free[empty] -= planBytes;
        }
    }

    /// <summary>
    /// The silo for one more replica: first those holding fewest of this run's replicas (spread), then the most memory
    /// left, then the address; null when the plan fits on none.
    /// </summary>
    private static string? Best(Dictionary<string, long> free, List<string?> chosen, long planBytes, bool newSilosOnly = false) =>
        free.Where(kv => kv.Value >= planBytes && (!newSilosOnly || !chosen.Contains(kv.Key)))
            .OrderBy(kv => chosen.Count(c => c == kv.Key)).ThenByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => kv.Key).FirstOrDefault();

    private static string Reason(List<GpuSilo> known, Dictionary<string, long> free, long planBytes, int replica) =>
        $"the run's memory plan ({Gib(planBytes)} per replica{(replica > 0 ? $", replica {replica}" : "")}) does not fit beside the runs " +
        $"already placed on any GPU silo: " + string.Join(", ", known.Select(s => $"{s.Address} has {Gib(Math.Max(0, free[s.Address]))} " +
            $"of {Gib(s.DeviceBytes!.Value)} left")) + "; it starts when a run finishes and frees memory";

    private static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB";
}
