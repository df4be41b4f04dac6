using OnlineAlign.Specs;
using Azure;
using Microsoft.Extensions.Logging.Abstractions;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

/// <summary>A full disk (local or storage) is a counted failure that names itself, and a failed attempt leaves no partial files.</summary>
public class DiskFullTests
{
    [Fact]
    public void DiskFullIsItsOwnKindNeverTransientAndSaysWhere()
    {
        var local = new IOException("No space left on device : '/data/cache/scratch/x/model.safetensors'", FailureClassifier.DiskFullErrno);
        Assert.Equal(FailureKind.DiskFull, FailureClassifier.Classify(local));
        Assert.Equal("local disk", FailureClassifier.DiskFull(local));
        Assert.Equal("local disk", FailureClassifier.DiskFull(new IOException("write failed", 28)));               // by errno alone
        Assert.Equal("local disk", FailureClassifier.DiskFull(new IOException("full", unchecked((int)0x80070070)))); // Windows ERROR_DISK_FULL
        Assert.Equal("local disk", FailureClassifier.DiskFull(new AggregateException(new TimeoutException(), local)));
        // Storage that says it is out of space is not "storage unavailable": it is not retried 20 times as transient.
        var storage = new RequestFailedException(507, "Insufficient Storage");
        Assert.Equal(FailureKind.DiskFull, FailureClassifier.Classify(storage));
        Assert.False(FailureClassifier.IsTransient(storage));
        Assert.Equal("blob storage", FailureClassifier.DiskFull(new InvalidOperationException("upload", new RequestFailedException(500, "ENOSPC: no space left on device, write"))));
        Assert.Equal(FailureKind.DiskFull, FailureClassifier.Classify(new DiskFullException("disk full: local disk of silo s1")));
        // Other I/O errors are not a full disk (errno 39 on Linux is ENOTEMPTY), and a busy storage stays transient.
        Assert.Null(FailureClassifier.DiskFull(new IOException("Directory not empty", 39)));
        Assert.Equal(FailureKind.Deterministic, FailureClassifier.Classify(new IOException("Directory not empty", 39)));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new RequestFailedException(503, "busy")));
    }

    [Fact]
    public void AnAttemptThatRunsOutOfSpaceLeavesNoScratchFiles()
    {
        string cacheFolder = RepositoryPaths.NewTempFolder("cache");
        var faults = new FaultControl(RepositoryPaths.NewTempFolder("faults"));
        var points = new FaultPoints(faults.Folder);
        faults.Fail("train/round-1/upload", "diskfull", 1);
        var scratch = new ScratchFolders(cacheFolder, NullLogger.Instance);

        // The train phase has written part of its checkpoint when the disk fills (the injected ENOSPC).
        string folder = scratch.Create("run-1", "round-1");
        File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), new byte[1 << 16]);
        var error = Assert.Throws<IOException>(() => points.Reach("train/round-1/upload", CancellationToken.None));
        Assert.Equal(FailureClassifier.DiskFullErrno, error.HResult);
        Assert.Equal(FailureKind.DiskFull, FailureClassifier.Classify(error));
        Assert.Equal(1, faults.Hits("train/round-1/upload"));

        // The phase call ends: what its attempt wrote is removed; a finished checkpoint (moved into the cache) is not touched.
        string finished = scratch.Create("run-1", "prepare");
        string cached = Path.Combine(cacheFolder, "checkpoints", "abc");
        Directory.CreateDirectory(Path.GetDirectoryName(cached)!);
        Directory.Move(finished, cached);
        scratch.RemoveLeftovers("run-1");
        Assert.False(Directory.Exists(folder));
        Assert.True(Directory.Exists(cached));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(cacheFolder, "scratch", "run-1")));
        points.Reach("train/round-1/upload", CancellationToken.None); // injected once: the retry goes on
    }

    [Fact]
    public void AFullDiskUploadIsCountedAndNamesTheDiskAndTheCheckpointWhatever()
    {
        const string manifest = "runs/r1/round-0001/train/a1/manifest.json";
        const string localDisk = "local disk of silo s1 (cache folder /data/cache)";
        // Locally: what .NET throws on Unix when a write finds the disk full. At the storage account: its 507, as the SDK throws it.
        var local = new IOException("No space left on device : '/data/cache/checkpoints/abc/model.safetensors'", FailureClassifier.DiskFullErrno);
        var storage = new RequestFailedException(507, "Insufficient Storage");
        foreach (var (error, where) in new (Exception, string)[] { (local, localDisk), (storage, "blob storage") })
        {
            Assert.Equal(FailureKind.DiskFull, FailureClassifier.Classify(error));
            Assert.False(FailureClassifier.IsTransient(error));
            var failure = Assert.IsType<DiskFullException>(UploadFailures.ToPhaseFailure(error, manifest, localDisk));
            Assert.StartsWith($"disk full: no space left on {where} while writing checkpoint {manifest}; free space there " +
                "(the phase is tried again at most max_phase_attempts times): ", failure.Message, StringComparison.Ordinal);
            // Crossing the grain boundary as a DiskFullException, it is still a full disk to the orchestrator: counted, not retried.
            Assert.Equal(FailureKind.DiskFull, FailureClassifier.Classify(failure));
            Assert.Equal(FailureAction.CountAttempt, FailurePolicy.Decide(FailureKind.DiskFull, 1, failure.Message).Action);
        }
        // Not a full disk, and not transient either: a request too large for storage, a blob past its block count (freeing space
        // would not help); a busy storage stays transient.
        foreach (var notFull in new[] { new RequestFailedException(413, "Request body too large", "RequestBodyTooLarge", null),
                     new RequestFailedException(409, "The committed block count cannot exceed the maximum limit", "BlockCountExceedsLimit", null) })
        {
            Assert.Null(FailureClassifier.DiskFull(notFull));
            Assert.IsType<PhaseFailedException>(UploadFailures.ToPhaseFailure(notFull, manifest, localDisk));
            Assert.Equal(FailureKind.Deterministic, FailureClassifier.Classify(notFull));
        }
        Assert.IsType<TransientPhaseException>(UploadFailures.ToPhaseFailure(new RequestFailedException(503, "busy"), manifest, localDisk));
        // The storage account's quota codes are a full disk whatever their status.
        Assert.Equal("blob storage", FailureClassifier.DiskFull(new RequestFailedException(409, "quota", "ContainerQuotaExceeded", null)));
    }

    [Theory]
    [InlineData("diskfull", "local disk of silo s1 (cache folder CACHE)")]
    [InlineData("storagefull", "blob storage")]
    public async Task AnUploadThatRunsOutOfSpaceFailsItsAttemptsUpToTheLimitAndKeepsThePreviousRoundsCheckpoint(string fault, string where)
    {
        string cacheFolder = RepositoryPaths.NewTempFolder("cache");
        Directory.CreateDirectory(Path.Combine(cacheFolder, "checkpoints")); // as the worker's first download or upload leaves it
        var settings = new WorkerSettings("cpu", cacheFolder, new OnlineAlign.Execution.Files.DataRoots([cacheFolder]), SpecLimits.Default);
        // No storage call is made here: adopting, serving a verified copy and forgetting one are local.
        var cache = new CheckpointCache(new OnlineAlign.Storage.CheckpointStore("UseDevelopmentStorage=true"), settings, NullLogger<CheckpointCache>.Instance);
        string Trained(string weights)
        {
            string folder = RepositoryPaths.NewTempFolder("trained");
            File.WriteAllText(Path.Combine(folder, "model.safetensors"), weights);
            return folder;
        }
        // Round 0's checkpoint is durable and cached; round 1's was trained, kept as the cached copy, and its upload starts.
        var round0 = new OnlineAlign.Storage.BlobPointer("runs/r1/round-0000/prepare/a0/manifest.json", new string('0', 64), 0);
        var round1 = new OnlineAlign.Storage.BlobPointer("runs/r1/round-0001/train/a1/manifest.json", new string('1', 64), 0);
        cache.Adopt(Trained("round 0 weights"), round0);
        cache.Adopt(Trained("round 1 weights"), round1);
        Assert.True(Directory.Exists(cache.Folder(round0.Sha256)) && Directory.Exists(cache.Folder(round1.Sha256)));

        var faults = new FaultControl(RepositoryPaths.NewTempFolder("faults"));
        var points = new FaultPoints(faults.Folder);
        const int maxPhaseAttempts = 3;
        faults.Fail("train/round-1/upload", fault, maxPhaseAttempts);
        string localDisk = $"local disk of silo s1 (cache folder {cacheFolder})";
        for (int attempt = 1; attempt <= maxPhaseAttempts; attempt++)
        {
            // The upload's first named point (PolicyWorkerGrain.Upload) throws what a full disk throws there; the worker reports it.
            var thrown = await Assert.ThrowsAnyAsync<Exception>(() => points.ReachAsync("train/round-1/upload", CancellationToken.None));
            var failure = UploadFailures.ToPhaseFailure(thrown, round1.Path, localDisk);
            Assert.IsType<DiskFullException>(failure);
            Assert.Contains($"no space left on {where.Replace("CACHE", cacheFolder, StringComparison.Ordinal)} while writing checkpoint {round1.Path}",
                failure.Message, StringComparison.Ordinal);
            // The orchestrator counts it (never one of the 20 transient retries), and tries the train phase again until the limit.
            var kind = FailureClassifier.Classify(failure);
            Assert.Equal(FailureKind.DiskFull, kind);
            Assert.Equal(FailureAction.CountAttempt, FailurePolicy.Decide(kind, attempt, failure.Message).Action);
            var decision = FailurePolicy.AfterAttempts(kind, attempt, maxPhaseAttempts, FailureClassifier.DiskFull(failure));
            if (attempt < maxPhaseAttempts) Assert.Equal(FailureAction.Retry, decision.Action);
            else
            {
                Assert.Equal(FailureAction.Fail, decision.Action);
                Assert.StartsWith("round 1 checkpoint failed 3 times: disk full (disk): disk full: no space left on ",
                    decision.Error(1, "checkpoint", failure.Message), StringComparison.Ordinal);
            }
            // The failed checkpoint's local copy is deleted when the train phase is asked again: its space is what the retry needs.
            cache.Forget(round1.Sha256);
            Assert.False(Directory.Exists(cache.Folder(round1.Sha256)));
            // Nothing already saved is lost: round 0's cached checkpoint is still served as it was (verified, without a download).
            Assert.True(Directory.Exists(cache.Folder(round0.Sha256)));
            string kept = await cache.FetchAsync(round0);
            Assert.Equal("round 0 weights", File.ReadAllText(Path.Combine(kept, "model.safetensors")));
            if (attempt < maxPhaseAttempts) cache.Adopt(Trained("round 1 weights"), round1); // trained again
        }
        Assert.Equal(maxPhaseAttempts, faults.Hits("train/round-1/upload"));
        await points.ReachAsync("train/round-1/upload", CancellationToken.None); // armed 3 times: a 4th arrival goes on
    }
}

