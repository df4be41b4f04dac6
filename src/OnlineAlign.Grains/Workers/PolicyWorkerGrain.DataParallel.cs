using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Grains.Runtime;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// Data-parallel training (optimizer.data_parallel). Replica 0 (the run's worker, inside its train phase) coordinates each
/// optimiser step: it asks every other replica for the gradients of its share of the step's micro-batches while computing
/// its own, fetches theirs in chunks under Orleans' message-size limit and adds them in micro-batch order, applies the
/// sum, and sends it to every other replica, which applies it too. All tensor work stays on each replica's model thread.
/// </summary>
public sealed partial class PolicyWorkerGrain
{
    private DataParallelTraining.Session? _training;   // touched on the model thread only (its tensors), held between calls
    private string? _trainingId;
    private float[]? _incoming;
    private int _trainingRound, _trainingReplica;   // of the session held, for its fault points
    private string? _trainingBase;   // its run's round-0 folder here (a LoRA base), for the trained copy it keeps

    /// <summary>
    /// The fault point inside step <paramref name="step"/>'s exchange where the step is applied on replica 0 and not yet
    /// on <paramref name="replica"/>: replica 0 reaches it after applying the sum, before sending it; another replica once
    /// the whole sum has arrived, before applying it.
    /// </summary>
    private static string ExchangePoint(int round, int step, int replica) => $"train-exchange/round-{round}/step-{step}/replica-{replica}";

    /// <summary>
    /// A data-parallel train phase's result on replica 0: its outcome and trained state, and the other replicas, which hold
    /// their trained copies until <see cref="EndReplicas"/> tells them the checkpoint's hash (or to let them go).
    /// </summary>
    private sealed record ParallelTraining(TrainOutcome Outcome, TrainedState Kept, IReadOnlyDictionary<string, string> Hashes, string Session,
        List<IPolicyWorkerGrain> Others);

    /// <summary>The coordinator's side: null where the round cannot train data-parallel (it then trains alone).</summary>
    private async Task<ParallelTraining?> TrainDataParallel(RoundJob.Context c, PhaseRequest r, PairsOutcome pairs, string output, CancellationToken ct)
    {
        var session = await Compute(() => DataParallelTraining.Open(c, pairs));
        if (session is null)
        {
            // Said, since the spec asked for more: a curriculum's later stages, LoRA dropout, or a gradient past one .NET array.
            log.LogInformation("run {Run} round {Round}: the train phase runs on replica 0 alone (RoundPhases.DataParallelizable: " +
                "no pairs, a curriculum stage after the first, LoRA dropout, or more trained parameters than one array holds)", r.RunId, r.Round);
            return null;
        }
        int replicas = r.ShardCount;
        string id = Guid.NewGuid().ToString("N");
        var others = Enumerable.Range(1, replicas - 1).Select(k => GrainFactory.GetGrain<IPolicyWorkerGrain>(ReplicaKeys.Of(r.RunId, k))).ToList();
        // time/exchange: the loop's wall time outside this replica's own tensor work (waiting for the others, the transfers).
        var loop = Stopwatch.StartNew();
        double computeBefore = _computeSeconds;
        long bytes = 0;
        bool endHere = true;   // on any failure the other replicas let their copies go here; on success once the checkpoint is hashed
        try
        {
            int count = session.Steps.Count;
            for (int step = 0; step < count; step++)
            {
                int s = step;
                var remote = others.Select((g, i) => g.TrainGradients(new TrainStepCall
                {
                    Request = r, Session = id, Step = s, Replica = i + 1, Replicas = replicas,
                }, ct)).ToList();
                var own = await Compute(() => DataParallelTraining.Backward(session, s, 0, replicas));
                var answers = await Task.WhenAll(remote);
                var sums = new double[PreferenceSteps.SumCount];
                foreach (var micro in own) PreferenceTrainer.Add(sums, micro);
                // Replica after replica, micro-batch after micro-batch: the order one replica accumulates them in.
                for (int k = 0; k < others.Count; k++)
                    for (int i = 0; i < answers[k].Sums.Count; i++)
                    {
                        var gradient = new float[answers[k].Length];
                        foreach (var (offset, n) in DataParallelPlan.Chunks(answers[k].Length))
                            DataParallelPlan.CopyValues(await others[k].GradientChunk(id, i, offset, n), gradient, offset);
                        bytes += gradient.LongLength * sizeof(float);
                        await Compute(() => { session.Steps.Add(gradient); return 0; });
                        PreferenceTrainer.Add(sums, answers[k].Sums[i]);
                    }
                var sum = await Compute(() =>
                {
                    var total = session.Steps.Sum();
                    session.Done.Add(session.Steps.Apply(s, sums));
                    return total;
                });
                // Step s is applied here and on no other replica yet: a fault test kills a silo in this half-applied state.
                await faults.ReachAsync(ExchangePoint(r.Round, s, 0), ct);
                await Task.WhenAll(others.Select(async g =>
                {
                    foreach (var (offset, n) in DataParallelPlan.Chunks(sum.LongLength))
                        await g.ApplyGradient(id, s, offset, DataParallelPlan.Bytes(sum.AsSpan((int)offset, n)), sums);
                }));
                bytes += sum.LongLength * sizeof(float) * others.Count;
                c.Progress("train", step + 1, count);
            }
            double exchange = loop.Elapsed.TotalSeconds - (_computeSeconds - computeBefore);
            var ((trained, hashes), kept) = await Compute(() => (DataParallelTraining.Finish(c, session, output), session.Keep()));
            log.LogInformation("run {Run} round {Round} trained on {Replicas} replicas: {Steps} steps, {Bytes} gradient bytes exchanged, {Seconds:F2} s waiting and exchanging",
                r.RunId, r.Round, replicas, count, bytes, exchange);
            endHere = false;
            return new ParallelTraining(trained with { Metrics = new Dictionary<string, double>(trained.Metrics) { ["time/exchange"] = exchange } }, kept, hashes, id, others);
        }
        finally
        {
            await Compute(() => { session.Dispose(); return 0; });
            if (endHere) await EndReplicas(r.RunId, id, others, keepAs: null);
        }
    }

    /// <summary>
    /// Ends a data-parallel train phase on the other replicas: each keeps its trained copy in memory as checkpoint
    /// <paramref name="keepAs"/> (the one replica 0 wrote from the same updates), or lets it go (null: the phase failed, or
    /// Silo:KeepTrainedModel is off).
    /// </summary>
    private async Task EndReplicas(string runId, string session, List<IPolicyWorkerGrain> others, string? keepAs)
    {
        foreach (var g in others)
        {
            try { await g.EndTraining(session, keepAs); }
            catch (Exception e) when (e is not OperationCanceledException) { log.LogWarning(e, "run {Run}: a replica could not end its training session", runId); }
        }
    }

    public async Task<TrainStepGradients> TrainGradients(TrainStepCall call, CancellationToken ct)
    {
        var r = call.Request;
        try
        {
            CallerChecks.Require(r.RunId, r.Spec, settings.Limits);
            _phaseCancellation = ct;
            StopIdleWatch();   // busy until EndTraining, which watches again
            if (_trainingId != call.Session)
            {
                if (_training is { } stale) await EndSession(stale, keepAs: null);   // another session's, never ended
                using var pinned = cache.Pin(new[] { r.Policy, r.Initial }.Select(b => b.Sha256));
                // Only the tokenizer and config where this replica kept the model it trained last round (EndTraining).
                var (folders, heldModels) = await FetchFolders([r.Policy, r.Initial], r.Initial, r.Policy, r.Spec, trains: true, ct);
                using var held = heldModels;
                var pairs = await store.ReadAsync(Pointer(r.Pairs!), PhaseBlobs.Reader<PairsOutcome>("pairs output"), ct);
                var context = new RoundJob.Context(r, folders, Device(r.Spec), Models, (_, _, _) => ct.ThrowIfCancellationRequested(), ct);
                _training = await Compute(() => DataParallelTraining.Open(context, pairs))
                    ?? throw new PhaseFailedException($"round {r.Round}: replica {call.Replica} cannot train this round data-parallel");
                (_trainingId, _trainingRound, _trainingReplica, _trainingBase) = (call.Session, r.Round, call.Replica, folders[r.Initial.Sha256]);
                // P_{N+1}'s tokenizer, for the copy it keeps (read now: its folder is pinned for this call only).
                _trainingTokenizer = settings.KeepTrainedModel ? context.Tokenizer : null;
                log.LogInformation("run {Run} round {Round} train replica {Replica} of {Replicas} started on this silo", r.RunId, r.Round, call.Replica, call.Replicas);
            }
            var session = _training!;
            _progress = new PhaseProgress { Round = r.Round, Phase = "train-replica", Done = call.Step, Total = session.Steps.Count };
            var sums = await Compute(() => DataParallelTraining.Backward(session, call.Step, call.Replica, call.Replicas));
            return new TrainStepGradients { Sums = sums.ToList(), Length = session.Steps.GradientLength };
        }
        catch (Exception e) when (e is not (OperationCanceledException or PhaseFailedException or RunInputException))
        {
            log.LogError(e, "run {Run} round {Round} train replica {Replica} failed", r.RunId, r.Round, call.Replica);
            throw new PhaseFailedException($"train replica {call.Replica}: {e.GetType().Name}: {e.Message}");
        }
    }

    public Task<byte[]> GradientChunk(string session, int micro, long offset, int count)
    {
        if (session != _trainingId || _training is not { } training || micro < 0 || micro >= training.Gradients.Count)
            throw new PhaseFailedException($"no gradient {micro} of training session {session} here (the replica restarted?)");
        var gradient = training.Gradients[micro];
        if (offset < 0 || count < 0 || offset + count > gradient.LongLength)
            throw new PhaseFailedException($"gradient chunk [{offset}, {offset + count}) is outside its {gradient.LongLength} values");
        return Task.FromResult(DataParallelPlan.Bytes(gradient.AsSpan((int)offset, count)));
    }

    public async Task ApplyGradient(string session, int step, long offset, byte[] chunk, double[] sums)
    {
        if (session != _trainingId || _training is not { } training)
            throw new PhaseFailedException($"no training session {session} here (the replica restarted?)");
        long length = training.Steps.GradientLength, values = chunk.LongLength / sizeof(float);
        if (offset < 0 || offset + values > length || chunk.Length % sizeof(float) != 0)
            throw new PhaseFailedException($"gradient chunk of {chunk.Length} bytes at value {offset} is outside its {length} values");
        _incoming ??= new float[length];
        DataParallelPlan.CopyValues(chunk, _incoming, offset);
        if (offset + values < length) return;
        var sum = _incoming;
        _incoming = null;
        // The whole sum is here, applied on replica 0 and not yet on this one (the coordinator waits for this call).
        await faults.ReachAsync(ExchangePoint(_trainingRound, step, _trainingReplica), _phaseCancellation);
        await Compute(() =>
        {
            training.Steps.SetSum(sum);
            training.Done.Add(training.Steps.Apply(step, sums));
            return 0;
        });
    }

    public async Task EndTraining(string session, string? keepAs)
    {
        if (session != _trainingId || _training is not { } training)
        {
            if (_training is null) WatchIdle("train");   // a session that failed to open here stopped the idle timer too
            return;
        }
        try { await EndSession(training, keepAs); }
        finally { WatchIdle("train"); }
    }

    private async Task EndSession(DataParallelTraining.Session training, string? keepAs)
    {
        (_training, _trainingId, _incoming) = (null, null, null);
        (string? baseFolder, var tokenizer) = (_trainingBase, _trainingTokenizer);
        _trainingTokenizer = null;
        bool keep = keepAs is not null && settings.KeepTrainedModel && tokenizer is not null;
        var device = await Thread.Run<TorchSharp.torch.Device?>(() =>
        {
            using (training)
            {
                if (!keep) return null;
                training.Steps.Finish();   // the moments captured, as replica 0 captured them before writing the checkpoint
                using var kept = training.Keep();
                Models.Adopt(kept, keepAs!, baseFolder);
                return kept.Model.Device;
            }
        });
        if (!keep) return;
        // A phase may run from it before replica 0's upload of that checkpoint is durable (PolicyWorkerGrain.Kept.cs).
        Kept(keepAs!, tokenizer!, device!);
        log.LogInformation("worker {Key}: trained model kept in memory as checkpoint {Sha256} (data-parallel replica {Replica})",
            this.GetPrimaryKeyString(), keepAs, _trainingReplica);
    }
}
