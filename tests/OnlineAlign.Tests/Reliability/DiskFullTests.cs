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
}
