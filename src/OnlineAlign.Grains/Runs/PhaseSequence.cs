using Microsoft.Extensions.Logging;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Execution.Phases;
using Orleans.Storage;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The phase sequence of a run: prepare the initial policy, evaluate it as round 0, then for each round generate,
/// judge, pairs, train, evaluate and commit, and complete after the last. Each phase's output is recorded in the
/// persisted state the moment it exists, so after a crash a run goes on from the first phase without an output; but the
/// trained checkpoint, whose upload may still run behind the evaluation, is recorded only with the commit, once durable.
/// Failures are the <see cref="RoundDriver"/>'s to handle; this class only does the next step. How a phase is spread over
/// the round's replicas is in PhaseSequence.Shards.cs.
/// </summary>
internal sealed partial class PhaseSequence(
    string runId,
    RunStateGate gate,
    IGrainFactory grains,
    OnlineAlign.Storage.CheckpointStore store,
    Func<RunTrigger, Action<RunState>?, Task<RunStatus>> transition,
    RunSettings settings,
    Func<List<string>> placeableGpuSilos,
    ILogger log)
{
    private RunState S => gate.State;

    /// <summary>The run's own worker (replica 0): prepares, trains, runs the phases' merges and shard 0 of each sharded phase.</summary>
    public IPolicyWorkerGrain Worker => grains.GetGrain<IPolicyWorkerGrain>(runId);

    /// <summary>
    /// Replica 0 is the run's own worker; the others are separate activations the GPU filter places (keyed "#gen" since
    /// generation was the first phase they shared; they run every sharded phase's shards).
    /// </summary>
    public IPolicyWorkerGrain Replica(int k) => k == 0 ? Worker : grains.GetGrain<IPolicyWorkerGrain>(ReplicaKeys.Of(runId, k));

    /// <summary>Does the run's next step: prepare, round 0's evaluation, the next round, or completing the run.</summary>
    public async Task Next(CancellationToken ct)
    {
        if (S.Initial is null)
        {
            // A fork's round 0 is a copy of its parent's round, set at its start; only a rollback past that copy (it failed
            // its hash check) clears it, and preparing would warm-start another model: the run fails, saying why.
            if (S.ForkedFrom is { } fork)
                throw new RunInputException(
                    $"round 0 of this fork (the copy of run '{fork.ParentRunId}' round {fork.ParentRound}) is corrupt; fork the parent again");
            Enter(0, "prepare");
            Use(await Place(S.Spec!.GenerationReplicas));
            var prepared = await Worker.Prepare(runId, S.Spec!, S.Epoch, ct);
            await Record(s =>
            {
                s.Initial = prepared.Output;
                s.BeforeWarmStart = prepared.BeforeWarmStart;
            });
        }
        else if (S.Baseline is null) await EvaluateInitial(ct);
        else if (S.Rounds.Count >= S.Spec!.Rounds) await Complete();
        // The label-free guard: a round whose health signals crossed a threshold ends the run (RunGuard gives the reason).
        else if (RunGuard.Of(S.Spec, S.Baseline, S.Rounds).Stop) await Complete();
        else await Round(S.Rounds.Count + 1, ct);
    }

    private async Task<RunStatus> Complete()
    {
        DropNextGeneration("the run completes");
        // The last commit's retention has no next commit to try again after: a delete it could not do is tried once more here.
        await ApplyRetention();
        return await transition(RunTrigger.Complete, s => s.Phase = "");
    }

    /// <summary>Round 0: the initial policy evaluated as every round is, so a run's table shows what the rounds changed.</summary>
    private async Task EvaluateInitial(CancellationToken ct)
    {
        Enter(0, "evaluate");
        var initial = S.Initial!;
        int replicas = Use(await Place(S.Spec!.GenerationReplicas));
        if (replicas > S.ReplicasUsed) await gate.Persist(s => s.ReplicasUsed = replicas);   // so that all of them are retired
        var evaluated = await Evaluate(new PhaseRequest
        {
            RunId = runId, Spec = S.Spec!, Round = 0, Epoch = S.Epoch, Policy = initial, Initial = initial, Trained = initial,
        }, replicas, ct);
        await Record(s => s.Baseline = new RoundRecord
        {
            Round = 0, Metrics = evaluated.Metrics, ManifestPath = initial.Path, ManifestSha256 = initial.Sha256,
            Outputs = new() { ["evaluate"] = evaluated.Output.Path },
            Epoch = s.Epoch,
        });
        RunTelemetry.RoundCommitted(runId, 0, evaluated.Metrics);
    }

    /// <summary>
    /// One round as a state machine: generate, judge, pairs, train, evaluate, commit. A phase whose output is
    /// recorded already is skipped; the next goes on from the recorded outputs of the phases before it.
    /// </summary>
    private async Task Round(int round, CancellationToken ct)
    {
        if (S.Current is not { } current || current.Round != round) await Record(s => s.Current = new RoundProgress { Round = round });
        // A resumed round keeps its count, on the same silos while they live.
        var placement = await Place(S.Current!.Replicas > 0 ? S.Current.Replicas : S.Spec!.GenerationReplicas);
        int replicas = Use(placement);
        if (S.Current.Replicas == 0)
            // Fixed once per round (and persisted before any shard starts): a resumed round cuts the very same shards.
            await gate.Persist(s =>
            {
                s.Current!.Replicas = replicas;
                s.ReplicasUsed = Math.Max(s.ReplicasUsed, replicas);   // so that all of them are retired
            });
        await PlaceReplicas(placement);
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
            var outputs = await Generate(round, ct);
            await RecordPhase(p => p.Generations = outputs);
        }
        DropNextGeneration($"round {round}'s generation was recorded before");
        var request = new PhaseRequest
        {
            RunId = runId, Spec = S.Spec!, Round = round, Epoch = S.Epoch, Policy = PolicyAt(round)!, Initial = S.Initial!,
            TrainedFrom = PolicyAt(round - 1), TrainedFromBefore = PolicyAt(round - 2), Generations = S.Current!.Generations.Select(g => g.Output).ToList(),
            BeforeWarmStart = S.BeforeWarmStart,
        };
        if (S.Current!.Judged is null)
        {
            Enter(round, "judge");
            var judged = await Judge(request, ct);
            await RecordPhase(p => p.Judged = judged);
        }
        request = request with { Judged = S.Current!.Judged!.Output };
        if (S.Current!.Pairs is null)
        {
            Enter(round, "pairs");
            // Only the worker knows how many pairs the round has: each replica cuts its own share of them.
            var pairs = await Sharded("pairs", request, S.Current!.Replicas, (replica, r) => replica.PairsShard(r, ct), r => Worker.BuildPairs(r, ct));
            await RecordPhase(p => p.Pairs = pairs);
        }
        request = request with { Pairs = S.Current!.Pairs!.Output };
        // The trained checkpoint is recorded with the commit, once durable (a state from before the overlap may hold it already).
        var trained = S.Current!.Trained;
        Task<Dictionary<string, double>?>? durable = null;
        if (trained is null)
        {
            Enter(round, "train");
            // Data-parallel where the spec allows it (optimizer.data_parallel): replica 0 coordinates the others' gradients.
            int trainReplicas = OnlineAlign.Execution.Phases.DataParallelTraining.Replicas(S.Spec!, S.Current!.Replicas);
            trained = await Timed("train", () => Worker.Train(trainReplicas > 1 ? request with { ShardCount = trainReplicas } : request, ct));
            trained = trained with { Metrics = ShardMetrics.WithThroughput(trained.Metrics, "train", [trained.Metrics], "time/train") };
            // The worker may still be uploading it (Silo:OverlapCheckpointUpload): asked now, answered once durable.
            durable = Worker.CheckpointDurable(trained.Output, ct);
        }
        request = request with { Trained = trained.Output };
        Enter(round, "evaluate");
        PhaseOutput? evaluated = null;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failed = null;
        try { evaluated = await Evaluate(request, S.Current!.Replicas, ct, durable); }
        catch (Exception e) when (durable is not null) { failed = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e); }
        if (durable is not null)
        {
            Enter(round, "checkpoint");
            var wait = System.Diagnostics.Stopwatch.StartNew();
            // The next round's first phase on the trainer, while the upload runs (PhaseSequence.NextGeneration.cs).
            if (failed is null && !durable.IsCompleted) StartNextGeneration(round, trained, evaluated!, ct);
            // A failed upload is the failure to report, even when the evaluation failed too: it may have failed because of it
            // (a full disk), and the upload's kind (transient, disk full) decides whether the round trains again. The worker
            // keeps the failed checkpoint's local copy, which the evaluation reads, until the train phase is asked again.
            Dictionary<string, double>? upload;
            try { upload = await durable; }
            catch (Exception)
            {
                DropNextGeneration($"round {round}'s checkpoint upload failed");
                throw;
            }
            if (upload is null)
            {
                DropNextGeneration($"round {round}'s checkpoint was lost");
                // Its worker stopped before the upload finished (an evaluation there then found no checkpoint): nothing names
                // that checkpoint, and the next step trains again.
                log.LogWarning("run {Run} round {Round}: trained checkpoint {Manifest} was lost before its upload finished; the train phase runs again",
                    runId, round, trained.Output.Path);
                return;
            }
            failed?.Throw();
            var metrics = new Dictionary<string, double>(trained.Metrics);
            foreach (var (key, value) in upload) metrics[key] = value;
            // What the round waited for the upload beyond the phases it overlapped.
            metrics["time/checkpoint"] = metrics.GetValueOrDefault("time/checkpoint") + wait.Elapsed.TotalSeconds;
            trained = trained with { Metrics = metrics };
        }
        await Commit(trained, evaluated!, clock);
    }

    /// <summary>The replica count of the last round this activation started (null: none yet).</summary>
    private int? _replicasPlaced;

    /// <summary>
    /// A worker is placed when it activates, on the silo the GPU ledger named for it, and stays there while that lives. Before
    /// a round's first phase, each of its replicas that is not where the ledger places it now moves there: one that shared a
    /// silo with another of the run's replicas while a silo with room held none, or any whose placement changed with the
    /// replica count (a GPU silo joined or left: one that joined takes a share instead of two replicas sharing an old one).
    /// Replicas beyond a smaller count are let go. A moved model loads again from its new silo's checkpoint cache.
    /// </summary>
    private async Task PlaceReplicas(RunPlacement placement)
    {
        int replicas = S.Current!.Replicas;
        if (_replicasPlaced is { } placed && placed != replicas)
        {
            // Cut for the old count, nothing started early is taken; a replica's Retire would wait behind its generation.
            DropNextGeneration($"round {S.Current.Round} has {replicas} replicas, not {placed}");
            log.LogInformation("run {Run} round {Round}: {Replicas} replicas (the last round had {Placed}): its workers are placed again",
                runId, S.Current.Round, replicas, placed);
            for (int k = replicas; k < Math.Max(1, S.ReplicasUsed); k++) await Replica(k).Retire();
        }
        for (int k = 0; k < placement.Silos.Count; k++)
            if (await Replica(k).Silo() is var at && at != placement.Silos[k])
            {
                log.LogInformation("run {Run} round {Round}: replica {Replica} is on {At} but placed on {Placed}: it moves there",
                    runId, S.Current.Round, k, at, placement.Silos[k]);
                // Its move would wait behind a generation started early there (dropped all at once: they share a
                // cancellation, and a second call finds none left).
                DropNextGeneration($"replica {k} moves to {placement.Silos[k]}");
                // Moved, not retired: retired, a call through a silo whose location cache still named the old activation
                // activated it there again without asking placement (dotnet/orleans#9685).
                await Replica(k).MoveToPlacedSilo();
                // Asked after the move (a call that reaches the old activation is forwarded to the new one): told when the
                // move did not happen (the silo doing it did not list the new one yet); the round runs with it where it is.
                if (await Replica(k).Silo() is var now && now != placement.Silos[k])
                    log.LogWarning("run {Run} round {Round}: replica {Replica} is still on {At}, not on {Placed}: it stays there this round",
                        runId, S.Current.Round, k, now, placement.Silos[k]);
            }
        _replicasPlaced = replicas;
    }

    /// <summary>
    /// Commit: the round exists (and becomes visible to readers) once its record is durable; its trained checkpoint is
    /// durable before (PolicyWorkerGrain.CheckpointDurable).
    /// </summary>
    private async Task Commit(PhaseOutput trained, PhaseOutput evaluated, System.Diagnostics.Stopwatch clock)
    {
        await Record(s =>
        {
            s.Current!.Trained = trained;
            s.Current!.Evaluated = evaluated;
            s.Current.Seconds += clock.Elapsed.TotalSeconds;
            s.Rounds.Add(RoundCommit.Record(s.Current, s.Rounds, s.Baseline) with { Epoch = s.Epoch });
            s.Current = null;
            s.Phase = "committed";
        });
        RunTelemetry.RoundCommitted(runId, S.Rounds[^1].Round, S.Rounds[^1].Metrics);
        await ApplyRetention();
    }

    /// <summary>Shows the phase being worked on (in memory: only finished phases' outputs are worth a state write).</summary>
    private void Enter(int round, string phase)
    {
        S.Round = round;
        S.Phase = phase;
    }

    /// <summary>Records a finished phase's output; a phase that finished means a GPU silo answered again.</summary>
    private Task Record(Action<RunState> change) => gate.Persist(s =>
    {
        change(s);
        if (s.Lifecycle == RunLifecycle.WaitingForGpu) s.Lifecycle = gate.Next(s, RunTrigger.FindGpu);
        (s.FailingPhase, s.FailedAttempts) = (null, 0);
    });

    /// <summary>P_k, the policy at the start of round k: round 1 starts from the initial policy.</summary>
    private BlobRef? PolicyAt(int k) => k < 1 ? null : k == 1 ? S.Initial : new BlobRef
    {
        Path = S.Rounds[k - 2].ManifestPath, Sha256 = S.Rounds[k - 2].ManifestSha256,
    };

    /// <summary>
    /// After a round's commit is durable: marks the checkpoints the run's retention no longer keeps (a state write),
    /// then deletes them from storage. A delete that fails stays queued and is tried again after the next commit (the
    /// last round's, as the run completes); it never fails the round, which is committed already.
    /// </summary>
    private async Task ApplyRetention()
    {
        try
        {
            if (RetentionHasMarks()) await gate.Persist(s => RoundHistory.MarkForRetention(s));
            var deleted = new List<string>();
            foreach (var path in S.PendingDeletes.ToList())
            {
                int blobs = await store.DeleteCheckpointAsync(path);
                log.LogInformation("run {Run}: retention deleted checkpoint {Path} ({Blobs} blobs)", runId, path, blobs);
                deleted.Add(path);
            }
            if (deleted.Count > 0) await gate.Persist(s => s.PendingDeletes.RemoveAll(deleted.Contains));
        }
        catch (Exception e) when (e is not InconsistentStateException)
        {
            log.LogWarning(e, "run {Run}: retention could not delete old checkpoints now; it tries again after the next commit (or as the run completes)", runId);
        }
    }

    /// <summary>Whether retention has checkpoints to mark (checked before a state write, so most commits cost none).</summary>
    private bool RetentionHasMarks() =>
        OnlineAlign.Execution.Retention.CheckpointRetention.ToDelete(S.Spec!, S.Rounds, S.Superseded, S.Initial?.Path).Count > 0;
}
