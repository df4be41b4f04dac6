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
    /// <summary>
    /// Starts the run from another run's committed round: round 0 is <paramref name="lineage"/>'s copied checkpoint (no
    /// prepare, no warm start); afterwards it is an ordinary run. Asked again with the same request id, spec and lineage,
    /// answers the run already started.
    /// </summary>
    [Alias("Fork")] Task<RunStatus> Fork(RunSpec spec, string? requestId, RunLineage lineage);
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
