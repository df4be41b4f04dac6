using OnlineAlign.Specs;
using Microsoft.Extensions.Logging.Abstractions;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Storage;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

/// <summary>The checkpoint cache stays within its size: least recently used first, never a pinned (in-use) checkpoint.</summary>
public class CheckpointCacheEvictionTests
{
    [Fact]
    public void TheCacheEvictsTheLeastRecentlyUsedUnpinnedCheckpointsPastItsSize()
    {
        string cacheRoot = RepositoryPaths.NewTempFolder("cache");
        // What an earlier process left: a scratch folder of an unfinished attempt, a half download, a rejected copy.
        foreach (var leftover in new[] { Path.Combine("scratch", "run-0", "round-1-x"), Path.Combine("checkpoints", "aaa.1234"), Path.Combine("checkpoints", "bbb.rejected-1") })
            File.WriteAllText(Path.Combine(Directory.CreateDirectory(Path.Combine(cacheRoot, leftover)).FullName, "partial"), "x");
        var settings = new WorkerSettings("cpu", cacheRoot, new DataRoots([cacheRoot]), SpecLimits.Default, CheckpointCacheBytes: 10_000);
        // No storage call is made here: adopting a checkpoint and evicting are local.
        var cache = new CheckpointCache(new CheckpointStore("UseDevelopmentStorage=true"), settings, NullLogger<CheckpointCache>.Instance);
        Assert.False(Directory.Exists(Path.Combine(cacheRoot, "scratch")));
        Assert.Equal(["checkpoints"], Directory.GetDirectories(cacheRoot).Select(Path.GetFileName));
        Assert.Empty(Directory.GetDirectories(Path.Combine(cacheRoot, "checkpoints")));

        string Checkpoint(string sha)
        {
            string folder = RepositoryPaths.NewTempFolder("upload");
            File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), new byte[4_000]);
            cache.Adopt(folder, new BlobPointer($"runs/r/{sha}/manifest.json", sha, 0));
            return cache.Folder(sha);
        }
        using (cache.Pin(["s1"])) // a phase is reading s1
        {
            string s1 = Checkpoint("s1"), s2 = Checkpoint("s2");
            Assert.True(Directory.Exists(s1) && Directory.Exists(s2)); // 8,000 bytes: within 10,000
            string s3 = Checkpoint("s3");                             // 12,000: one must go; s1 is older but pinned
            Assert.True(Directory.Exists(s1));
            Assert.False(Directory.Exists(s2));
            Assert.True(Directory.Exists(s3));
        }
        // Unpinned, s1 is now the least recently used.
        string s4 = Checkpoint("s4");
        Assert.False(Directory.Exists(cache.Folder("s1")));
        Assert.True(Directory.Exists(cache.Folder("s3")) && Directory.Exists(s4));
    }
}
