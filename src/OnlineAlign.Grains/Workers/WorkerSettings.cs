using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// Per-silo settings the worker grains need: the tensor device, a local cache folder for checkpoints, and
/// where and how much of a spec's files this silo reads, the device memory a run must fit (0: measured), and the
/// size past which the checkpoint cache evicts its least recently used checkpoints (0: unbounded), and how long a run's
/// extra replica stays idle before it lets its models go (zero: never), and whether the trainer keeps its trained model
/// in memory for the phases after (Silo:KeepTrainedModel), and whether the train phase returns before its checkpoint's
/// upload has finished (Silo:OverlapCheckpointUpload: the upload goes on behind the evaluate phase; the round commits once
/// it is durable).
/// </summary>
public sealed record WorkerSettings(string Device, string CacheFolder, DataRoots DataRoots, SpecLimits Limits, long DeviceMemoryBytes = 0,
    long HostMemoryBytes = 0,
    long CheckpointCacheBytes = WorkerSettings.DefaultCheckpointCacheBytes, TimeSpan ReplicaIdleRelease = default, bool KeepTrainedModel = true,
    bool OverlapUpload = true)
{
    /// <summary>Where built-in runs' M0 models are kept (Silo:PretrainedCacheFolder; default: cache/m0 under the data folder).</summary>
    public string PretrainedCache { get; init; } = Path.Combine(CacheFolder, "m0");

    /// <summary>
    /// The only folders a phase's model-thread job may read model files from (ModelFile.ConfineTo, checked on each open
    /// handle): the data roots (what specs name) and this silo's own cache folders (checkpoints, scratch, M0), as real paths.
    /// </summary>
    public IReadOnlyList<string> ReadRoots => _readRoots ??=
        [.. DataRoots.Roots, DataRoots.RealPath(Path.GetFullPath(CacheFolder)), DataRoots.RealPath(Path.GetFullPath(PretrainedCache))];
    private IReadOnlyList<string>? _readRoots;

    /// <summary>Until disposed, model files this thread opens must lie under <see cref="ReadRoots"/>, checked on each open handle.</summary>
    public IDisposable ConfineReads() => Modeling.Checkpoints.ModelFile.ConfineTo(ReadRoots);

    /// <summary>Silo:CheckpointCacheGigabytes' default, 50 GiB.</summary>
    public const long DefaultCheckpointCacheBytes = 50L << 30;

    /// <summary>The host memory a run's host plan must fit (Silo:HostMemoryBytes; 0: the memory this process may use, container limits included).</summary>
    public long HostBytes => HostMemoryBytes > 0 ? HostMemoryBytes : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>The device a spec runs on here and its memory; null where the device cannot be resolved or measured.</summary>
    public MemoryPlanning.DeviceBudget? Budget(RunSpec spec)
    {
        TorchSharp.torch.Device device;
        try { device = DeviceSetting.Resolve(spec.Device is "auto" or "" ? Device : spec.Device); }
        catch (ArgumentException) { return null; } // reported as the spec's device problem
        long? bytes = DeviceMemoryBytes > 0 ? DeviceMemoryBytes : DeviceMemory.Total(device);
        return bytes is null ? null : new MemoryPlanning.DeviceBudget(device.ToString(), bytes.Value, device.type == TorchSharp.DeviceType.CPU, HostBytes);
    }
}
