using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Silo.Api;
using OnlineAlign.Storage;
using OnlineAlign.Tests.Infrastructure;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Tests.Reliability;

/// <summary>
/// A fork that fails after copying the parent's checkpoint into the child's prefix (the fault point
/// "fork/round-R/copied", between the copy and the child's start) leaves nothing behind, a retry with the same child id
/// copies again and starts, and a child that exists keeps its copy. Against a real Azurite, as the silo's store.
/// </summary>
[Collection("processes")]
[Trait("Kind", "Cluster")]
public sealed class ForkCopyCleanupTests
{
    [Fact]
    public async Task AForkFailingAfterTheCopyDeletesItAndARetryWithTheSameChildSucceeds()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "test");
        var parentManifest = await store.WriteFolderAsync("runs/parent/round-0001/attempt", RepositoryPaths.Fixture("hf", "llama-tiny"));
        var round = new RoundRecord { Round = 1, ManifestPath = parentManifest.Path, ManifestSha256 = parentManifest.Sha256 };
        var parentBlobs = await store.ListAsync("runs/parent/");
        var fork = new V1.ForkFrom { RunId = "parent", Round = 1 };
        string faultFolder = RepositoryPaths.NewTempFolder("faults");
        await File.WriteAllTextAsync(Path.Combine(faultFolder, "fork.round-1.copied.fail"), "deterministic 1");
        var faults = new FaultPoints(faultFolder);
        int starts = 0;
        Task<BlobRef> Start(BlobRef copied) { starts++; return Task.FromResult(copied); }

        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            RunForks.CopyThenStartAsync(store, faults, "child", fork, round, round, null, Start, () => Task.FromResult(false), default));
        Assert.Contains("fork/round-1/copied", failed.Message);
        Assert.Equal(0, starts);
        Assert.Empty(await store.ListAsync("runs/child/")); // nothing orphaned
        Assert.Equal(parentBlobs, await store.ListAsync("runs/parent/")); // the parent is only read

        // The same fork again (a retried request names the same child): copied afresh, started, its round 0 whole.
        var copied = await RunForks.CopyThenStartAsync(store, faults, "child", fork, round, round, null, Start, () => Task.FromResult(false), default);
        Assert.Equal(1, starts);
        Assert.StartsWith("runs/child/round-0000/fork/", copied.Path, StringComparison.Ordinal);
        var manifest = await store.ReadManifestAsync(new BlobPointer(copied.Path, copied.Sha256, 0));
        Assert.Equal(Directory.GetFiles(RepositoryPaths.Fixture("hf", "llama-tiny")).Length, manifest.Files.Count);
        var childBlobs = await store.ListAsync("runs/child/");

        // A start that fails while the child exists (its start answered late) keeps the copy: it is that run's round 0.
        await Assert.ThrowsAsync<TimeoutException>(() => RunForks.CopyThenStartAsync<BlobRef>(store, faults, "child", fork, round, round, null,
            _ => throw new TimeoutException("late"), () => Task.FromResult(true), default));
        Assert.Equal(childBlobs, await store.ListAsync("runs/child/"));
        Assert.Equal(copied, await RunForks.CopyThenStartAsync(store, faults, "child", fork, round, round, null, Start, () => Task.FromResult(false), default));
    }
}
