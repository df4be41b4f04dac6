namespace OnlineAlign.Contracts;

/// <summary>
/// A run's orchestrator (key: run id). It drives rounds as a persisted state machine and survives
/// silo crashes through a durable reminder; every transition is checked against the current state.
/// </summary>
[Alias("onlinealign.IRunGrain")]
public interface IRunGrain : IGrainWithStringKey
{
    /// <summary>Starts the run; asked again with the same request id and spec, answers the run already started.</summary>
    [Alias("Start")] Task<RunStatus> Start(RunSpec spec, string? requestId);
    [Alias("Get")] Task<RunStatus?> Get();
    [Alias("Rounds")] Task<List<RoundRecord>> Rounds();
    /// <summary>Rounds a rollback past a corrupt checkpoint discarded (each marked with the epoch that redid it), oldest first.</summary>
    [Alias("Superseded")] Task<List<RoundRecord>> Superseded();
    /// <summary>Round 0: the initial policy's evaluation before any round (null until it has been evaluated).</summary>
    [Alias("Initial")] Task<RoundRecord?> Initial();
    [Alias("Pause")] Task<RunStatus> Pause();
    [Alias("Resume")] Task<RunStatus> Resume();
    [Alias("Cancel")] Task<RunStatus> Cancel();
    /// <summary>Progress and committed rounds from <paramref name="fromRound"/> on, until the run stops.</summary>
    [Alias("Watch")] IAsyncEnumerable<RunEvent> Watch(int fromRound, CancellationToken cancellationToken = default);
}

/// <summary>The list of runs (a single grain, key 0).</summary>
[Alias("onlinealign.IRunRegistryGrain")]
public interface IRunRegistryGrain : IGrainWithIntegerKey
{
    [Alias("Add")] Task Add(string runId);
    [Alias("List")] Task<List<string>> List();
    [Alias("Contains")] Task<bool> Contains(string runId);
    /// <summary>Up to <paramref name="count"/> run ids from position <paramref name="start"/> in start order, and how many runs there are.</summary>
    [Alias("Page")] Task<(List<string> Ids, int Total)> Page(int start, int count);
    /// <summary>
    /// Counts the run as in progress (running or waiting for a GPU), or throws <see cref="RunLimitException"/> when
    /// <paramref name="limit"/> runs already are. A run counted twice is counted once.
    /// </summary>
    [Alias("Admit")] Task Admit(string runId, int limit);
    /// <summary>The run no longer drives (paused, cancelled, failed or completed).</summary>
    [Alias("Release")] Task Release(string runId);
}

/// <summary>The cluster already has as many runs in progress as it allows (gRPC: RESOURCE_EXHAUSTED).</summary>
[GenerateSerializer]
public sealed class RunLimitException(string message) : Exception(message);

/// <summary>Thrown for a transition that does not apply to the run's state (gRPC: FAILED_PRECONDITION).</summary>
[GenerateSerializer]
public sealed class RunStateException(string message) : Exception(message);

/// <summary>Thrown for a run id nobody started (gRPC: NOT_FOUND).</summary>
[GenerateSerializer]
public sealed class RunNotFoundException(string runId) : Exception($"run '{runId}' does not exist");

/// <summary>Training produced NaN or Inf (the round and step are in the message); the run pauses.</summary>
[GenerateSerializer]
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>A checkpoint blob failed its sha256 check.</summary>
[GenerateSerializer]
public sealed class CheckpointCorruptException(string message) : Exception(message);

/// <summary>The run's inputs (model folder, tokenizer, prompts) cannot be used; retrying will not help.</summary>
[GenerateSerializer]
public sealed class RunInputException(string message) : Exception(message);

/// <summary>A phase failed for a reason that may pass (storage unavailable, a timeout): retry with backoff.</summary>
[GenerateSerializer]
public sealed class TransientPhaseException(string message) : Exception(message);

/// <summary>
/// A phase failed with an error that is not known to be transient (a bug, CUDA out of memory, a judge that
/// cannot be parsed): with the same inputs it will most likely fail again, so attempts are counted.
/// </summary>
[GenerateSerializer]
public sealed class PhaseFailedException(string message) : Exception(message);

/// <summary>
/// A phase ran out of space: a silo's local disk or blob storage is full (the message says which and where).
/// Not transient: retrying at once fills the same disk again, so attempts are counted as for a deterministic failure.
/// </summary>
[GenerateSerializer]
public sealed class DiskFullException(string message) : Exception(message);
