using OnlineAlign.Pipeline.Files;
using OnlineAlign.Pipeline.Specs;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// Per-silo settings the worker grains need: the tensor device, a local cache folder for checkpoints, and
/// where and how much of a spec's files this silo reads.
/// </summary>
public sealed record WorkerSettings(string Device, string CacheFolder, DataRoots DataRoots, SpecLimits Limits);
