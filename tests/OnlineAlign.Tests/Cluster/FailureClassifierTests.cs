using OnlineAlign.Specs;
using Azure;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using Orleans.Runtime;

namespace OnlineAlign.Tests.Cluster;

public class FailureClassifierTests
{
    [Fact]
    public void MachineryFailuresAreTransientAndEverythingElseIsCounted()
    {
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new TimeoutException("no answer")));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new SiloUnavailableException("gone")));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new RequestFailedException(503, "busy")));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new OrleansException("storage", new HttpRequestException("refused"))));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(new TransientPhaseException("retry me")));
        Assert.Equal(FailureKind.NoGpuSilo, FailureClassifier.Classify(new OrleansException("No active nodes are compatible with grain x")));

        // Storage that answered "no" (a 403, a 409) will answer the same next time.
        Assert.Equal(FailureKind.Deterministic, FailureClassifier.Classify(new RequestFailedException(403, "forbidden")));
        Assert.Equal(FailureKind.Deterministic, FailureClassifier.Classify(new DivideByZeroException()));
        Assert.Equal(FailureKind.Deterministic, FailureClassifier.Classify(new PhaseFailedException("ExternalException: CUDA out of memory")));
        Assert.Equal(FailureKind.BadInput, FailureClassifier.Classify(new RunInputException("no config.json")));
        Assert.Equal(FailureKind.Diverged, FailureClassifier.Classify(new TrainingDivergedException("NaN")));
        Assert.Equal(FailureKind.CorruptCheckpoint, FailureClassifier.Classify(new CheckpointCorruptException("runs/x/round-0001/ is corrupt")));
    }
}
