using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage;
using Azure.Storage.Blobs.Models;

namespace OnlineAlign.Storage;

/// <summary>
/// Write-once blobs in Azure Blob storage (Azurite locally). A path is written at most once
/// (If-None-Match: *), every read is checked against the sha256 recorded at write time, and a
/// checkpoint is a folder of files plus a manifest listing their sizes and hashes.
/// </summary>
public sealed class CheckpointStore
{
    private readonly BlobContainerClient _container;
    private bool _created;

    public CheckpointStore(string connectionString, string container = "onlinealign", long maxUploadBytesPerSecond = 0)
        : this(new BlobServiceClient(connectionString).GetBlobContainerClient(container), maxUploadBytesPerSecond) { }

    /// <param name="transfers">How files are cut into requests; by default <see cref="DefaultTransfers"/>.</param>
    public CheckpointStore(BlobContainerClient container, long maxUploadBytesPerSecond = 0, StorageTransferOptions? transfers = null)
    {
        _container = container;
        _maxUploadBytesPerSecond = maxUploadBytesPerSecond;
        _transfers = transfers ?? DefaultTransfers;
    }

    /// <summary>Caps checkpoint upload bandwidth (0: no cap), for silos that share a link with other traffic.</summary>
    private readonly long _maxUploadBytesPerSecond;

    private readonly StorageTransferOptions _transfers;

    private async Task EnsureContainerAsync(CancellationToken ct)
    {
        if (_created) return;
        await _container.CreateIfNotExistsAsync(cancellationToken: ct);
        _created = true;
    }

    /// <summary>Writes bytes to a new path. Writing the same bytes again is a no-op; different bytes are refused.</summary>
    public async Task<BlobPointer> WriteOnceAsync(string path, byte[] content, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        string hash = Sha256(content);
        var blob = _container.GetBlobClient(path);
        if (!await CreateAsync(options => blob.UploadAsync(new BinaryData(content), options, ct), hash))
            await RequireSameContentAsync(blob, hash, ct);
        return new BlobPointer(path, hash, content.LongLength);
    }

    /// <summary>
    /// Streams content to a new path, for outputs that may be larger than one array can hold (2 GB): <paramref name="write"/>
    /// writes it to a local spool file, hashed on the way, then uploaded from disk. The stream it is given is write-only. The blob and its hash are the bytes
    /// written, exactly as <see cref="WriteOnceAsync(string, byte[], CancellationToken)"/> would store them.
    /// </summary>
    public async Task<BlobPointer> WriteOnceAsync(string path, Func<Stream, CancellationToken, Task> write, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        await using var spool = Spool();
        string hash;
        // Hashed as it is written: the spool is read once, by the upload.
        await using (var hashed = new Sha256WriteStream(spool))
        {
            await write(hashed, ct);
            hash = hashed.Sha256();
        }
        await spool.FlushAsync(ct);
        long length = spool.Length;
        spool.Position = 0;
        var blob = _container.GetBlobClient(path);
        if (!await CreateAsync(options => blob.UploadAsync(spool, options, ct), hash))
            await RequireSameContentAsync(blob, hash, ct);
        return new BlobPointer(path, hash, length);
    }

    /// <summary>
    /// Reads a blob through a stream: downloaded to a local spool file, its hash checked, then handed to
    /// <paramref name="read"/> (no array of the whole blob, so its size is not limited to 2 GB).
    /// </summary>
    public async Task<T> ReadAsync<T>(BlobPointer blob, Func<Stream, CancellationToken, Task<T>> read, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        await using var spool = Spool();
        string actual;
        await using (var hashed = new Sha256WriteStream(spool))
        {
            try { await _container.GetBlobClient(blob.Path).DownloadToAsync(hashed, new BlobDownloadToOptions { TransferOptions = _transfers }, ct); }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                throw new FileNotFoundException($"blob '{blob.Path}' does not exist", blob.Path, e);
            }
            actual = hashed.Sha256();
        }
        await spool.FlushAsync(ct);
        if (actual != blob.Sha256) throw new CorruptBlobException(blob.Path, blob.Sha256, actual);
        spool.Position = 0;
        return await read(spool, ct);
    }

    /// <summary>A temporary file that is deleted when closed (by the OS, even if the process dies first on Linux once unlinked).</summary>
    private static FileStream Spool() =>
        new(Path.Combine(Path.GetTempPath(), $"onlinealign-spool-{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);

    /// <summary>
    /// Writes bytes to a new path unless someone wrote it first; returns what the path holds afterwards
    /// (ours, or the first writer's). Two writers racing for one path agree on a single winner.
    /// </summary>
    public async Task<byte[]> WriteFirstAsync(string path, byte[] content, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        var blob = _container.GetBlobClient(path);
        if (await CreateAsync(options => blob.UploadAsync(new BinaryData(content), options, ct), Sha256(content))) return content;
        return await TryReadAsync(path, ct) ?? throw new InvalidOperationException($"blob '{path}' exists but cannot be read");
    }

    /// <summary>
    /// The one way this store creates a blob: only if the path is new (If-None-Match: *), with the content's
    /// sha256 in its metadata. False when the path already exists.
    /// </summary>
    private async Task<bool> CreateAsync(Func<BlobUploadOptions, Task> upload, string sha256)
    {
        try
        {
            await upload(new BlobUploadOptions
            {
                Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                Metadata = new Dictionary<string, string> { ["sha256"] = sha256 },
                TransferOptions = _transfers,
            });
            return true;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            return false;
        }
    }

    /// <summary>An existing write-once blob is accepted only if it holds the same content (by the hash recorded when it was written).</summary>
    private static async Task RequireSameContentAsync(BlobClient blob, string sha256, CancellationToken ct)
    {
        var properties = await blob.GetPropertiesAsync(cancellationToken: ct);
        if (!properties.Value.Metadata.TryGetValue("sha256", out var existing) || existing != sha256)
            throw new InvalidOperationException($"blob '{blob.Name}' already exists with different content; write-once paths are never overwritten");
    }

    /// <summary>
    /// Reads a blob whose hash the caller does not know yet, checking it against the sha256 recorded in its
    /// metadata when it was written. Null when the blob does not exist.
    /// </summary>
    public async Task<byte[]?> TryReadAsync(string path, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        Azure.Response<BlobDownloadResult> download;
        try { download = await _container.GetBlobClient(path).DownloadContentAsync(ct); }
        catch (RequestFailedException e) when (e.Status == 404) { return null; }
        var content = download.Value.Content.ToArray();
        string actual = Sha256(content);
        if (!download.Value.Details.Metadata.TryGetValue("sha256", out var expected) || expected != actual)
            throw new CorruptBlobException(path, expected ?? "(none recorded)", actual);
        return content;
    }

    /// <summary>Reads a blob and checks its hash.</summary>
    public async Task<byte[]> ReadAsync(BlobPointer blob, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        byte[] content;
        try
        {
            content = (await _container.GetBlobClient(blob.Path).DownloadContentAsync(ct)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new FileNotFoundException($"blob '{blob.Path}' does not exist", blob.Path, e);
        }
        string actual = Sha256(content);
        if (actual != blob.Sha256) throw new CorruptBlobException(blob.Path, blob.Sha256, actual);
        return content;
    }

    /// <summary>
    /// Uploads each file of a local folder under prefix, then a manifest.json listing them. The manifest is
    /// written last: a folder without one is an interrupted upload, never read as a checkpoint. Files are
    /// streamed (hashed first, then sent in parallel blocks), so their size is not limited by memory.
    /// <paramref name="afterFile"/> runs after each file's upload (a fault test's hook: a kill between files).
    /// </summary>
    public async Task<BlobPointer> WriteFolderAsync(string prefix, string folder, CancellationToken ct = default, Func<Task>? afterFile = null) =>
        await UploadFolderAsync(await PlanFolderAsync(prefix, folder, null, ct), folder, ct, afterFile);

    /// <summary>
    /// The checkpoint a folder will be once uploaded under <paramref name="prefix"/>: every file hashed here, and the
    /// manifest (and so its pointer and hash) built from them before any byte is sent. A worker hands this pointer on at
    /// once and uploads behind it (<see cref="UploadFolderAsync"/>); nobody may read it until that upload has returned.
    /// <paramref name="written"/> gives, by file name, the sha256 a writer took of the bytes it wrote (a trained checkpoint's
    /// gigabytes, hashed beside their write): those files are not read again here. Readers verify every file anyway.
    /// </summary>
    public static async Task<FolderPlan> PlanFolderAsync(string prefix, string folder, IReadOnlyDictionary<string, string>? written = null,
        CancellationToken ct = default)
    {
        var entries = new List<BlobPointer>();
        foreach (var file in Directory.EnumerateFiles(folder).OrderBy(f => f, StringComparer.Ordinal))
        {
            string name = Path.GetFileName(file);
            string sha256 = written is not null && written.TryGetValue(name, out var taken) ? taken : await FileSha256(file, ct);
            entries.Add(new BlobPointer($"{prefix}/{name}", sha256, new FileInfo(file).Length));
        }
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new CheckpointManifest(entries), ManifestJson);
        return new FolderPlan(entries, manifest, new BlobPointer($"{prefix}/manifest.json", Sha256(manifest), manifest.LongLength));
    }

    /// <summary>
    /// Uploads a planned folder's files (hashed by the plan: the folder must not change in between; readers verify every
    /// file against the manifest anyway), then its manifest, last: the checkpoint is durable once this returns.
    /// <paramref name="afterFile"/> runs after each file's upload (a fault test's hook: a kill between files).
    /// </summary>
    public async Task<BlobPointer> UploadFolderAsync(FolderPlan plan, string folder, CancellationToken ct = default, Func<Task>? afterFile = null)
    {
        await EnsureContainerAsync(ct);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long sent = 0;
        foreach (var entry in plan.Files)
        {
            await WriteFileOnceAsync(entry, Path.Combine(folder, entry.Path[(entry.Path.LastIndexOf('/') + 1)..]), ct);
            sent += entry.Size;
            if (afterFile is not null) await afterFile();
            if (_maxUploadBytesPerSecond > 0)
            {
                var due = TimeSpan.FromSeconds((double)sent / _maxUploadBytesPerSecond) - clock.Elapsed;
                if (due > TimeSpan.Zero) await Task.Delay(due, ct);
            }
        }
        var manifest = await WriteOnceAsync(plan.Manifest.Path, plan.ManifestBytes, ct);
        return manifest.Sha256 == plan.Manifest.Sha256 ? manifest
            : throw new InvalidOperationException($"manifest '{manifest.Path}' was written with sha256 {manifest.Sha256}, planned {plan.Manifest.Sha256}");
    }

    /// <summary>
    /// Copies checkpoint files (each verified against its manifest entry while read) to a new folder under
    /// <paramref name="prefix"/> with the given file names, then writes its manifest. Write-once like every checkpoint:
    /// copying the same files again is a no-op and answers the same manifest.
    /// </summary>
    public async Task<BlobPointer> CopyFolderAsync(string prefix, IReadOnlyList<(string Name, BlobPointer Source)> files, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        var entries = new List<BlobPointer>();
        foreach (var (name, source) in files.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            var blob = _container.GetBlobClient($"{prefix}/{name}");
            long size = await ReadAsync(source, async (stream, token) =>
            {
                if (!await CreateAsync(options => blob.UploadAsync(stream, options, token), source.Sha256))
                    await RequireSameContentAsync(blob, source.Sha256, token);
                return stream.Length;
            }, ct);
            entries.Add(new BlobPointer(blob.Name, source.Sha256, size));
        }
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new CheckpointManifest(entries), ManifestJson);
        return await WriteOnceAsync($"{prefix}/manifest.json", manifest, ct);
    }

    /// <summary>A checkpoint's manifest, its own hash verified.</summary>
    public async Task<CheckpointManifest> ReadManifestAsync(BlobPointer manifestPointer, CancellationToken ct = default) =>
        ParseManifest(manifestPointer, await ReadAsync(manifestPointer, ct));

    /// <summary>A checkpoint's manifest from its bytes, however they came (storage, or the replica that wrote it), checked against its pointer's hash.</summary>
    public static CheckpointManifest ParseManifest(BlobPointer manifestPointer, byte[] bytes)
    {
        string actual = Sha256(bytes);
        if (actual != manifestPointer.Sha256) throw new CorruptBlobException(manifestPointer.Path, manifestPointer.Sha256, actual);
        return JsonSerializer.Deserialize<CheckpointManifest>(bytes, ManifestJson) ?? throw new InvalidDataException($"manifest '{manifestPointer.Path}' is empty");
    }

    /// <summary>
    /// A stream over one file of a checkpoint. The caller checks its sha256 against the entry as it reads
    /// (the content is not held in memory, so it cannot be checked before it is read).
    /// </summary>
    public async Task<Stream> OpenReadAsync(BlobPointer entry, CancellationToken ct = default)
    {
        try { return await _container.GetBlobClient(entry.Path).OpenReadAsync(new BlobOpenReadOptions(allowModifications: false), ct); }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new FileNotFoundException($"blob '{entry.Path}' does not exist", entry.Path, e);
        }
    }

    /// <summary>Whether a local folder holds exactly the manifest's files (no more, no fewer), each with its sha256.</summary>
    public static async Task<bool> FolderMatchesAsync(CheckpointManifest manifest, string folder, CancellationToken ct = default)
    {
        var expected = manifest.Files.ToDictionary(f => Path.GetFileName(f.Path), f => f.Sha256, StringComparer.Ordinal);
        var present = Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).ToList();
        if (present.Count != expected.Count || present.Any(name => !expected.ContainsKey(name!))) return false;
        foreach (var (name, sha256) in expected)
        {
            string file = Path.Combine(folder, name);
            if (new FileInfo(file).LinkTarget is not null || !File.Exists(file) || await FileSha256(file, ct) != sha256) return false;
        }
        return true;
    }

    /// <summary>Downloads a checkpoint's files into a local folder, verifying the manifest and every file.</summary>
    public Task<CheckpointManifest> ReadFolderAsync(BlobPointer manifestPointer, string folder, CancellationToken ct = default) =>
        ReadFolderAsync(manifestPointer, folder, _ => true, ct);

    /// <summary>
    /// Downloads those of a checkpoint's files whose name <paramref name="include"/> accepts (the others are left out),
    /// verifying the manifest and every file downloaded.
    /// </summary>
    public async Task<CheckpointManifest> ReadFolderAsync(BlobPointer manifestPointer, string folder, Func<string, bool> include,
        CancellationToken ct = default)
    {
        var manifest = await ReadManifestAsync(manifestPointer, ct);
        Directory.CreateDirectory(folder);
        foreach (var entry in manifest.Files.Where(f => include(Path.GetFileName(f.Path))))
        {
            string target = Path.Combine(folder, Path.GetFileName(entry.Path));
            string partial = target + ".partial";
            string actual;
            await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            await using (var hashed = new Sha256WriteStream(file))
            {
                try { await _container.GetBlobClient(entry.Path).DownloadToAsync(hashed, new BlobDownloadToOptions { TransferOptions = _transfers }, ct); }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    throw new FileNotFoundException($"blob '{entry.Path}' does not exist", entry.Path, e);
                }
                actual = hashed.Sha256();
            }
            if (actual != entry.Sha256)
            {
                File.Delete(partial);
                throw new CorruptBlobException(entry.Path, entry.Sha256, actual);
            }
            File.Move(partial, target, overwrite: true);
        }
        return manifest;
    }

    /// <summary>
    /// Deletes a checkpoint folder: its manifest first (a folder without one is never read as a checkpoint, so
    /// an interrupted delete leaves nothing that looks whole), then every blob under the folder. Deleting a
    /// folder that is already gone, or half gone, is not an error; returns how many blobs were deleted.
    /// </summary>
    public async Task<int> DeleteCheckpointAsync(string manifestPath, CancellationToken ct = default)
    {
        if (!manifestPath.EndsWith("/manifest.json", StringComparison.Ordinal))
            throw new ArgumentException($"'{manifestPath}' is not a checkpoint manifest path (…/manifest.json)", nameof(manifestPath));
        await EnsureContainerAsync(ct);
        string prefix = manifestPath[..^"manifest.json".Length];
        int deleted = (await _container.GetBlobClient(manifestPath).DeleteIfExistsAsync(cancellationToken: ct)).Value ? 1 : 0;
        foreach (var name in await ListAsync(prefix, ct))
            if ((await _container.GetBlobClient(name).DeleteIfExistsAsync(cancellationToken: ct)).Value) deleted++;
        return deleted;
    }

    /// <summary>The names of the blobs under a prefix (tests and tools: what storage holds).</summary>
    public async Task<List<string>> ListAsync(string prefix, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct);
        var names = new List<string>();
        await foreach (var blob in _container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, ct)) names.Add(blob.Name);
        return names;
    }

    /// <summary>Streams a file to a new path, with the hash its plan recorded (in the metadata and the manifest).</summary>
    private async Task WriteFileOnceAsync(BlobPointer entry, string file, CancellationToken ct)
    {
        var blob = _container.GetBlobClient(entry.Path);
        if (!await CreateAsync(options => blob.UploadAsync(file, options, ct), entry.Sha256))
            await RequireSameContentAsync(blob, entry.Sha256, ct);
    }

    /// <summary>Up to 256 MB in one request; larger files in 32 MB blocks, 4 at a time (measured against Azurite: docs/benchmarks.md).</summary>
    public static readonly StorageTransferOptions DefaultTransfers = new()
    {
        InitialTransferSize = 256 * 1024 * 1024, MaximumTransferSize = 32 * 1024 * 1024, MaximumConcurrency = 4,
    };

    private static async Task<string> FileSha256(string file, CancellationToken ct)
    {
        await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
    }

    public static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    private static readonly JsonSerializerOptions ManifestJson = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}

/// <summary>The files of a checkpoint with their sizes and hashes.</summary>
public sealed record CheckpointManifest(List<BlobPointer> Files);

/// <summary>A local folder's checkpoint before its upload: its files' pointers, the manifest's bytes and the manifest's pointer.</summary>
public sealed record FolderPlan(IReadOnlyList<BlobPointer> Files, byte[] ManifestBytes, BlobPointer Manifest);
