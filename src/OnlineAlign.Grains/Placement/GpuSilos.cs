using Orleans.Runtime.MembershipService.SiloMetadata;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// The GPU silos this silo's membership view holds active now: how many replicas `generation_replicas: 0` (one per
/// GPU silo) asks for. A silo joining later is used from the next round on. A singleton on each silo.
/// </summary>
public sealed class GpuSilos(IClusterMembershipService membership, ISiloMetadataCache metadata)
{
    public int ActiveCount() => membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active
        && metadata.GetSiloMetadata(m.SiloAddress).Metadata.GetValueOrDefault(GpuSiloPlacementFilterDirector.MetadataKey) == "gpu");
}
