using Orleans.Services;

namespace OnlineAlign.Contracts;

/// <summary>
/// One per silo (an Orleans grain service): the metadata this silo started with (its role, accelerator and device memory),
/// asked for directly by a silo whose Orleans metadata cache has none for it. Orleans fetches a silo's metadata only as
/// the membership changes, and after a failed fetch not again for minutes; without this a run could wait for a GPU silo
/// that is up and idle.
/// </summary>
[Alias("onlinealign.ISiloMetadataService")]
public interface ISiloMetadataService : IGrainService
{
    [Alias("Metadata")] Task<Dictionary<string, string>> Metadata();
}
