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
