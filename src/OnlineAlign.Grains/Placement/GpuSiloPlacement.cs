using System.Security.Cryptography;
using System.Text;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// Places a grain only on silos whose metadata says hardware.accelerator=gpu. Control silos never
/// activate such grains. Until some GPU silo's metadata is known, placement fails and the caller retries.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class GpuSiloOnlyAttribute() : PlacementFilterAttribute(new GpuSiloPlacementFilterStrategy());

public sealed class GpuSiloPlacementFilterStrategy() : PlacementFilterStrategy(0);

/// <summary>
/// Keeps the GPU silos, then picks one for a run's worker grains: the silo the GPU ledger placed it on (placement by
/// load, see <see cref="GpuPlacement"/>), which the run grain passes in the call's request context
/// (<see cref="HintKey"/>: "key=silo" lines) while that silo is still a GPU silo here. Without a hint (a call from
/// elsewhere), a run's worker (key "run") and its replicas (keys "run#gen1", "run#gen2", ...) go to consecutive GPU
/// silos starting at one chosen by the run's hash. Silos that die drop out of the list.
/// </summary>
public sealed class GpuSiloPlacementFilterDirector(SiloMetadataView metadata) : IPlacementFilterDirector
{
    public const string MetadataKey = "hardware.accelerator";

    /// <summary>The request context entry that carries a run's placement to the silo that activates its workers.</summary>
    public const string HintKey = "onlinealign.placement";

    public IEnumerable<SiloAddress> Filter(PlacementFilterStrategy filterStrategy, PlacementTarget target, IEnumerable<SiloAddress> silos)
    {
        var gpus = silos.Where(silo => metadata.Of(silo).GetValueOrDefault(MetadataKey) == "gpu")
            .OrderBy(silo => silo.ToParsableString(), StringComparer.Ordinal).ToList();
        if (gpus.Count == 0) return gpus;
        string key = target.GrainIdentity.Key.ToString() ?? "";
        if (Hinted(target.RequestContextData, key) is { } hinted)
        {
            // The ledger placed this replica on a silo this silo's view does not list (yet: membership, metadata and the
            // grain manifest arrive apart; or no longer). Falling back to the hash would put the replica beside another
            // for good (an activation stays where it is while its silo lives), so the call fails as transient and the run
            // retries with backoff, asking the ledger again, until the views agree.
            return gpus.Find(s => s.ToParsableString() == hinted) is { } placed ? [placed]
                : throw new OnlineAlign.Contracts.TransientPhaseException(
                    $"replica {key} is placed on GPU silo {hinted}, which this silo does not list as able to host it yet");
        }
        if (gpus.Count == 1) return gpus;
        // A served round ("run@N:sha") goes where the run's own worker goes without a hint: its checkpoints are likely cached there.
        var (run, replica) = OnlineAlign.Contracts.ServedRoundKeys.Parse(key) is { } served ? (served.Run, 0) : RunAndReplica(key);
        int first = (int)(BitConverter.ToUInt32(SHA256.HashData(Encoding.UTF8.GetBytes(run))) % (uint)gpus.Count); // stable across processes
        return [gpus[(first + replica) % gpus.Count]];
    }

    /// <summary>The silo the hint names for the grain key, if any.</summary>
    public static string? Hinted(IReadOnlyDictionary<string, object>? context, string key)
    {
        if (context?.GetValueOrDefault(HintKey) is not string hint) return null;
        foreach (var line in hint.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && line.AsSpan(0, eq).SequenceEqual(key)) return line[(eq + 1)..];
        }
        return null;
    }

    /// <summary>The hint for a run's placement: replica k's grain key = its silo.</summary>
    public static string Hint(string runId, IReadOnlyList<string> silos) =>
        string.Join('\n', silos.Select((silo, k) => $"{(k == 0 ? runId : $"{runId}#gen{k}")}={silo}"));

    /// <summary>"run#gen2" is replica 2 of "run"; any other key is replica 0 of itself.</summary>
    public static (string Run, int Replica) RunAndReplica(string key)
    {
        int mark = key.LastIndexOf("#gen", StringComparison.Ordinal);
        return mark >= 0 && int.TryParse(key.AsSpan(mark + 4), out int k) ? (key[..mark], k) : (key, 0);
    }
}
