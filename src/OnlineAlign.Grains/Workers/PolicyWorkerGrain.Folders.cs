using OnlineAlign.Contracts;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// The local folders a phase reads its checkpoints from. A checkpoint whose model this worker holds in memory already (a
/// data-parallel replica's kept trained copy, a model an earlier phase read) is not downloaded whole: the phase reads only
/// its tokenizer and config from the folder, so its weights stay in storage, and its AdamW moments too unless the phase
/// trains from it and they are not held as well. Without this every replica other than 0 downloaded each round's whole
/// checkpoint only for those small files (replica 0 keeps the folder it wrote).
/// </summary>
public sealed partial class PolicyWorkerGrain
{
    /// <summary>
    /// The phase's checkpoints' folders, by hash, and a handle holding in memory, until the phase ends, the models found
    /// there (they are never evicted and read from a folder without weights). The run's round-0 checkpoint is always
    /// fetched whole: a LoRA checkpoint read from its folder loads its base weights from there.
    /// </summary>
    /// <param name="trains">from <paramref name="policy"/>: its carried AdamW moments are read unless held in memory</param>
    private async Task<(Dictionary<string, string> Folders, IDisposable Held)> FetchFolders(IEnumerable<BlobRef?> checkpoints, BlobRef? initial,
        BlobRef? policy, RunSpec spec, bool trains, CancellationToken ct)
    {
        var pointers = checkpoints.OfType<BlobRef>().DistinctBy(p => p.Sha256).ToList();
        var candidates = pointers.Where(p => p.Sha256 != initial?.Sha256).Select(p => p.Sha256).ToList();
        var (models, device) = (Models, Device(spec));
        var (held, handle, moments) = await Thread.Run(() =>
        {
            var (found, release) = models.Hold(candidates, device);
            return (found, release, policy is not null && models.HoldsMoments(policy.Sha256));
        });
        try
        {
            var folders = new Dictionary<string, string>();
            foreach (var pointer in pointers)
            {
                bool readMoments = trains && spec.Optimizer.CarryState && pointer.Sha256 == policy?.Sha256 && !moments;
                // A data-parallel replica's kept trained copy, still uploading on replica 0: its tokenizer files, written here.
                if (!readMoments && await KeptFolder(pointer, held.Contains(pointer.Sha256), ct) is { } kept)
                {
                    folders[pointer.Sha256] = kept;
                    continue;
                }
                folders[pointer.Sha256] = !held.Contains(pointer.Sha256) ? await Fetch(pointer, ct)
                    : await cache.FetchPartAsync(Pointer(pointer), readMoments ? "without-weights" : "without-weights-and-moments",
                        name => !IsTensorFile(name) || (readMoments && name == OptimizerState.FileName), ct);
            }
            return (folders, handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>A checkpoint's weights (whole, sharded or a LoRA adapter) and its AdamW moments: everything but them is small.</summary>
    private static bool IsTensorFile(string name) => name.EndsWith(".safetensors", StringComparison.Ordinal);
}
