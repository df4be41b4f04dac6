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

public sealed class GpuSiloPlacementFilterDirector(ISiloMetadataCache metadata) : IPlacementFilterDirector
{
    public const string MetadataKey = "hardware.accelerator";

    public IEnumerable<SiloAddress> Filter(PlacementFilterStrategy filterStrategy, PlacementTarget target, IEnumerable<SiloAddress> silos) =>
        silos.Where(silo => metadata.GetSiloMetadata(silo).Metadata.GetValueOrDefault(MetadataKey) == "gpu");
}
