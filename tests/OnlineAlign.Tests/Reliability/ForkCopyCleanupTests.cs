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
/// copies again and starts, and a child that holds a copy keeps it. Twin requests (the same request id, so the same child)
/// racing each copy to their own folder: one failing after its copy, while the other is held between its copy and its
/// start, deletes only its own. Against a real Azurite, as the silo's store.
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public sealed class ForkCopyCleanupTests
{
    [Fact]
    public async Task AForkFailingAfterTheCopyDeletesOnlyItsOwnCopyAndARetryOrATwinStillStartsWhole()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "test");
        var parentManifest = await store.WriteFolderAsync("runs/parent/round-0001/attempt", RepositoryPaths.Fixture("hf", "llama-tiny"));
        var round = new RoundRecord { Round = 1, ManifestPath = parentManifest.Path, ManifestSha256 = parentManifest.Sha256 };
        var parentBlobs = await store.ListAsync("runs/parent/");
        var fork = new V1.ForkFrom { RunId = "parent", Round = 1 };
        const string point = "fork/round-1/copied";
        var control = new FaultControl(RepositoryPaths.NewTempFolder("faults"));
        control.Fail(point, "deterministic", 1);
        var faults = new FaultPoints(control.Folder);
        BlobRef? child = null; // the copy the child run holds (its round 0); null: no child
        int starts = 0;
        Task<BlobRef> Start(BlobRef copied) { starts++; child ??= copied; return Task.FromResult(child); }
        Task<BlobRef?> ChildCopy() => Task.FromResult(child);
        int files = Directory.GetFiles(RepositoryPaths.Fixture("hf", "llama-tiny")).Length;
        async Task AssertWhole(BlobRef copy) =>
            Assert.Equal(files, (await store.ReadManifestAsync(new BlobPointer(copy.Path, copy.Sha256, 0))).Files.Count);

        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            RunForks.CopyThenStartAsync(store, faults, "child", fork, round, round, null, Start, ChildCopy, default));
        Assert.Contains(point, failed.Message);
        Assert.Equal(0, starts);
        Assert.Empty(await store.ListAsync("runs/child/")); // nothing orphaned
        Assert.Equal(parentBlobs, await store.ListAsync("runs/parent/")); // the parent is only read

        // Twins: B is held between its copy and its start while A copies and fails at the same point. A deletes its own
        // copy only; B then starts the child with its copy, whole. (With one folder for both, A deleted B's round 0.)
        control.Hold(point);
        var twinB = RunForks.CopyThenStartAsync(store, faults, "child", fork, round, round, null, Start, ChildCopy, default);
        await control.WaitUntilReachedAsync(point, TimeSpan.FromMinutes(2));
        control.Fail(point, "deterministic", 1);
        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            RunForks.CopyThenStartAsync(store, faults, "child", fork, round, round, null, Start, ChildCopy, default));
        control.Release(point);
        var copied = await twinB;
        Assert.Equal(1, starts);
        Assert.Equal(child, copied);
        Assert.StartsWith("runs/child/round-0000/fork-", copied.Path, StringComparison.Ordinal);
        await AssertWhole(copied);
        var childBlobs = await store.ListAsync("runs/child/");
        Assert.All(childBlobs, blob => Assert.StartsWith(copied.Path[..copied.Path.LastIndexOf('/')], blob, StringComparison.Ordinal));

        // A twin whose start answers the child the other started (the same request id): its own copy is not the child's, deleted.
        Assert.Equal(copied, await RunForks.CopyThenStartAsync(store, faults, "child", fork, round, round, null, Start, ChildCopy, default));
        Assert.Equal(childBlobs, await store.ListAsync("runs/child/"));

        // A start that fails while the child holds this call's copy (its start answered late) keeps it: it is that run's round 0.
        child = null;
        BlobRef? late = null;
        await Assert.ThrowsAsync<TimeoutException>(() => RunForks.CopyThenStartAsync<BlobRef>(store, faults, "late", fork, round, round, null,
            c => { child = late = c; throw new TimeoutException("late"); }, ChildCopy, default));
        await AssertWhole(late!);
        Assert.Equal(parentBlobs, await store.ListAsync("runs/parent/"));
    }
}
