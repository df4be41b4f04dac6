using System.Net.Sockets;
using Azure;
using OnlineAlign.Contracts;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace OnlineAlign.Grains.Runs;

/// <summary>What the run orchestrator does about a failed phase call or state write.</summary>
public enum FailureKind
{
    /// <summary>May pass by itself (a silo lost, a timeout, storage unavailable): retry with backoff.</summary>
    Transient,
    /// <summary>No GPU silo is in the cluster: wait, visibly, until one joins.</summary>
    NoGpuSilo,
    /// <summary>Not known to pass: with the same inputs it will most likely fail again, so attempts are counted.</summary>
    Deterministic,
    /// <summary>The run's inputs cannot be used: fail at once.</summary>
    BadInput,
    /// <summary>Training produced NaN or Inf: pause for the user.</summary>
    Diverged,
    /// <summary>A checkpoint failed its hash check: roll back past it.</summary>
    CorruptCheckpoint,
}

public static class FailureClassifier
{
    public static FailureKind Classify(Exception e) => e switch
    {
        TrainingDivergedException => FailureKind.Diverged,
        CheckpointCorruptException => FailureKind.CorruptCheckpoint,
        RunInputException => FailureKind.BadInput,
        PhaseFailedException => FailureKind.Deterministic,
        OrleansException when e.Message.Contains("No active nodes are compatible", StringComparison.Ordinal) => FailureKind.NoGpuSilo,
        _ when IsTransient(e) => FailureKind.Transient,
        _ => FailureKind.Deterministic,
    };

    /// <summary>
    /// Failures of the machinery rather than of the work: the callee's silo went away or did not answer in
    /// time, or storage could not be reached or was busy. The exception or any exception inside it counts.
    /// </summary>
    public static bool IsTransient(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is TransientPhaseException or SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException
                or TimeoutException or HttpRequestException or SocketException)
                return true;
            if (x is RequestFailedException storage && (storage.Status is 0 or 408 or 429 || storage.Status >= 500)) return true;
            if (x is AggregateException aggregate && aggregate.InnerExceptions.Any(IsTransient)) return true;
        }
        return false;
    }
}
