using OnlineAlign.Grains.Runs;

namespace OnlineAlign.Tests.Reliability;

/// <summary>The run's failure policy, in-process: each kind of failure and each count against its limit.</summary>
public class FailurePolicyTests
{
    [Fact]
    public void TransientFailuresAreRetriedWithGrowingBackoffUntilTheLimitThenCounted()
    {
        var first = FailurePolicy.Decide(FailureKind.Transient, 1, "timeout");
        Assert.Equal(FailureAction.Retry, first.Action);
        Assert.Equal(TimeSpan.FromSeconds(2), first.Delay);
        Assert.Equal(TimeSpan.FromSeconds(8), FailurePolicy.Decide(FailureKind.Transient, 3, "timeout").Delay);
        // The backoff stops growing at 30 seconds.
        Assert.Equal(TimeSpan.FromSeconds(30), FailurePolicy.Decide(FailureKind.Transient, FailurePolicy.MaxTransientAttempts - 1, "timeout").Delay);

        // The twentieth in a row is no longer retried as transient: it is counted, and one count fails the run.
        Assert.Equal(FailureAction.CountAttempt, FailurePolicy.Decide(FailureKind.Transient, FailurePolicy.MaxTransientAttempts, "timeout").Action);
        var failed = FailurePolicy.AfterAttempts(FailureKind.Transient, 1, maxPhaseAttempts: 5);
        Assert.Equal(FailureAction.Fail, failed.Action);
        Assert.Equal("round 3 train 20 transient failures in a row: timeout", failed.Error(3, "train", "timeout"));
    }

    [Fact]
    public void DeterministicFailuresAreRetriedUntilMaxPhaseAttemptsThenFailTheRun()
    {
        Assert.Equal(FailureAction.CountAttempt, FailurePolicy.Decide(FailureKind.Deterministic, 1, "CUDA out of memory").Action);
        var again = FailurePolicy.AfterAttempts(FailureKind.Deterministic, 2, maxPhaseAttempts: 3);
        Assert.Equal(FailureAction.Retry, again.Action);
        Assert.Equal(TimeSpan.FromSeconds(4), again.Delay);

        var failed = FailurePolicy.AfterAttempts(FailureKind.Deterministic, 3, maxPhaseAttempts: 3);
        Assert.Equal(FailureAction.Fail, failed.Action);
        Assert.Equal("round 2 judge failed 3 times with the same inputs: boom", failed.Error(2, "judge", "boom"));
        // A spec asking for no attempts still gets one.
        Assert.Equal(FailureAction.Fail, FailurePolicy.AfterAttempts(FailureKind.Deterministic, 1, maxPhaseAttempts: 0).Action);
    }

    [Fact]
    public void AFullDiskIsCountedNotRetriedAsTransientAndTheErrorSaysWhichDisk()
    {
        Assert.Equal(FailureAction.CountAttempt, FailurePolicy.Decide(FailureKind.DiskFull, 1, "no space").Action);
        Assert.Equal(FailureAction.Retry, FailurePolicy.AfterAttempts(FailureKind.DiskFull, 1, maxPhaseAttempts: 2, diskFull: "local disk").Action);
        var failed = FailurePolicy.AfterAttempts(FailureKind.DiskFull, 2, maxPhaseAttempts: 2, diskFull: "blob storage");
        Assert.Equal("round 1 generate failed 2 times: disk full (blob storage): 507", failed.Error(1, "generate", "507"));
    }

    [Fact]
    public void AttemptsAreCountedPerPhaseAndInputs()
    {
        string key = FailurePolicy.AttemptKey(2, "train", 0);
        Assert.Equal((key, 1), FailurePolicy.CountAttempt(null, 0, key));
        Assert.Equal((key, 3), FailurePolicy.CountAttempt(key, 2, key));
        // The same phase after a rollback (a new epoch) has new inputs: its count starts again.
        Assert.Equal((FailurePolicy.AttemptKey(2, "train", 1), 1), FailurePolicy.CountAttempt(key, 2, FailurePolicy.AttemptKey(2, "train", 1)));
        Assert.Equal((FailurePolicy.AttemptKey(2, "evaluate", 0), 1), FailurePolicy.CountAttempt(key, 2, FailurePolicy.AttemptKey(2, "evaluate", 0)));
    }

    [Fact]
    public void ACorruptCheckpointRollsBackPastTheRoundItsFolderNamesOrFailsWhenItNamesNone()
    {
        var rollBack = FailurePolicy.Decide(FailureKind.CorruptCheckpoint, 1, "sha256 mismatch in runs/r1/round-0012/train/manifest.json");
        Assert.Equal(FailureAction.RollBack, rollBack.Action);
        Assert.Equal(12, rollBack.CorruptRound);
        Assert.Equal(0, FailurePolicy.Decide(FailureKind.CorruptCheckpoint, 1, "runs/r1/round-0000/prepare/x").CorruptRound);

        // Near misses: no slash after the number, or too few digits, say no round.
        foreach (var message in new[] { "sha256 mismatch", "runs/r1/round-0012", "runs/r1/round-12/train" })
        {
            var fail = FailurePolicy.Decide(FailureKind.CorruptCheckpoint, 1, message);
            Assert.Equal(FailureAction.Fail, fail.Action);
            Assert.Equal($"round 4: {message}", fail.Error(4, "train", message));
        }
    }

    [Fact]
    public void BadInputFailsAtOnceDivergencePausesAndNoGpuWaits()
    {
        var bad = FailurePolicy.Decide(FailureKind.BadInput, 1, "no config.json");
        Assert.Equal(FailureAction.Fail, bad.Action);
        Assert.Equal("round 0 prepare: no config.json", bad.Error(0, "prepare", "no config.json"));
        Assert.Equal(FailureAction.PauseDiverged, FailurePolicy.Decide(FailureKind.Diverged, 1, "NaN").Action);
        var wait = FailurePolicy.Decide(FailureKind.NoGpuSilo, 7, "No active nodes are compatible");
        Assert.Equal(FailureAction.WaitForGpu, wait.Action);
        Assert.Equal(FailurePolicy.GpuWait, wait.Delay);
        // However many times in a row: a run without a GPU waits, it never fails for that.
        Assert.Equal(FailureAction.WaitForGpu, FailurePolicy.Decide(FailureKind.NoGpuSilo, 1000, "x").Action);
    }
}
