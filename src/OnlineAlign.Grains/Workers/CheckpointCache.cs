using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OnlineAlign.Storage;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A GPU silo's local copies of checkpoints, one folder per manifest hash. A folder is trusted only once this
/// process has checked it: downloaded and verified, written and uploaded by this process, or found on disk
/// and matched file by file (names and sha256) against the manifest in storage. A folder planted in the
/// cache, or left half-changed by an earlier process, is replaced by a fresh download.
/// <para>
/// The cache is bounded (<see cref="WorkerSettings.CheckpointCacheBytes"/>): past it, the least recently used
/// checkpoints are deleted, never one a phase has pinned (<see cref="Pin"/>). What a process left behind
/// (scratch folders, half-downloaded or rejected copies) is removed when the cache is created.
/// </para>
/// </summary>
public sealed class CheckpointCache
{
    private readonly CheckpointStore _store;
    private readonly WorkerSettings _settings;
    private readonly ILogger<CheckpointCache> _log;
    private readonly ConcurrentDictionary<string, byte> _verified = new();
    private readonly Dictionary<string, long> _lastUsed = new();
    private readonly Dictionary<string, int> _pins = new();
    private readonly Lock _lock = new();
    private long _clock;

    public CheckpointCache(CheckpointStore store, WorkerSettings settings, ILogger<CheckpointCache> log)
    {
        (_store, _settings, _log) = (store, settings, log);
        RemoveLeftovers();
    }

    private string Root => Path.Combine(_settings.CacheFolder, "checkpoints");

    public string Folder(string manifestSha256) => Path.Combine(Root, manifestSha256);

    /// <summary>Whether this process holds the checkpoint's whole folder, verified.</summary>
    public bool Holds(string manifestSha256) => _verified.ContainsKey(Folder(manifestSha256)) && Directory.Exists(Folder(manifestSha256));

    /// <summary>Keeps the checkpoints from eviction until the returned handle is disposed (a phase's inputs while it runs).</summary>
    public IDisposable Pin(IEnumerable<string> manifestSha256s)
    {
        var folders = manifestSha256s.Distinct().Select(Folder).ToList();
        lock (_lock) foreach (var f in folders) _pins[f] = _pins.GetValueOrDefault(f) + 1;
        return new Unpin(this, folders);
    }

    private sealed class Unpin(CheckpointCache cache, List<string> folders) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 1) return;
            lock (cache._lock)
                foreach (var f in folders)
                    if (cache._pins.TryGetValue(f, out int n) && n > 1) cache._pins[f] = n - 1;
                    else cache._pins.Remove(f);
        }
    }

    /// <summary>The checkpoint's local folder, verified by this process.</summary>
    public async Task<string> FetchAsync(BlobPointer manifestPointer, CancellationToken ct = default)
    {
        string folder = Folder(manifestPointer.Sha256);
        Touch(folder);
        if (_verified.ContainsKey(folder) && Directory.Exists(folder)) return folder;
        if (Directory.Exists(folder))
        {
            var manifest = await _store.ReadManifestAsync(manifestPointer, ct);
            if (await CheckpointStore.FolderMatchesAsync(manifest, folder, ct))
            {
                _verified[folder] = 0;
                return folder;
            }
            _log.LogWarning("cached checkpoint {Folder} does not match its manifest {Manifest}; downloading it again", folder, manifestPointer.Path);
            Reject(folder);
        }
        var read = await DownloadInto(folder, manifestPointer, _ => true, ct);
        _log.LogInformation("checkpoint {Sha256} read from storage: {Files} files, {Bytes} bytes", manifestPointer.Sha256, read.Files.Count,
            read.Files.Sum(f => f.Size));
        Evict();
        return folder;
    }

    /// <summary>
    /// A checkpoint copied from the replica that wrote it, before it is whole in storage: each file pulled in pieces of at most
    /// <paramref name="pieceBytes"/> (the next requested while one is written), hashed as written and checked against the
    /// manifest (whose own hash the caller checked against the pointer), beside its place and renamed in as a download is.
    /// </summary>
    /// <returns>the bytes copied (0: this process holds the checkpoint verified already)</returns>
    public async Task<long> ReceiveAsync(BlobPointer manifestPointer, CheckpointManifest manifest, Func<string, long, int, Task<byte[]>> piece,
        int pieceBytes, CancellationToken ct)
    {
        string folder = Folder(manifestPointer.Sha256);
        Touch(folder);
        if (_verified.ContainsKey(folder) && Directory.Exists(folder)) return 0;
        if (Directory.Exists(folder))
        {
            // Not checked by this process yet (an earlier one's, another activation's just moved in, or half-changed): kept
            // if it matches the manifest, else replaced by the copy, as FetchAsync does.
            if (await CheckpointStore.FolderMatchesAsync(manifest, folder, ct))
            {
                _verified[folder] = 0;
                return 0;
            }
            Reject(folder);
        }
        string staging = folder + "." + Guid.NewGuid().ToString("N");
        long copied = 0;
        try
        {
            Directory.CreateDirectory(staging);
            // Up to four files at a time (a checkpoint's small files cost a round trip each, not one after another); the
            // first that fails stops the others.
            using var slots = new SemaphoreSlim(4);
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
            await Task.WhenAll(manifest.Files.Select(async entry =>
            {
                await slots.WaitAsync(failed.Token);
                try { await ReceiveFileAsync(entry, Path.Combine(staging, Path.GetFileName(entry.Path)), piece, pieceBytes, failed.Token); }
                catch
                {
                    await failed.CancelAsync();
                    throw;
                }
                finally { slots.Release(); }
            }));
            copied = manifest.Files.Sum(f => f.Size);
            Install(staging, folder);
        }
        catch
        {
            DeleteQuietly(staging); // a failed copy leaves no partial files
            throw;
        }
        Evict();
        return copied;
    }

    /// <summary>One file of a copied checkpoint: its pieces pulled in order (the next asked for while one is written), hashed as written.</summary>
    private static async Task ReceiveFileAsync(BlobPointer entry, string target, Func<string, long, int, Task<byte[]>> piece, int pieceBytes,
        CancellationToken ct)
    {
        string name = Path.GetFileName(entry.Path);
        string actual;
        await using (var file = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
        await using (var hashed = new Sha256WriteStream(file))
        {
            long offset = 0;
            Task<byte[]>? next = entry.Size > 0 ? piece(name, 0, (int)Math.Min(pieceBytes, entry.Size)) : null;
            try
            {
                while (next is not null)
                {
                    var data = await next.WaitAsync(ct);
                    if (data.Length == 0) throw new CorruptBlobException(entry.Path, $"{entry.Size} bytes", $"{offset} bytes from the replica that wrote it");
                    offset += data.Length;
                    next = offset < entry.Size ? piece(name, offset, (int)Math.Min(pieceBytes, entry.Size - offset)) : null;
                    await hashed.WriteAsync(data, ct);
                }
            }
            finally
            {
                // A piece asked for ahead and not awaited (the copy failed or was cancelled): observed, not left to fault unseen.
                _ = next?.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
            actual = hashed.Sha256();
        }
        if (actual != entry.Sha256) throw new CorruptBlobException(entry.Path, entry.Sha256, actual);
    }

    /// <summary>Partial copies (<see cref="FetchPartAsync"/>), apart from the whole ones: never taken for a checkpoint.</summary>
    private string PartRoot => Path.Combine(_settings.CacheFolder, "checkpoint-parts");

    /// <summary>Partial copies kept, by folder, most recent last; past <see cref="PartsKept"/> the oldest unpinned ones go.</summary>
    private readonly List<(string Folder, string Sha256)> _parts = new();

    private const int PartsKept = 8;

    /// <summary>
    /// A checkpoint's folder for a phase that reads only some of its files: those <paramref name="include"/> accepts (a
    /// worker that holds the checkpoint's model in memory reads only its tokenizer and config). The whole verified folder
    /// where this process has one; else those files alone, downloaded and verified into a partial copy kept apart from
    /// the whole folders (<paramref name="part"/> names which files it holds). A few small files per checkpoint: the
    /// newest copies are kept, the rest deleted unless a phase has the checkpoint pinned (<see cref="Pin"/>).
    /// </summary>
    public async Task<string> FetchPartAsync(BlobPointer manifestPointer, string part, Func<string, bool> include, CancellationToken ct = default)
    {
        string whole = Folder(manifestPointer.Sha256);
        Touch(whole);
        if (_verified.ContainsKey(whole) && Directory.Exists(whole)) return whole;
        string folder = Path.Combine(PartRoot, $"{manifestPointer.Sha256}-{part}");
        if (_verified.ContainsKey(folder) && Directory.Exists(folder)) return folder;
        if (Directory.Exists(folder)) DeleteQuietly(folder);   // an unverified copy (another activation's, half-replaced)
        var manifest = await DownloadInto(folder, manifestPointer, include, ct);
        var read = manifest.Files.Where(f => include(Path.GetFileName(f.Path))).ToList();
        _log.LogInformation("checkpoint {Sha256} read from storage in part ({Part}): {Files} of its {All} files, {Bytes} of its {Total} bytes",
            manifestPointer.Sha256, part, read.Count, manifest.Files.Count, read.Sum(f => f.Size), manifest.Files.Sum(f => f.Size));
        KeepNewestParts(folder, manifestPointer.Sha256);
        return folder;
    }

    /// <summary>
    /// A partial copy this process writes itself, before the checkpoint is in storage: the tokenizer files of a trained model
    /// a data-parallel replica kept in memory (the files replica 0 wrote into that checkpoint from the same tokenizer).
    /// Written beside its place and renamed into it, kept as <see cref="FetchPartAsync"/>'s copies are.
    /// </summary>
    public string AdoptPart(string sha256, string part, IEnumerable<(string Name, string Content)> files)
    {
        string folder = Path.Combine(PartRoot, $"{sha256}-{part}");
        string staging = folder + "." + Guid.NewGuid().ToString("N");
        Directory.CreateDirectory(staging);
        foreach (var (name, content) in files) File.WriteAllText(Path.Combine(staging, Path.GetFileName(name)), content);
        if (Directory.Exists(folder)) DeleteQuietly(folder);
        Directory.Move(staging, folder);
        _verified[folder] = 0;
        KeepNewestParts(folder, sha256);
        return folder;
    }

    /// <summary>
    /// Downloads the files <paramref name="include"/> accepts beside <paramref name="folder"/> and renames them into place,
    /// verified: several activations (replicas) on one silo may fetch the same checkpoint at once, and a half-written
    /// folder must never look complete.
    /// </summary>
    private async Task<CheckpointManifest> DownloadInto(string folder, BlobPointer manifestPointer, Func<string, bool> include, CancellationToken ct)
    {
        string staging = folder + "." + Guid.NewGuid().ToString("N");
        try
        {
            var manifest = await _store.ReadFolderAsync(manifestPointer, staging, include, ct);
            Install(staging, folder);
            return manifest;
        }
        catch
        {
            DeleteQuietly(staging); // a failed download (a full disk, storage gone) leaves no partial files
            throw;
        }
    }

    /// <summary>Renames a verified staging folder into its place (another activation's, there first, is kept) and trusts it.</summary>
    private void Install(string staging, string folder)
    {
        try { Directory.Move(staging, folder); }
        catch (IOException) when (Directory.Exists(folder)) { Directory.Delete(staging, recursive: true); }
        _verified[folder] = 0;
    }

    /// <summary>A folder that does not match its manifest: moved aside first (the name is free at once), then deleted; never read again.</summary>
    private void Reject(string folder)
    {
        string rejected = folder + ".rejected-" + Guid.NewGuid().ToString("N");
        Directory.Move(folder, rejected);
        DeleteQuietly(rejected);
    }

    private void KeepNewestParts(string folder, string sha256)
    {
        var gone = new List<string>();
        lock (_lock)
        {
            _parts.RemoveAll(p => p.Folder == folder);
            _parts.Add((folder, sha256));
            for (int i = 0; i < _parts.Count && _parts.Count > PartsKept;)
                if (_pins.ContainsKey(Folder(_parts[i].Sha256))) i++;
                else
                {
                    gone.Add(_parts[i].Folder);
                    _parts.RemoveAt(i);
                }
        }
        foreach (var old in gone)
        {
            _verified.TryRemove(old, out _);
            DeleteQuietly(old);
        }
    }

    /// <summary>Keeps a folder this process just uploaded (hashed as it went) as the cached copy of its manifest.</summary>
    public void Adopt(string uploadedFolder, BlobPointer manifestPointer)
    {
        string folder = Folder(manifestPointer.Sha256);
        Touch(folder);
        try
        {
            Directory.Move(uploadedFolder, folder);
            _verified[folder] = 0;
        }
        catch (IOException) { Directory.Delete(uploadedFolder, recursive: true); } // another activation cached it first
        Evict();
    }

    /// <summary>
    /// Deletes a checkpoint's local copy that never became a checkpoint in storage (its upload failed): nothing will name it,
    /// and on a full disk its space is what the retry needs.
    /// </summary>
    public void Forget(string manifestSha256)
    {
        string folder = Folder(manifestSha256);
        _verified.TryRemove(folder, out _);
        lock (_lock) _lastUsed.Remove(folder);
        if (DeleteQuietly(folder)) _log.LogInformation("removed the local copy {Folder} of a checkpoint whose upload failed", folder);
    }

    private void Touch(string folder)
    {
        lock (_lock) _lastUsed[folder] = ++_clock;
    }

    /// <summary>
    /// Deletes the least recently used unpinned checkpoints until the cache fits its size. Checked and deleted under
    /// the lock a pin takes: a checkpoint is either pinned first (and kept) or deleted first (and downloaded again).
    /// </summary>
    public void Evict()
    {
        if (_settings.CheckpointCacheBytes <= 0 || !Directory.Exists(Root)) return;
        var folders = Directory.GetDirectories(Root).Where(d => !Path.GetFileName(d).Contains('.'))
            .Select(d => (Folder: d, Bytes: Size(d))).ToList();
        long total = folders.Sum(f => f.Bytes);
        if (total <= _settings.CheckpointCacheBytes) return;
        lock (_lock)
        {
            // Folders this process has not used (an earlier process's) go first, then by last use.
            foreach (var (folder, bytes) in folders.OrderBy(f => _lastUsed.GetValueOrDefault(f.Folder)))
            {
                if (total <= _settings.CheckpointCacheBytes) break;
                if (_pins.ContainsKey(folder)) continue;
                _verified.TryRemove(folder, out _);
                _lastUsed.Remove(folder);
                if (DeleteQuietly(folder)) total -= bytes;
                _log.LogInformation("checkpoint cache over {Limit} bytes: evicted {Folder} ({Bytes} bytes)", _settings.CheckpointCacheBytes, folder, bytes);
            }
        }
        if (total > _settings.CheckpointCacheBytes)
            _log.LogWarning("checkpoint cache holds {Total} bytes, over its {Limit}: the rest is in use", total, _settings.CheckpointCacheBytes);
    }

    /// <summary>A folder's bytes; 0 for one that another activation on this silo removes or renames meanwhile.</summary>
    private static long Size(string folder)
    {
        long bytes = 0;
        try
        {
            foreach (var file in new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories))
                try { bytes += file.Length; }
                catch (FileNotFoundException) { }
        }
        catch (DirectoryNotFoundException) { }
        return bytes;
    }

    /// <summary>What an earlier process left: scratch folders of attempts that never finished, partial, staging and rejected copies.</summary>
    private void RemoveLeftovers()
    {
        DeleteQuietly(Path.Combine(_settings.CacheFolder, "scratch"));
        DeleteQuietly(PartRoot);   // small files, read again when needed: not worth checking against their manifests
        if (!Directory.Exists(Root)) return;
        foreach (var d in Directory.GetDirectories(Root).Where(d => Path.GetFileName(d).Contains('.'))) DeleteQuietly(d);
    }

    private bool DeleteQuietly(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning(e, "could not delete {Folder}", folder);
            return false;
        }
    }
}
