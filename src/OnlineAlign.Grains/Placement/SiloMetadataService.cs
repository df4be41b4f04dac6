using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using Orleans.Concurrency;
using Orleans.Runtime.Services;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// The metadata this silo was started with (the same dictionary it gives Orleans' UseSiloMetadata). Held here rather than
/// read from Orleans' own IOptions&lt;SiloMetadata&gt;: that type is filled only through Orleans-internal methods, so a test
/// could not build a view with a metadata of its own.
/// </summary>
public sealed record LocalSiloMetadata(IReadOnlyDictionary<string, string> Values);

/// <summary>Answers <see cref="ISiloMetadataService"/> on every silo from <see cref="LocalSiloMetadata"/>.</summary>
[Reentrant]
public sealed class SiloMetadataService(GrainId id, Silo silo, ILoggerFactory loggers, LocalSiloMetadata local)
    : GrainService(id, silo, loggers), ISiloMetadataService
{
    public Task<Dictionary<string, string>> Metadata() => Task.FromResult(new Dictionary<string, string>(local.Values));
}

/// <summary>Calls a given silo's <see cref="ISiloMetadataService"/> (not the one the consistent ring would pick).</summary>
public sealed class SiloMetadataServiceClient(IServiceProvider services) : GrainServiceClient<ISiloMetadataService>(services)
{
    public Task<Dictionary<string, string>> Ask(SiloAddress silo) => GetGrainService(silo).Metadata();
}
