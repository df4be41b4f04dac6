using System.Globalization;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// The GPU silos this silo's membership view holds active now: how many replicas `generation_replicas: 0` (one per
/// GPU silo) asks for, and the device memory each reported (placement by load; 0 in the metadata: it could not be measured). A silo joining later is used from the
/// next round on. A singleton on each silo.
/// </summary>
public sealed class GpuSilos(SiloMetadataView metadata)
{
    /// <summary>Silo metadata: the device memory in bytes a GPU silo offers to runs' memory plans.</summary>
    public const string DeviceMemoryKey = "hardware.device_memory_bytes";

    public int ActiveCount() => Known().Count;

    /// <summary>
    /// The active GPU-tagged silos with the device memory their metadata reports (null when it says none). A silo whose
    /// metadata has not reached this silo yet (membership and metadata arrive apart) has no tag here, so it is not listed.
    /// </summary>
    public List<GpuSilo> Known() => metadata.Active()
        .Where(m => m.Metadata.GetValueOrDefault(GpuSiloPlacementFilterDirector.MetadataKey) == "gpu")
        .Select(m => new GpuSilo(m.Silo.ToParsableString(),
            long.TryParse(m.Metadata.GetValueOrDefault(DeviceMemoryKey), NumberStyles.None, CultureInfo.InvariantCulture, out long bytes)
                ? bytes > 0 ? bytes : Unmeasured : null))
        .ToList();

    /// <summary>Active silos whose metadata this silo has from nowhere yet (neither their role nor their device is known here). For the log.</summary>
    public List<string> WithoutMetadata() => metadata.Active().Where(m => m.Metadata.Count == 0).Select(m => m.Silo.ToParsableString()).ToList();

    /// <summary>A GPU silo that could not measure its device memory (and no Silo:DeviceMemoryBytes says): runs spread by count there.</summary>
    public const long Unmeasured = long.MaxValue / 4;
}
