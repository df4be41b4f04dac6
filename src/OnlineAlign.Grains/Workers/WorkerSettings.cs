namespace OnlineAlign.Grains.Workers;

/// <summary>Per-silo settings the worker grains need: the tensor device and a local cache folder for checkpoints.</summary>
public sealed record WorkerSettings(string Device, string CacheFolder);
