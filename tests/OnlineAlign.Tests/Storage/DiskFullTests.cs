using Azure;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Grains.Workers;

namespace OnlineAlign.Tests.Storage;

/// <summary>A full disk (local or storage) is a counted failure with a clear message, never a transient fault retried again and again.</summary>
public class DiskFullTests
{
    [Fact]
    public void ARealNoSpaceErrorIsTakenForAFullDiskAndNothingElseIs()
    {
        // /dev/full answers every write with ENOSPC: the very error a full disk gives.
        var full = Assert.ThrowsAny<IOException>(() =>
        {
            using var stream = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            stream.Write(new byte[4096]);
            stream.Flush();
        });
        Assert.True(DiskFull.Is(full), $"{full.GetType().Name} {full.HResult}: {full.Message}");
        Assert.True(DiskFull.Is(new AggregateException(new InvalidOperationException("upload failed", full))));
        Assert.True(DiskFull.Is(new RequestFailedException(507, "insufficient storage")));
        Assert.True(DiskFull.Is(new RequestFailedException(409, "quota", "ContainerQuotaExceeded", null)));

        Assert.False(DiskFull.Is(new FileNotFoundException("gone")));
        Assert.False(DiskFull.Is(new RequestFailedException(500, "busy")));
        Assert.False(DiskFull.Is(new TimeoutException()));
        Assert.True(FailureClassifier.IsTransient(new RequestFailedException(507, "insufficient storage"))); // why the worker must tell it apart first

        string message = DiskFull.Message("train", "/data/cache", full);
        Assert.StartsWith("phase train: out of disk space (on this silo's disk under /data/cache, or in blob storage)", message);
        // Reported as a phase failure: counted against max_phase_attempts, then the run fails with it.
        Assert.Equal(FailureKind.Deterministic, FailureClassifier.Classify(new OnlineAlign.Contracts.PhaseFailedException(message)));
    }
}
