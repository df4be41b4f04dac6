using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OnlineAlign.Storage;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A GPU silo's local copies of checkpoints, one folder per manifest hash. A folder is trusted only once this
/// process has checked it: downloaded and verified, written and uploaded by this process, or found on disk
/// and matched file by file (names and sha256) against the manifest in storage. A folder planted in the
/// cache, or left half-changed by an earlier process, is replaced by a fresh download.
/// </summary>
public sealed class CheckpointCache(CheckpointStore store, WorkerSettings settings, ILogger<CheckpointCache> log)
{
    private readonly ConcurrentDictionary<string, byte> _verified = new();

    public string Folder(string manifestSha256) => Path.Combine(settings.CacheFolder, "checkpoints", manifestSha256);

    /// <summary>The checkpoint's local folder, verified by this process.</summary>
    public async Task<string> FetchAsync(BlobPointer manifestPointer, CancellationToken ct = default)
    {
        string folder = Folder(manifestPointer.Sha256);
        if (_verified.ContainsKey(folder) && Directory.Exists(folder)) return folder;
        if (Directory.Exists(folder))
        {
            var manifest = await store.ReadManifestAsync(manifestPointer, ct);
            if (await CheckpointStore.FolderMatchesAsync(manifest, folder, ct))
            {
                _verified[folder] = 0;
                return folder;
            }
            log.LogWarning("cached checkpoint {Folder} does not match its manifest {Manifest}; downloading it again", folder, manifestPointer.Path);
            Directory.Move(folder, folder + ".rejected-" + Guid.NewGuid().ToString("N"));
        }
        // Download beside the cache and rename into place: several activations (replicas) on one silo
        // may fetch the same checkpoint at once, and a half-written folder must never look complete.
        string staging = folder + "." + Guid.NewGuid().ToString("N");
        await store.ReadFolderAsync(manifestPointer, staging, ct);
        try { Directory.Move(staging, folder); }
        catch (IOException) when (Directory.Exists(folder)) { Directory.Delete(staging, recursive: true); }
        _verified[folder] = 0;
        return folder;
    }

    /// <summary>Keeps a folder this process just uploaded (hashed as it went) as the cached copy of its manifest.</summary>
    public void Adopt(string uploadedFolder, BlobPointer manifestPointer)
    {
        string folder = Folder(manifestPointer.Sha256);
        try
        {
            Directory.Move(uploadedFolder, folder);
            _verified[folder] = 0;
        }
        catch (IOException) { Directory.Delete(uploadedFolder, recursive: true); } // another activation cached it first
    }
}
