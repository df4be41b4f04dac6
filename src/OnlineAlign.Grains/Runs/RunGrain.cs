using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runtime;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// Drives a run's rounds: prepare the initial policy, then for each round ask the run's worker grain to
/// run its phases and commit its record (metrics + checkpoint manifest) to persisted state. A background
/// loop does the driving; a durable reminder (registered only while the run is driving) and activation
/// restart it after a silo dies, and it resumes from the last recorded phase output.
/// <para>
/// Reentrant so that status, listing and watching answer while a phase runs. Because of that, every write
/// of the persisted state goes through one gate (<see cref="WriteLocked"/>): a user's transition and the driver's
/// phase records never race on the ETag, and each transition is checked against the state machine
/// (<see cref="RunTransitions"/>) under that gate. Readers see only what is durable (<see cref="_durable"/>).
/// </para>
/// </summary>
[Reentrant]
[CollectionAgeLimit(Days = 7)]
public sealed class RunGrain(
    [PersistentState("run", "runs")] IPersistentState<RunState> state,
    DeepCopier<RunState> copier,
    OnlineAlign.Pipeline.Specs.SpecLimits limits,
    OnlineAlign.Storage.CheckpointStore store,
    ILogger<RunGrain> log) : Grain, IRunGrain, IRemindable
{
    private const string ReminderName = "drive";
    /// <summary>A silo lost, a timeout or storage down this many times in a row on one phase ends the run as failed.</summary>
    private const int MaxTransientAttempts = 20;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private RunState _durable = new();
    private Task? _loop;
    private PhaseProgress? _progress;
    private CancellationTokenSource? _inflight;
    private string? _retrying;

    private string RunId => this.GetPrimaryKeyString();
    private RunState S => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _durable = copier.Copy(S);
        // A silo that died mid-round left the run driving: pick it up again at once.
        if (S.Lifecycle.IsDriving()) EnsureLoop();
        return Task.CompletedTask;
    }

    public async Task<RunStatus> Start(RunSpec spec, string? requestId)
    {
        // Checked again here, not only by the API: any cluster member can call a grain.
        RunIds.Require(RunId);
        var problems = OnlineAlign.Pipeline.Specs.RunSpecMapping.Problems(spec, limits, roots: null, readFiles: false, countsOnly: true);
        if (problems.Count > 0) throw new ArgumentException("invalid run spec: " + string.Join("; ", problems));
        await _gate.WaitAsync();
        try
        {
            if (S.Spec is not null)
            {
                if (requestId is not null && S.RequestId == requestId)
                    return S.Spec == spec ? Status()
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
                await this.RegisterOrUpdateReminder(ReminderName, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
                await WriteLocked(s =>
                {
                    s.Spec = spec;
                    s.RequestId = requestId;
                    s.CreatedUtc = DateTime.UtcNow;
                    s.Lifecycle = Next(s, RunTrigger.Start);
                });
            }
            catch
            {
                await ReleaseQuietly();
                throw;
            }
        }
        finally { _gate.Release(); }
        EnsureLoop();
        return Status();
    }

    public Task<RunStatus?> Get() => Task.FromResult(_durable.Spec is null ? null : Status());

    public Task<List<RoundRecord>> Rounds() => Task.FromResult(_durable.Rounds.ToList());

    public Task<RoundRecord?> Initial() => Task.FromResult(_durable.Baseline);

    public Task<List<RoundRecord>> Superseded() => Task.FromResult(_durable.Superseded.ToList());

    public async Task<RunStatus> Pause()
    {
        var status = await Transition(RunTrigger.Pause);
        _inflight?.Cancel(); // the phase in flight stops at its next step; its output is never recorded
        return status;
    }

    public async Task<RunStatus> Resume()
    {
        if (S.Spec is null) throw new RunNotFoundException(RunId);
        // Only a run that may resume takes a place among the runs in progress (a wrong transition is reported as such).
        if (RunTransitions.TryNext(S.Lifecycle, RunTrigger.Resume, out _)) await Registry.Admit(RunId, limits.RunsInProgress);
        var status = await Transition(RunTrigger.Resume, s => { s.Error = null; s.FailingPhase = null; s.FailedAttempts = 0; });
        EnsureLoop();
        return status;
    }

    public async Task<RunStatus> Cancel()
    {
        var status = await Transition(RunTrigger.Cancel);
        _inflight?.Cancel();
        return status;
    }

    public async IAsyncEnumerable<RunEvent> Watch(int fromRound, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (_durable.Spec is null) throw new RunNotFoundException(RunId);
        int next = Math.Max(1, fromRound);
        PhaseProgress? sent = null;
        RunStatus? sentStatus = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var durable = _durable;
            foreach (var record in durable.Rounds.Where(r => r.Round >= next).ToList())
            {
                yield return new RunEvent { RoundCommitted = record };
                next = record.Round + 1;
            }
            var progress = _progress;
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
        if (S.Lifecycle.IsDriving()) EnsureLoop();
        else await UnregisterReminder(); // left by a transition whose unregistering failed, or by a start that failed half-way
    }

    private void EnsureLoop()
    {
        if (_loop is null || _loop.IsCompleted) _loop = Drive();
    }

    private async Task Drive()
    {
        var worker = GrainFactory.GetGrain<IPolicyWorkerGrain>(RunId);
        int transientFailures = 0;
        while (S.Lifecycle.IsDriving())
        {
            var inflight = _inflight = new CancellationTokenSource();
            using var stopPolling = new CancellationTokenSource();
            var progressPoll = PollProgress(worker, stopPolling.Token);
            try
            {
                if (S.Initial is null)
                {
                    Enter(0, "prepare");
                    var prepared = await worker.Prepare(RunId, S.Spec!, S.Epoch, inflight.Token);
                    await Record(s => s.Initial = prepared.Output);
                }
                else if (S.Baseline is null)
                {
                    // Round 0: the initial policy evaluated as every round is, so a run's table shows what the rounds changed.
                    Enter(0, "evaluate");
                    var initial = S.Initial;
                    var evaluated = await worker.Evaluate(new PhaseRequest
                    {
                        RunId = RunId, Spec = S.Spec!, Round = 0, Epoch = S.Epoch, Policy = initial, Initial = initial, Trained = initial,
                    }, inflight.Token);
                    await Record(s => s.Baseline = new RoundRecord
                    {
                        Round = 0, Metrics = evaluated.Metrics, ManifestPath = initial.Path, ManifestSha256 = initial.Sha256,
                        Outputs = new() { ["evaluate"] = evaluated.Output.Path },
                        Epoch = s.Epoch,
                    });
                    RunTelemetry.RoundCommitted(RunId, 0, evaluated.Metrics);
                }
                else if (S.Rounds.Count >= S.Spec!.Rounds)
                {
                    await Transition(RunTrigger.Complete, s => s.Phase = "");
                }
                else await RunRound(worker, S.Rounds.Count + 1, inflight.Token);
                transientFailures = 0;
                _retrying = null;
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
                log.LogWarning(e, "run {Run}: the persisted state changed under this activation; it stops and deactivates", RunId);
                DeactivateOnIdle();
                break;
            }
            catch (Exception e)
            {
                try { await Failed(e, ++transientFailures, inflight.Token); }
                catch (OperationCanceledException) { }
                catch (InconsistentStateException) { DeactivateOnIdle(); break; }
                catch (Exception again) when (FailureClassifier.IsTransient(again) || again is RunStateException)
                {
                    log.LogWarning(again, "run {Run}: recording a failure failed; the loop tries again", RunId);
                }
            }
            finally
            {
                stopPolling.Cancel();
                await progressPoll;
            }
        }
        if (S.Lifecycle.IsDriving()) return; // left on a lost ETag race: the winning activation drives
        await RetireWorkers(worker);
        // Resumed while the workers were being retired (this loop was still running, so Resume did not start one).
        if (S.Lifecycle.IsDriving()) await Drive();
    }

    /// <summary>
    /// A run that stopped driving (paused, cancelled, failed, completed) lets its workers' models go: each worker
    /// deactivates once its cancelled phase has returned, so stopped runs hold no GPU or host memory. A resumed
    /// run's workers load their checkpoints again from the silo's cache.
    /// </summary>
    private async Task RetireWorkers(IPolicyWorkerGrain worker)
    {
        try
        {
            for (int k = 0; k < Math.Max(1, S.Spec?.GenerationReplicas ?? 1); k++) await Replica(worker, k).Retire();
        }
        catch (Exception e)
        {
            log.LogInformation("run {Run}: its workers could not be told to let their models go ({Message}); they will when idle", RunId, e.Message);
        }
    }

    /// <summary>What a failed phase call (or state write) does to the run, by the kind of failure.</summary>
    private async Task Failed(Exception e, int transientFailures, CancellationToken ct)
    {
        var kind = FailureClassifier.Classify(e);
        switch (kind)
        {
            case FailureKind.NoGpuSilo:
                // Park visibly and keep trying; the reminder stays, so a restart also keeps trying.
                if (S.Lifecycle == RunLifecycle.Running) await Transition(RunTrigger.LoseGpu);
                await Task.Delay(TimeSpan.FromSeconds(5), ct);
                return;
            case FailureKind.Diverged:
                await Transition(RunTrigger.Diverge, s => s.Error = $"{e.Message}; the last committed checkpoint (round {s.Rounds.Count}) is intact");
                return;
            case FailureKind.CorruptCheckpoint:
                await RollBackPast(e.Message);
                return;
            case FailureKind.BadInput:
                await Transition(RunTrigger.Fail, s => s.Error = $"round {s.Round} {s.Phase}: {e.Message}");
                return;
            case FailureKind.Transient when transientFailures < MaxTransientAttempts:
                log.LogWarning(e, "run {Run} round {Round} {Phase} attempt failed (transient failure {Count} of at most {Max}): {Message}",
                    RunId, S.Round, S.Phase, transientFailures, MaxTransientAttempts, e.Message);
                _retrying = $"retrying round {S.Round} {S.Phase} after a transient failure ({transientFailures}): {e.Message}";
                await Task.Delay(Backoff(transientFailures), ct);
                return;
        }
        // Deterministic (or transient too many times): count attempts of this phase with these inputs.
        string key = $"{S.Round}/{S.Phase}/{S.Epoch}";
        await Persist(s =>
        {
            if (s.FailingPhase != key) (s.FailingPhase, s.FailedAttempts) = (key, 0);
            s.FailedAttempts++;
        });
        int attempts = S.FailedAttempts;
        int max = kind == FailureKind.Transient ? 1 : Math.Max(1, S.Spec!.MaxPhaseAttempts);
        log.LogWarning(e, "run {Run} round {Round} {Phase} attempt failed ({Kind} failure, attempt {Attempt} of {Max}): {Message}",
            RunId, S.Round, S.Phase, kind switch { FailureKind.Transient => "transient", FailureKind.DiskFull => "disk full", _ => "deterministic" }, attempts, max, e.Message);
        if (attempts >= max)
        {
            string why = kind == FailureKind.Transient ? $"{MaxTransientAttempts} transient failures in a row"
                : kind == FailureKind.DiskFull ? $"failed {attempts} times: disk full ({FailureClassifier.DiskFull(e) ?? "disk"})"
                : $"failed {attempts} times with the same inputs";
            await Transition(RunTrigger.Fail, s => s.Error = $"round {s.Round} {s.Phase} {why}: {e.Message}");
            return;
        }
        await Task.Delay(Backoff(attempts), ct);
    }

    private static TimeSpan Backoff(int attempt) => TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, attempt)));

    /// <summary>
    /// One round as a state machine: generate, judge, pairs, train, evaluate, commit. Each phase's output is
    /// recorded in the persisted state the moment it exists; after a crash the round goes on from the first
    /// phase without an output, from the recorded outputs of the phases before it.
    /// </summary>
    private async Task RunRound(IPolicyWorkerGrain worker, int round, CancellationToken ct)
    {
        if (S.Current is not { } current || current.Round != round) await Record(s => s.Current = new RoundProgress { Round = round });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Task RecordPhase(Action<RoundProgress> set) => Record(s =>
        {
            set(s.Current!);
            s.Current!.Seconds += clock.Elapsed.TotalSeconds;
            clock.Restart();
        });

        if (S.Current!.Generations.Count == 0)
        {
            Enter(round, "generate");
            var shards = Shards(S.Spec!.PromptsPerRound, S.Spec.GenerationReplicas);
            var outputs = await Task.WhenAll(shards.Select((positions, k) => Timed("generate", () => Replica(worker, k).Generate(new GenerationRequest
            {
                RunId = RunId, Spec = S.Spec, Round = round, Policy = PolicyAt(round)!, PromptPositions = positions, Shard = k, Epoch = S.Epoch, Initial = S.Initial,
            }, ct))));
            await RecordPhase(p => p.Generations = outputs.ToList());
        }
        var request = new PhaseRequest
        {
            RunId = RunId, Spec = S.Spec!, Round = round, Epoch = S.Epoch, Policy = PolicyAt(round)!, Initial = S.Initial!,
            TrainedFrom = PolicyAt(round - 1), TrainedFromBefore = PolicyAt(round - 2), Generations = S.Current!.Generations.Select(g => g.Output).ToList(),
        };
        if (S.Current!.Judged is null)
        {
            Enter(round, "judge");
            var judged = await Timed("judge", () => worker.Judge(request, ct));
            await RecordPhase(p => p.Judged = judged);
        }
        request = request with { Judged = S.Current!.Judged!.Output };
        if (S.Current!.Pairs is null)
        {
            Enter(round, "pairs");
            var pairs = await Timed("pairs", () => worker.BuildPairs(request, ct));
            await RecordPhase(p => p.Pairs = pairs);
        }
        request = request with { Pairs = S.Current!.Pairs!.Output };
        if (S.Current!.Trained is null)
        {
            Enter(round, "train");
            var trained = await Timed("train", () => worker.Train(request, ct));
            await RecordPhase(p => p.Trained = trained);
        }
        request = request with { Trained = S.Current!.Trained!.Output };
        Enter(round, "evaluate");
        var evaluated = await Timed("evaluate", () => worker.Evaluate(request, ct));
        // Commit: the round exists (and becomes visible to readers) once its record is durable.
        await Record(s =>
        {
            s.Current!.Evaluated = evaluated;
            s.Current.Seconds += clock.Elapsed.TotalSeconds;
            s.Rounds.Add(RoundCommit.Record(s.Current, s.Rounds) with { Epoch = s.Epoch });
            s.Current = null;
            s.Phase = "committed";
        });
        RunTelemetry.RoundCommitted(RunId, S.Rounds[^1].Round, S.Rounds[^1].Metrics);
        await ApplyRetention();
    }

    /// <summary>
    /// A phase call, with what it cost beyond the worker's own time (messages, queueing, serialization) as
    /// time/overhead/{phase}: the worker reports its compute and storage time, the caller sees the whole call.
    /// </summary>
    private static async Task<PhaseOutput> Timed(string phase, Func<Task<PhaseOutput>> call)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var output = await call();
        double inWorker = output.Metrics.Where(kv => kv.Key.StartsWith("time/", StringComparison.Ordinal)).Sum(kv => kv.Value);
        return output with
        {
            Metrics = new Dictionary<string, double>(output.Metrics) { [$"time/overhead/{phase}"] = Math.Max(0, clock.Elapsed.TotalSeconds - inWorker) },
        };
    }

    /// <summary>Shows the phase being worked on (in memory: only finished phases' outputs are worth a state write).</summary>
    private void Enter(int round, string phase)
    {
        S.Round = round;
        S.Phase = phase;
    }

    /// <summary>Records a finished phase's output; a phase that finished means a GPU silo answered again.</summary>
    private Task Record(Action<RunState> change) => Persist(s =>
    {
        change(s);
        if (s.Lifecycle == RunLifecycle.WaitingForGpu) s.Lifecycle = Next(s, RunTrigger.FindGpu);
        (s.FailingPhase, s.FailedAttempts) = (null, 0);
    });

    /// <summary>Applies a trigger of the state machine (and any other change with it) and persists both, or neither.</summary>
    private async Task<RunStatus> Transition(RunTrigger trigger, Action<RunState>? also = null)
    {
        if (S.Spec is null && trigger != RunTrigger.Start) throw new RunNotFoundException(RunId);
        await _gate.WaitAsync();
        try
        {
            await WriteLocked(s =>
            {
                s.Lifecycle = Next(s, trigger);
                also?.Invoke(s);
            });
            // Only a driving run keeps a reminder; a failure here is mended by the next reminder tick or transition.
            try
            {
                if (S.Lifecycle.IsDriving()) await this.RegisterOrUpdateReminder(ReminderName, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
                else
                {
                    await UnregisterReminder();
                    await ReleaseQuietly();
                }
            }
            catch (Exception e) when (FailureClassifier.IsTransient(e) || e is ReminderException)
            {
                log.LogWarning(e, "run {Run}: the reminder could not be updated for state {State}", RunId, S.Lifecycle.WireName());
            }
            return Status();
        }
        finally { _gate.Release(); }
    }

    private IRunRegistryGrain Registry => GrainFactory.GetGrain<IRunRegistryGrain>(0);

    /// <summary>Gives the run's place among the runs in progress back; if that fails, the registry finds out when it next fills up.</summary>
    private async Task ReleaseQuietly()
    {
        try { await Registry.Release(RunId); }
        catch (Exception e) when (FailureClassifier.IsTransient(e)) { log.LogWarning(e, "run {Run}: could not release its place among the runs in progress", RunId); }
    }

    private RunLifecycle Next(RunState s, RunTrigger trigger) => RunTransitions.TryNext(s.Lifecycle, trigger, out var next) ? next
        : throw new RunStateException($"cannot {trigger.Verb()} run '{RunId}': it is {s.Lifecycle.WireName()}");

    /// <summary>Changes and persists the state, in turn with every other write of this activation.</summary>
    private async Task Persist(Action<RunState> change)
    {
        await _gate.WaitAsync();
        try { await WriteLocked(change); }
        finally { _gate.Release(); }
    }

    /// <summary>
    /// The one place the state is changed and written; the caller holds the gate. A failed write puts back the
    /// last durable state, so memory never runs ahead of storage.
    /// </summary>
    private async Task WriteLocked(Action<RunState> change)
    {
        change(S);
        S.Version++;
        try { await state.WriteStateAsync(); }
        catch
        {
            state.State = copier.Copy(_durable);
            throw;
        }
        _durable = copier.Copy(S);
    }

    /// <summary>Copies the worker's progress into this grain while a call to it is in flight, for Watch.</summary>
    private async Task PollProgress(IPolicyWorkerGrain worker, CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(500, token);
                _progress = await worker.Progress();
            }
            catch (OperationCanceledException) { break; }
            catch (Exception) { /* the worker may be moving or starting; the next poll tries again */ }
        }
    }

    /// <summary>Contiguous prompt-position ranges, one per replica; the split never changes what is sampled.</summary>
    public static List<List<int>> Shards(int prompts, int replicas)
    {
        int n = Math.Clamp(replicas, 1, Math.Max(1, prompts));
        return Enumerable.Range(0, n).Select(k => Enumerable.Range(k * prompts / n, (k + 1) * prompts / n - k * prompts / n).ToList()).ToList();
    }

    /// <summary>Replica 0 is the run's own worker; the others are separate activations the GPU filter places.</summary>
    private IPolicyWorkerGrain Replica(IPolicyWorkerGrain main, int k) => k == 0 ? main : GrainFactory.GetGrain<IPolicyWorkerGrain>($"{RunId}#gen{k}");

    /// <summary>P_k, the policy at the start of round k: round 1 starts from the initial policy.</summary>
    private BlobRef? PolicyAt(int k) => k < 1 ? null : k == 1 ? S.Initial : new BlobRef
    {
        Path = S.Rounds[k - 2].ManifestPath, Sha256 = S.Rounds[k - 2].ManifestSha256,
    };

    /// <summary>
    /// A checkpoint failed its hash check: never load it. Rounds from the corrupt one on are dropped and
    /// redone from the last good committed checkpoint (round 0, the initial policy, is rebuilt by prepare).
    /// </summary>
    private async Task RollBackPast(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, @"round-(\d{4})/");
        if (!match.Success)
        {
            await Transition(RunTrigger.Fail, s => s.Error = $"round {s.Round}: {message}");
            return;
        }
        int corrupt = int.Parse(match.Groups[1].Value);
        await Persist(s => RoundHistory.RollBack(s, corrupt, message));
        log.LogWarning("run {Run}: {Error}", RunId, S.Error);
    }

    /// <summary>
    /// After a round's commit is durable: marks the checkpoints the run's retention no longer keeps (a state write),
    /// then deletes them from storage. A delete that fails stays queued and is tried again after the next commit;
    /// it never fails the round, which is committed already.
    /// </summary>
    private async Task ApplyRetention()
    {
        try
        {
            if (CheckpointRetentionMarks()) await Persist(s => RoundHistory.MarkForRetention(s));
            var deleted = new List<string>();
            foreach (var path in S.PendingDeletes.ToList())
            {
                int blobs = await store.DeleteCheckpointAsync(path);
                log.LogInformation("run {Run}: retention deleted checkpoint {Path} ({Blobs} blobs)", RunId, path, blobs);
                deleted.Add(path);
            }
            if (deleted.Count > 0) await Persist(s => s.PendingDeletes.RemoveAll(deleted.Contains));
        }
        catch (Exception e) when (e is not InconsistentStateException)
        {
            log.LogWarning(e, "run {Run}: retention could not delete old checkpoints now; it tries again after the next commit", RunId);
        }
    }

    /// <summary>Whether retention has checkpoints to mark (checked before a state write, so most commits cost none).</summary>
    private bool CheckpointRetentionMarks() =>
        OnlineAlign.Pipeline.Retention.CheckpointRetention.ToDelete(S.Spec!, S.Rounds, S.Superseded, S.Initial?.Path).Count > 0;

    private async Task UnregisterReminder()
    {
        var reminder = await this.GetReminder(ReminderName);
        if (reminder is not null) await this.UnregisterReminder(reminder);
    }

    private RunStatus Status()
    {
        var d = _durable;
        return new()
        {
            RunId = RunId, Spec = d.Spec ?? new RunSpec(), State = d.Lifecycle, Round = S.Round, Phase = S.Phase,
            CommittedRounds = d.Rounds.Count, Error = d.Error ?? (d.Lifecycle.IsDriving() ? _retrying : null), Version = d.Version,
        };
    }
}
