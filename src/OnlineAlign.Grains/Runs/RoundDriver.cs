using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using Orleans.Storage;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The loop that drives a run while it is running or waiting for a GPU: it does the next step of the
/// <see cref="PhaseSequence"/> until the run stops, and carries out the <see cref="FailurePolicy"/>'s decision
/// about each failure. It runs on the run grain's activation, which owns it; pausing or cancelling stops the
/// phase in flight (<see cref="StopPhase"/>), and the loop, seeing the run no longer driving, lets its workers go.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "a CTS without CancelAfter holds nothing unmanaged; the loop may outlive the activation")]
internal sealed class RoundDriver(
    string runId,
    RunStateGate gate,
    PhaseSequence phases,
    Func<RunTrigger, Action<RunState>?, Task<RunStatus>> transition,
    Action deactivate,
    ILogger log)
{
    private Task? _loop;
    private CancellationTokenSource? _inflight;

    private RunState S => gate.State;

    /// <summary>The worker's progress on the phase in flight, for Watch.</summary>
    public PhaseProgress? Progress { get; private set; }

    /// <summary>Shown as the error of a run that drives on after a transient failure, until a step succeeds.</summary>
    public string? Retrying { get; private set; }

    /// <summary>Starts the loop unless it is running.</summary>
    public void EnsureRunning()
    {
        if (_loop is null || _loop.IsCompleted) _loop = Drive();
    }

    /// <summary>
    /// The phase in flight stops at its next step; its output is never recorded. So do the next round's generations started
    /// early: they belong to no step once the one that started them committed, and the step in flight may be waiting behind
    /// one of them (a replica let go before the round, whose call queues behind its generation).
    /// </summary>
    public void StopPhase()
    {
        _inflight?.Cancel();
        phases.DropNextGeneration("the run is paused or cancelled");
    }

    private async Task Drive()
    {
        int transientFailures = 0;
        while (S.Lifecycle.IsDriving())
        {
            var inflight = _inflight = new CancellationTokenSource();
            using var stopPolling = new CancellationTokenSource();
            var progressPoll = PollProgress(stopPolling.Token);
            try
            {
                await phases.Next(inflight.Token);
                transientFailures = 0;
                Retrying = null;
            }
            catch (Exception) when (inflight.IsCancellationRequested)
            {
                // Paused or cancelled while a phase ran: the phase was stopped between steps and left unrecorded.
            }
            catch (RunStateException)
            {
                // A user's transition came first (e.g. paused just as the last round committed): the loop re-checks.
            }
            catch (InconsistentStateException e)
            {
                // Another activation of this run wrote the state since we read it (a shutdown race): its write won
                // on the ETag. This activation must not commit anything more; drop it and let the winner drive.
                log.LogWarning(e, "run {Run}: the persisted state changed under this activation; it stops and deactivates", runId);
                deactivate();
                break;
            }
            catch (Exception e)
            {
                try { await Failed(e, ++transientFailures, inflight.Token); }
                catch (OperationCanceledException) { }
                catch (InconsistentStateException) { deactivate(); break; }
                catch (Exception again) when (FailureClassifier.IsTransient(again) || again is RunStateException)
                {
                    log.LogWarning(again, "run {Run}: recording a failure failed; the loop tries again", runId);
                }
            }
            finally
            {
                stopPolling.Cancel();
                await progressPoll;
            }
        }
        if (S.Lifecycle.IsDriving()) return; // left on a lost ETag race: the winning activation drives
        phases.DropNextGeneration("the run stopped driving");
        await RetireWorkers();
        // Resumed while the workers were being retired (this loop was still running, so Resume did not start one).
        if (S.Lifecycle.IsDriving()) await Drive();
    }

    /// <summary>Carries out what the failure policy decides about a failed phase call (or state write).</summary>
    private async Task Failed(Exception e, int transientFailures, CancellationToken ct)
    {
        var kind = FailureClassifier.Classify(e);
        var decision = FailurePolicy.Decide(kind, transientFailures, e.Message);
        switch (decision.Action)
        {
            case FailureAction.WaitForGpu:
                // Park visibly and keep trying; the reminder stays, so a restart also keeps trying.
                // Said while it waits for memory (the status's error): which silos have how much memory left.
                if (e is WaitingForGpuException) Retrying = $"waiting for GPU memory: {e.Message}";
                if (S.Lifecycle == RunLifecycle.Running)
                {
                    log.LogInformation("run {Run} round {Round} {Phase}: waits for a GPU silo: {Message}", runId, S.Round, S.Phase, e.Message);
                    await transition(RunTrigger.LoseGpu, null);
                }
                await Task.Delay(decision.Delay, ct);
                return;
            case FailureAction.PauseDiverged:
                await transition(RunTrigger.Diverge, s => s.Error = $"{e.Message}; the last committed checkpoint (round {s.Rounds.Count}) is intact");
                return;
            case FailureAction.RollBack:
                // Never load the corrupt checkpoint: the rounds from it on are dropped and redone from the last good one.
                await gate.Persist(s => RoundHistory.RollBack(s, decision.CorruptRound, e.Message));
                log.LogWarning("run {Run}: {Error}", runId, S.Error);
                return;
            case FailureAction.Fail:
                await Fail(decision, e);
                return;
            case FailureAction.Retry:
                log.LogWarning(e, "run {Run} round {Round} {Phase} attempt failed (transient failure {Count} of at most {Max}): {Message}",
                    runId, S.Round, S.Phase, transientFailures, FailurePolicy.MaxTransientAttempts, e.Message);
                Retrying = $"retrying round {S.Round} {S.Phase} after a transient failure ({transientFailures}): {e.Message}";
                await Task.Delay(decision.Delay, ct);
                return;
        }
        await CountAttempt(kind, e, ct);
    }

    /// <summary>A deterministic failure (or a transient one too many times): count attempts of this phase with these inputs.</summary>
    private async Task CountAttempt(FailureKind kind, Exception e, CancellationToken ct)
    {
        string key = FailurePolicy.AttemptKey(S.Round, S.Phase, S.Epoch);
        await gate.Persist(s => (s.FailingPhase, s.FailedAttempts) = FailurePolicy.CountAttempt(s.FailingPhase, s.FailedAttempts, key));
        int attempts = S.FailedAttempts;
        log.LogWarning(e, "run {Run} round {Round} {Phase} attempt failed ({Kind} failure, attempt {Attempt} of {Max}): {Message}",
            runId, S.Round, S.Phase, FailurePolicy.Describe(kind), attempts, FailurePolicy.MaxAttempts(kind, S.Spec!.MaxPhaseAttempts), e.Message);
        var decision = FailurePolicy.AfterAttempts(kind, attempts, S.Spec!.MaxPhaseAttempts, FailureClassifier.DiskFull(e));
        if (decision.Action == FailureAction.Fail) await Fail(decision, e);
        else await Task.Delay(decision.Delay, ct);
    }

    private Task<RunStatus> Fail(FailureDecision decision, Exception e) =>
        transition(RunTrigger.Fail, s => s.Error = decision.Error(s.Round, s.Phase, e.Message));

    /// <summary>
    /// A run that stopped driving (paused, cancelled, failed, completed) lets its workers' models go: each worker
    /// deactivates once its cancelled phase has returned, so stopped runs hold no GPU or host memory. A resumed
    /// run's workers load their checkpoints again from the silo's cache.
    /// </summary>
    private async Task RetireWorkers()
    {
        try
        {
            for (int k = 0; k < Math.Max(1, Math.Max(S.ReplicasUsed, S.Spec?.GenerationReplicas ?? 1)); k++) await phases.Replica(k).Retire();
        }
        catch (Exception e)
        {
            log.LogInformation("run {Run}: its workers could not be told to let their models go ({Message}); they will when idle", runId, e.Message);
        }
    }

    /// <summary>Copies the worker's progress into this grain while a call to it is in flight, for Watch.</summary>
    private async Task PollProgress(CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(500, token);
                // The poll is a call to the run's worker like any other: one that activated it without the run's placement
                // (before the step placed it, or after it was retired) would put it where the hash says and leave it there,
                // beside another replica. Not placed yet: nothing to poll.
                if (phases.PlacementHint is not { } hint) continue;
                Orleans.Runtime.RequestContext.Set(Placement.GpuSiloPlacementFilterDirector.HintKey, hint);
                Progress = await phases.Worker.Progress();
            }
            catch (OperationCanceledException) { break; }
            catch (Exception) { /* the worker may be moving or starting; the next poll tries again */ }
        }
    }
}
