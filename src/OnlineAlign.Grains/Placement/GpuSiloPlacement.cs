using System.Security.Cryptography;
using System.Text;
using Orleans.Placement;
using Orleans.Runtime.MembershipService.SiloMetadata;
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
/// Keeps the GPU silos, then picks one for a run's worker grains: a run's worker (key "run") and its
/// generation replicas (keys "run#gen1", "run#gen2", ...) go to consecutive GPU silos starting at one chosen
/// by the run's hash. Runs spread over the GPU silos, and a run's replicas land on different silos while
/// there are enough of them (more replicas than silos wrap around). Silos that die drop out of the list.
/// </summary>
public sealed class GpuSiloPlacementFilterDirector(ISiloMetadataCache metadata) : IPlacementFilterDirector
{
    public const string MetadataKey = "hardware.accelerator";

    public IEnumerable<SiloAddress> Filter(PlacementFilterStrategy filterStrategy, PlacementTarget target, IEnumerable<SiloAddress> silos)
    {
        var gpus = silos.Where(silo => metadata.GetSiloMetadata(silo).Metadata.GetValueOrDefault(MetadataKey) == "gpu")
            .OrderBy(silo => silo.ToParsableString(), StringComparer.Ordinal).ToList();
        if (gpus.Count <= 1) return gpus;
        var (run, replica) = RunAndReplica(target.GrainIdentity.Key.ToString());
        int first = (int)(BitConverter.ToUInt32(SHA256.HashData(Encoding.UTF8.GetBytes(run))) % (uint)gpus.Count); // stable across processes
        return [gpus[(first + replica) % gpus.Count]];
    }

    /// <summary>"run#gen2" is replica 2 of "run"; any other key is replica 0 of itself.</summary>
    public static (string Run, int Replica) RunAndReplica(string key)
    {
        int mark = key.LastIndexOf("#gen", StringComparison.Ordinal);
        return mark >= 0 && int.TryParse(key.AsSpan(mark + 4), out int k) ? (key[..mark], k) : (key, 0);
    }
}
