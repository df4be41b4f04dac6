using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runtime;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Serialization;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// A run's orchestrator, as the commands users send: start, pause, resume, cancel, and the readers (status,
/// rounds, watch). The driving is the <see cref="RoundDriver"/>'s (the loop, and what a failure does, by the pure
/// <see cref="FailurePolicy"/>) over the <see cref="PhaseSequence"/> (the phase sequence); a durable reminder
/// (registered only while the run is driving) and activation restart the loop after a silo dies, and it resumes
/// from the last recorded phase output.
/// <para>
/// Reentrant so that status, listing and watching answer while a phase runs. Because of that, every write
/// of the persisted state goes through one gate (<see cref="RunStateGate"/>): a user's transition and the driver's
/// phase records never race on the ETag, and each transition is checked against the state machine
/// (<see cref="RunTransitions"/>) under that gate. Readers see only what is durable.
/// </para>
/// </summary>
[Placement.ControlSiloPreferred]
[Reentrant]
[CollectionAgeLimit(Days = 7)]
public sealed class RunGrain(
    [PersistentState("run", "runs")] IPersistentState<RunState> state,
    DeepCopier<RunState> copier,
    OnlineAlign.Specs.SpecLimits limits,
    OnlineAlign.Storage.CheckpointStore store,
    RunSettings settings,
    OnlineAlign.Grains.Placement.GpuSilos gpuSilos,
    FaultPoints faults,
    ILogger<RunGrain> log) : Grain, IRunGrain, IRemindable
{
    private const string ReminderName = "drive";

    /// <summary>How often a driving run whose reminder could not be written tries again (it has no reminder tick to do it).</summary>
    private static readonly TimeSpan ReminderMendPeriod = TimeSpan.FromSeconds(10);

    private IGrainTimer? _reminderMend;

    private RunStateGate _gate = null!;
    private RoundDriver _driver = null!;

    private string RunId => this.GetPrimaryKeyString();
    private RunState S => _gate.State;
    private RunState Durable => _gate.Durable;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _gate = new RunStateGate(RunId, state, copier);
        _gate.Loaded();
        // The GPU silos this silo lists: it activates the run's replicas, so the ledger places them only there.
        var phases = new PhaseSequence(RunId, _gate, GrainFactory, store, Transition, settings,
            () => gpuSilos.Known().Select(s => s.Address).ToList(), log);
        _driver = new RoundDriver(RunId, _gate, phases, Transition, DeactivateOnIdle, log);
        // A silo that died mid-round left the run driving: pick it up again at once.
        if (S.Lifecycle.IsDriving() && FormatProblem() is null) _driver.EnsureRunning();
        return Task.CompletedTask;
    }

    public Task<RunStatus> Start(RunSpec spec, string? requestId) => Begin(spec, requestId, lineage: null);

    public Task<RunStatus> Fork(RunSpec spec, string? requestId, RunLineage lineage)
    {
        if (!RunIds.IsValid(lineage.ParentRunId) || lineage.ParentRunId == RunId || lineage.ParentRound < 0 || lineage.Initial.Path.Length == 0)
            throw new ArgumentException($"fork of run '{RunId}': the lineage must name another run, a round >= 0 and the copied checkpoint");
        return Begin(spec, requestId, lineage);
    }

    /// <summary>
    /// A start: from the spec (prepared and warm-started by the first phase), or a fork whose round 0 is the copied
    /// checkpoint already (so the first phase evaluates it as round 0, and nothing is prepared).
    /// </summary>
    private static bool SameFork(RunLineage? a, RunLineage? b) =>
        a is null || b is null ? a == b : a.ParentRunId == b.ParentRunId && a.ParentRound == b.ParentRound;

    private async Task<RunStatus> Begin(RunSpec spec, string? requestId, RunLineage? lineage)
    {
        // Checked again here, not only by the API: any cluster member can call a grain.
        CallerChecks.Require(RunId, spec, limits);
        await _gate.Enter();
        try
        {
            if (S.Spec is not null)
            {
                if (requestId is not null && S.RequestId == requestId)
                    // Twin fork requests each copy the parent's round to their own folder: the same fork whichever copy it holds.
                    return S.Spec == spec && SameFork(S.ForkedFrom, lineage) ? Status()
                        : throw new RunStateException($"request id '{requestId}' already started run '{RunId}' with a different spec");
                throw new RunStateException($"run '{RunId}' already exists (state {S.Lifecycle.WireName()})");
            }
            // Registry and reminder first: a failure here leaves no run state, so a retried request starts cleanly,
            // and no run is ever "running" without something that drives it.
            // Admitted first: a cluster at its run limit refuses the start before anything is written.
            await Registry.Admit(RunId, limits.RunsInProgress);
            try
            {
                await Registry.Add(RunId);
                await RegisterReminder();
                await _gate.WriteLocked(s =>
                {
                    s.Spec = spec;
                    s.Format = RunState.CurrentFormat;
                    s.RequestId = requestId;
                    s.CreatedUtc = DateTime.UtcNow;
                    s.ForkedFrom = lineage;
                    s.Initial = lineage?.Initial;
                    s.Lifecycle = _gate.Next(s, RunTrigger.Start);
                });
            }
            catch
            {
                await ReleaseQuietly();
                throw;
            }
        }
        finally { _gate.Exit(); }
        _driver.EnsureRunning();
        return Status();
    }

    public Task<RunStatus?> Get() => Task.FromResult(Durable.Spec is null ? null : Status());

    public Task<List<RoundRecord>> Rounds() => Task.FromResult(Durable.Rounds.ToList());

    public Task<RoundRecord?> Initial() => Task.FromResult(Durable.Baseline);

    public Task<List<RoundRecord>> Superseded() => Task.FromResult(Durable.Superseded.ToList());

    public async Task<RunStatus> Pause()
    {
        var status = await Transition(RunTrigger.Pause);
        _driver.StopPhase(); // the phase in flight stops at its next step; its output is never recorded
        return status;
    }

    public async Task<RunStatus> Resume()
    {
        if (S.Spec is null) throw new RunNotFoundException(RunId);
        if (FormatProblem() is { } format) throw new RunStateException(format);
        // Only a run that may resume takes a place among the runs in progress (a wrong transition is reported as such).
        if (RunTransitions.TryNext(S.Lifecycle, RunTrigger.Resume, out _)) await Registry.Admit(RunId, limits.RunsInProgress);
        var status = await Transition(RunTrigger.Resume, s => { s.Error = null; s.FailingPhase = null; s.FailedAttempts = 0; });
        _driver.EnsureRunning();
        return status;
    }

    public async Task<RunStatus> Cancel()
    {
        var status = await Transition(RunTrigger.Cancel);
        _driver.StopPhase();
        return status;
    }

    public async IAsyncEnumerable<RunEvent> Watch(int fromRound, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Durable.Spec is null) throw new RunNotFoundException(RunId);
        int next = Math.Max(1, fromRound);
        PhaseProgress? sent = null;
        RunStatus? sentStatus = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var durable = Durable;
            foreach (var record in durable.Rounds.Where(r => r.Round >= next).ToList())
            {
                yield return new RunEvent { RoundCommitted = record };
                next = record.Round + 1;
            }
            var progress = _driver.Progress;
            if (progress is not null && progress != sent)
            {
                yield return new RunEvent { Progress = progress };
                sent = progress;
            }
            var status = Status();
            if (sentStatus is null || status.State != sentStatus.State || status.Error != sentStatus.Error)
            {
                yield return new RunEvent { Status = status };
                sentStatus = status;
            }
            if (!status.State.IsDriving()) yield break;
            try { await Task.Delay(250, cancellationToken); }
            catch (OperationCanceledException) { yield break; }
        }
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (S.Lifecycle.IsDriving() && FormatProblem() is null)
        {
            _driver.EnsureRunning();
            return;
        }
        // Left by a transition whose unregistering failed, or by a start that failed half-way. Decided again under the
        // gate: this grain is reentrant, and a resume that registers the reminder between the check above and the
        // removal would otherwise lose it.
        await _gate.Enter();
        try
        {
            if (!S.Lifecycle.IsDriving() || FormatProblem() is not null) await UnregisterReminder();
        }
        finally { _gate.Exit(); }
    }

    /// <summary>Applies a trigger of the state machine (and any other change with it) and persists both, or neither.</summary>
    private async Task<RunStatus> Transition(RunTrigger trigger, Action<RunState>? also = null)
    {
        if (S.Spec is null && trigger != RunTrigger.Start) throw new RunNotFoundException(RunId);
        await _gate.Enter();
        try
        {
            await _gate.WriteLocked(s =>
            {
                s.Lifecycle = _gate.Next(s, trigger);
                also?.Invoke(s);
            });
            // Only a driving run keeps a reminder. The state is written already, so a failure here does not undo the
            // transition: a stale reminder is removed by its next tick, and a missing one is written again by a timer
            // (a run resumed without its reminder would otherwise stay stopped after its silo died).
            try
            {
                if (S.Lifecycle.IsDriving()) await RegisterReminder();
                else
                {
                    await UnregisterReminder();
                    await ReleaseQuietly();
                }
            }
            catch (Exception e) when (FailureClassifier.IsTransient(e))
            {
                log.LogWarning(e, "run {Run}: the reminder could not be updated for state {State}", RunId, S.Lifecycle.WireName());
                if (S.Lifecycle.IsDriving()) MendReminderLater();
            }
            return Status();
        }
        finally { _gate.Exit(); }
    }

    /// <summary>
    /// Writes the run's reminder. Orleans answers a write that lost a race on the reminder table with a ReminderException
    /// ("Please try again later"), so it is tried at most <see cref="ReminderWrites"/> times, a moment apart; a start that
    /// still fails answers UNAVAILABLE with nothing written (FailureClassifier counts the exception as transient).
    /// </summary>
    private async Task RegisterReminder()
    {
        for (int attempt = 1; ; attempt++)
            try
            {
                await faults.ReachAsync("run/reminder", CancellationToken.None);
                await this.RegisterOrUpdateReminder(ReminderName, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
                break;
            }
            catch (ReminderException e) when (attempt < ReminderWrites)
            {
                log.LogWarning("run {Run}: writing its reminder lost a race on the reminder table ({Message}); try {Next} of {Tries}",
                    RunId, e.Message, attempt + 1, ReminderWrites);
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt));
            }
        _reminderMend?.Dispose();
        _reminderMend = null;
    }

    private const int ReminderWrites = 3;

    /// <summary>Writes the reminder of a driving run again every <see cref="ReminderMendPeriod"/> until it is written or the run stops.</summary>
    private void MendReminderLater()
    {
        _reminderMend ??= this.RegisterGrainTimer(async () =>
        {
            await _gate.Enter();
            try
            {
                if (!S.Lifecycle.IsDriving())
                {
                    _reminderMend?.Dispose(); // the transition that stopped it unregistered (or mends through its tick)
                    _reminderMend = null;
                    return;
                }
                await RegisterReminder();
                log.LogInformation("run {Run}: its reminder was written again", RunId);
            }
            catch (Exception e) when (FailureClassifier.IsTransient(e))
            {
                log.LogWarning(e, "run {Run}: the reminder could still not be written; trying again in {Seconds} s", RunId, ReminderMendPeriod.TotalSeconds);
            }
            finally { _gate.Exit(); }
        }, new GrainTimerCreationOptions(ReminderMendPeriod, ReminderMendPeriod) { Interleave = true });
    }

    private IRunRegistryGrain Registry => GrainFactory.GetGrain<IRunRegistryGrain>(0);

    /// <summary>Gives the run's place among the runs in progress back; if that fails, the registry finds out when it next fills up.</summary>
    private async Task ReleaseQuietly()
    {
        try { await GrainFactory.GetGrain<IGpuLedgerGrain>(0).Release(RunId); }   // its GPU memory is free for waiting runs
        catch (Exception e) when (FailureClassifier.IsTransient(e)) { log.LogWarning(e,
            "run {Run}: could not release its GPU placement; it is placed again when it next drives", RunId); }
        try { await Registry.Release(RunId); }
        catch (Exception e) when (FailureClassifier.IsTransient(e)) { log.LogWarning(e,
            "run {Run}: could not release its place among the runs in progress", RunId); }
    }

    private async Task UnregisterReminder()
    {
        var reminder = await this.GetReminder(ReminderName);
        if (reminder is not null) await this.UnregisterReminder(reminder);
    }

    /// <summary>Why this version must not drive the run: its state was saved in another format (null: it may).</summary>
    private string? FormatProblem() => Durable.FormatProblem(RunId);

    private RunStatus Status()
    {
        var d = Durable;
        var (round, phase) = S.InProgress();
        return RunGuard.With(new()
        {
            RunId = RunId, Spec = d.Spec ?? new RunSpec(), State = d.Lifecycle, Round = round, Phase = phase,
            CommittedRounds = d.Rounds.Count, Version = d.Version,
            ForkedFrom = d.ForkedFrom,
            Error = FormatProblem() ?? d.Error ?? (d.Lifecycle.IsDriving() ? _driver.Retrying : null), OtherFormat = FormatProblem(),
        }, d);
    }
}
