using OnlineAlign.Specs;
using Microsoft.Extensions.Logging.Abstractions;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Storage;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>A GPU silo's checkpoint cache trusts only what it checked: a folder planted under a checkpoint's hash is replaced.</summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class CheckpointCacheTests
{
    [Fact]
    public async Task AFolderPlantedInTheCacheIsCheckedAgainstTheManifestAndReplaced()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString);
        string source = RepositoryPaths.NewTempFolder("checkpoint");
        File.WriteAllText(Path.Combine(source, "config.json"), "{\"real\": true}");
        File.WriteAllBytes(Path.Combine(source, "model.safetensors"), Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray());
        var manifest = await store.WriteFolderAsync("runs/cache-test/ckpt", source);

        string cacheRoot = RepositoryPaths.NewTempFolder("cache");
        var settings = new WorkerSettings("cpu", cacheRoot, new DataRoots([cacheRoot]), SpecLimits.Default);
        foreach (var plant in new Action<string>[]
        {
            folder => File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), new byte[4096]),   // other weights, same names
            folder => File.WriteAllText(Path.Combine(folder, "extra.py"), "import os"),                 // the right files and one more
        })
        {
            var cache = new CheckpointCache(store, settings, NullLogger<CheckpointCache>.Instance); // a new process: nothing verified yet
            string planted = cache.Folder(manifest.Sha256);
            if (Directory.Exists(planted)) Directory.Delete(planted, recursive: true);
            Directory.CreateDirectory(planted);
            foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(planted, Path.GetFileName(file)));
            plant(planted);

            string fetched = await cache.FetchAsync(manifest);

            Assert.Equal(planted, fetched);
            Assert.Equal(File.ReadAllBytes(Path.Combine(source, "model.safetensors")), File.ReadAllBytes(Path.Combine(fetched, "model.safetensors")));
            Assert.Equal(["config.json", "model.safetensors"], Directory.GetFiles(fetched).Select(Path.GetFileName).Order());
        }
        // An untouched cached copy is used as it is.
        var fresh = new CheckpointCache(store, settings, NullLogger<CheckpointCache>.Instance);
        Assert.True(await CheckpointStore.FolderMatchesAsync(await store.ReadManifestAsync(manifest), await fresh.FetchAsync(manifest)));
        Assert.Empty(Directory.GetDirectories(Path.Combine(cacheRoot, "checkpoints"), "*.rejected-*")); // rejected copies are deleted, never kept
    }

    /// <summary>
    /// A checkpoint copied from the replica that trained it (before it is in storage): pulled in pieces, each file checked
    /// against the manifest, then used as a verified copy with no storage read. A piece changed on the way, or a file that
    /// ends early, fails the copy and leaves nothing in the cache; a folder planted under the hash is replaced by the copy.
    /// </summary>
    [Fact]
    public async Task ACheckpointCopiedFromAnotherReplicaIsVerifiedFileByFileAndABadPieceLeavesNothing()
    {
        string source = RepositoryPaths.NewTempFolder("checkpoint");
        File.WriteAllText(Path.Combine(source, "config.json"), "{\"real\": true}");
        File.WriteAllBytes(Path.Combine(source, "model.safetensors"), Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray());
        File.WriteAllBytes(Path.Combine(source, "empty.bin"), []);
        var plan = await CheckpointStore.PlanFolderAsync("runs/copy-test/ckpt", source);
        var manifest = CheckpointStore.ParseManifest(plan.Manifest, plan.ManifestBytes);
        string cacheRoot = RepositoryPaths.NewTempFolder("cache");
        var settings = new WorkerSettings("cpu", cacheRoot, new DataRoots([cacheRoot]), SpecLimits.Default);
        // No storage behind it: a copy must not need one (an unreachable endpoint would fail any read).
        var store = new CheckpointStore("DefaultEndpointsProtocol=http;AccountName=none;AccountKey=bm9uZQ==;BlobEndpoint=http://127.0.0.1:9/none;");
        var pieces = new System.Collections.Concurrent.ConcurrentQueue<(string File, long Offset, int Count)>();   // files are copied side by side
        Task<byte[]> Read(string file, long offset, int count, Func<byte[], byte[]>? change = null)
        {
            pieces.Enqueue((file, offset, count));
            var bytes = File.ReadAllBytes(Path.Combine(source, file)).Skip((int)offset).Take(count).ToArray();
            return Task.FromResult(change is null ? bytes : change(bytes));
        }

        // A piece changed on the way (a bit of the weights' third piece), then a file that ends early: each refused, nothing kept.
        var cache = new CheckpointCache(store, settings, NullLogger<CheckpointCache>.Instance);
        await Assert.ThrowsAsync<CorruptBlobException>(() => cache.ReceiveAsync(plan.Manifest, manifest,
            (f, o, c) => Read(f, o, c, b => { if (f == "model.safetensors" && o == 2000) b[5] ^= 1; return b; }), 1000, default));
        await Assert.ThrowsAsync<CorruptBlobException>(() => cache.ReceiveAsync(plan.Manifest, manifest,
            (f, o, c) => Read(f, o, c, b => f == "model.safetensors" && o >= 3000 ? [] : b), 1000, default));
        Assert.Empty(Directory.GetDirectories(Path.Combine(cacheRoot, "checkpoints")));

        // A folder planted under the hash (not checked by this process) is replaced by the copy, which is then used as it is.
        string planted = cache.Folder(plan.Manifest.Sha256);
        Directory.CreateDirectory(planted);
        File.WriteAllBytes(Path.Combine(planted, "model.safetensors"), new byte[4096]);
        pieces.Clear();
        Assert.Equal(4096 + new FileInfo(Path.Combine(source, "config.json")).Length, await cache.ReceiveAsync(plan.Manifest, manifest, (f, o, c) => Read(f, o, c), 1000, default));
        Assert.Equal(5, pieces.Count(p => p.File == "model.safetensors"));   // 4096 bytes in pieces of at most 1000
        Assert.DoesNotContain(pieces, p => p.File == "empty.bin");         // nothing to ask for
        Assert.All(pieces, p => Assert.InRange(p.Count, 1, 1000));
        string fetched = await cache.FetchAsync(plan.Manifest);
        Assert.Equal(planted, fetched);
        foreach (var file in Directory.GetFiles(source))
            Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(Path.Combine(fetched, Path.GetFileName(file))));
        Assert.Equal(0, await cache.ReceiveAsync(plan.Manifest, manifest, (f, o, c) => Read(f, o, c), 1000, default));   // held already
        Assert.Equal([Path.GetFileName(planted)], Directory.GetDirectories(Path.Combine(cacheRoot, "checkpoints")).Select(Path.GetFileName));

        // What the trainer serves of it: only the plan's own files, by exact name, a piece inside the file and at most 4 MiB.
        Assert.Equal(plan.Files.Single(f => f.Path.EndsWith("/model.safetensors", StringComparison.Ordinal)),
            PolicyWorkerGrain.PieceOf(plan, "model.safetensors", 4095, PolicyWorkerGrain.PieceBytes));
        foreach (var (file, offset, count) in new (string, long, int)[]
        {
            ("../model.safetensors", 0, 10), ("manifest.json", 0, 10), ("onlinealign_state.json", 0, 10), ("", 0, 10),
            ("model.safetensors", -1, 10), ("model.safetensors", 4096, 1), ("model.safetensors", 0, 0),
            ("model.safetensors", 0, PolicyWorkerGrain.PieceBytes + 1), ("empty.bin", 0, 1),
        })
            Assert.Throws<OnlineAlign.Contracts.PhaseFailedException>(() => PolicyWorkerGrain.PieceOf(plan, file, offset, count));
    }

    /// <summary>
    /// A checkpoint fetched in part (a worker that holds its model reads only its small files): the files asked for, verified,
    /// never taken for the whole checkpoint; where the whole folder is verified here, that folder.
    /// </summary>
    [Fact]
    public async Task ACheckpointFetchedInPartHasOnlyTheFilesAskedForAndIsNeverTakenForTheWholeOne()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString);
        string source = RepositoryPaths.NewTempFolder("checkpoint");
        File.WriteAllText(Path.Combine(source, "config.json"), "{\"real\": true}");
        File.WriteAllBytes(Path.Combine(source, "model.safetensors"), Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray());
        var manifest = await store.WriteFolderAsync("runs/cache-part-test/ckpt", source);
        string cacheRoot = RepositoryPaths.NewTempFolder("cache");
        var settings = new WorkerSettings("cpu", cacheRoot, new DataRoots([cacheRoot]), SpecLimits.Default);
        var cache = new CheckpointCache(store, settings, NullLogger<CheckpointCache>.Instance);

        string part = await cache.FetchPartAsync(manifest, "without-weights", name => !name.EndsWith(".safetensors", StringComparison.Ordinal));
        Assert.Equal(["config.json"], Directory.GetFiles(part).Select(Path.GetFileName));
        Assert.Equal(File.ReadAllText(Path.Combine(source, "config.json")), File.ReadAllText(Path.Combine(part, "config.json")));
        Assert.NotEqual(cache.Folder(manifest.Sha256), part);
        Assert.False(Directory.Exists(cache.Folder(manifest.Sha256)));
        // The whole checkpoint is downloaded whole, beside the part; once verified here it serves a part too.
        string whole = await cache.FetchAsync(manifest);
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFiles(whole).Select(Path.GetFileName).Order());
        Assert.Equal(whole, await cache.FetchPartAsync(manifest, "without-weights", name => !name.EndsWith(".safetensors", StringComparison.Ordinal)));
        // A new process trusts no part an earlier one left.
        _ = new CheckpointCache(store, settings, NullLogger<CheckpointCache>.Instance);
        Assert.False(Directory.Exists(part));
    }
}
