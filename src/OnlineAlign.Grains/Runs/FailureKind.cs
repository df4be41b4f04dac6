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
    /// <summary>A local disk or blob storage is full: counted like a deterministic failure (max_phase_attempts), never retried as transient.</summary>
    DiskFull,
}
