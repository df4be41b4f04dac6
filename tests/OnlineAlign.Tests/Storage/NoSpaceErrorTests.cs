using Azure;
using OnlineAlign.Grains.Runs;

namespace OnlineAlign.Tests.Storage;

/// <summary>A real ENOSPC and storage's capacity answers are taken for a full disk, and nothing else is.</summary>
public class NoSpaceErrorTests
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
        Assert.True(FailureClassifier.DiskFull(full) == "local disk", $"{full.GetType().Name} {full.HResult}: {full.Message}");
        Assert.Equal("local disk", FailureClassifier.DiskFull(new AggregateException(new InvalidOperationException("upload failed", full))));
        Assert.Equal("blob storage", FailureClassifier.DiskFull(new RequestFailedException(507, "insufficient storage")));
        Assert.Equal("blob storage", FailureClassifier.DiskFull(new RequestFailedException(409, "quota", "ContainerQuotaExceeded", null)));

        Assert.Null(FailureClassifier.DiskFull(new FileNotFoundException("gone")));
        Assert.Null(FailureClassifier.DiskFull(new RequestFailedException(500, "busy")));
        Assert.Null(FailureClassifier.DiskFull(new TimeoutException()));
        // Storage answers a full account like a server error: it must not be retried as a transient one.
        Assert.False(FailureClassifier.IsTransient(new RequestFailedException(507, "insufficient storage")));
        Assert.Equal(FailureKind.DiskFull, FailureClassifier.Classify(full));
    }
}
