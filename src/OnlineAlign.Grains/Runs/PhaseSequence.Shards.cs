using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Phases;
using Microsoft.Extensions.Logging;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The phases spread over a round's replicas: each works on a shard of the prompts cut on the unsharded batch
/// boundaries, into its own blob, and replica 0 merges them (every item exactly once) and computes the metrics once.
/// </summary>
internal sealed partial class PhaseSequence
{
    /// <summary>
    /// Generation, split into contiguous prompt shards cut on the batch boundaries, one per replica, run side by side;
    /// `generation_replicas: 0` is one replica per GPU silo active at the round's start. The split never changes what is sampled.
    /// </summary>
    private async Task<List<PhaseOutput>> Generate(int round, CancellationToken ct)
    {
        var shards = ShardPlan.Cut(S.Spec!.PromptsPerRound, S.Current!.Replicas, ShardUnits.Generation(S.Spec));
        var outputs = await Task.WhenAll(shards.Select((positions, k) => GenerationAt(round, PolicyAt(round)!, positions, k)).Select((request, k) =>
            TakeEarlyGeneration(request, ct) ?? Timed("generate", () => Replica(k).Generate(request, ct))));
        DropNextGeneration($"round {round} was cut into other shards");
        return outputs.Select(o => o with { Metrics = ShardMetrics.WithStorage(o.Metrics, "generate", null) }).ToList();
    }

    /// <summary>
    /// The judge phase over the round's replicas: each scores a shard of the prompts (cut on the judges' batch boundaries)
    /// into its own blob, then replica 0 merges them (every prompt exactly once) and computes the metrics from the merged
    /// scores. A round too small to cut is judged whole on replica 0, as it always was; so is a remote judge's (replica 0
    /// asks the endpoint, with the round's cache of answers, under the endpoint's own concurrency limit).
    /// </summary>
    private async Task<PhaseOutput> Judge(PhaseRequest request, CancellationToken ct)
    {
        int shards = S.Spec!.Judge.Kind == "remote" ? 1 : ShardPlan.Cut(S.Spec.PromptsPerRound, S.Current!.Replicas, ShardUnits.Judge(S.Spec)).Count;
        return await Sharded("judge", request, shards, (replica, r) => replica.JudgeShard(r, ct), r => Worker.Judge(r, ct));
    }

    /// <summary>
    /// Evaluation over the replicas: each evaluates a shard of the held-out prompts (cut on the KL scorer's chunks), then
    /// replica 0 computes the metrics from the merged per-prompt results. Built-in tasks have spec.eval_prompts of them.
    /// </summary>
    /// <param name="durable">the trained checkpoint's upload, where it may still run (null: durable): the trainer's own worker
    /// evaluates from its local copy at once, and so does a data-parallel replica that kept its trained copy in memory; the
    /// other replicas copy the checkpoint from the trainer (Silo:CopyTrainedCheckpoint), or else read it from storage, so
    /// their shards wait for the upload</param>
    /// <remarks>shards/evaluate/checkpoint_wait_seconds: the longest a shard waited for that upload before it was sent;
    /// shards/evaluate/checkpoint_copy_seconds: the longest a shard's replica took to copy it from the trainer instead.</remarks>
    private async Task<PhaseOutput> Evaluate(PhaseRequest request, int replicas, CancellationToken ct, Task<Dictionary<string, double>?>? durable = null)
    {
        int prompts = string.IsNullOrEmpty(request.Spec.Prompts.JsonlPath) ? request.Spec.Prompts.EvalPrompts : 0;
        int shards = ShardPlan.Cut(prompts, replicas, ShardUnits.Evaluation).Count;
        double waited = 0;
        double? copied = null;
        var evaluated = await Sharded("evaluate", request, shards, async (replica, r) =>
        {
            if (r.Shard > 0 && durable is not null && !await replica.Keeps(request.Trained!))
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                if (await CopiedFromTrainer(replica, request.Trained!, durable, ct))
                    copied = Math.Max(copied ?? 0, clock.Elapsed.TotalSeconds);   // the run grain's turns never interleave
                else
                {
                    var uploaded = await durable;
                    waited = Math.Max(waited, clock.Elapsed.TotalSeconds);
                    if (uploaded is null)
                        throw new TransientPhaseException($"round {r.Round}: the trained checkpoint {request.Trained!.Path} was lost before its upload finished");
                }
            }
            return await replica.EvaluateShard(r, ct);
        }, r => Worker.Evaluate(r, ct));
        if (shards > 1 && durable is not null) evaluated.Metrics["shards/evaluate/checkpoint_wait_seconds"] = waited;
        if (copied is { } seconds) evaluated.Metrics["shards/evaluate/checkpoint_copy_seconds"] = seconds;
        return evaluated;
    }

    /// <summary>
    /// Whether <paramref name="replica"/> copied the trained checkpoint from the trainer (replica 0) while it still uploads.
    /// Not where the setting is off or the upload has ended (storage has it then); a copy that fails (the trainer's silo
    /// died, a piece did not match its hash) is logged and the shard waits for the upload as before, which tells a lost
    /// checkpoint from a durable one.
    /// </summary>
    private async Task<bool> CopiedFromTrainer(IPolicyWorkerGrain replica, BlobRef trained, Task durable, CancellationToken ct)
    {
        if (!settings.CopyTrainedCheckpoint || durable.IsCompleted) return false;
        try { return await replica.ReceiveCheckpoint(trained, Worker, ct) is not null; }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            log.LogWarning("run {Run}: a replica could not copy checkpoint {Manifest} from the trainer ({Error}: {Message}); it reads it from storage once durable",
                runId, trained.Path, e.GetType().Name, e.Message);
            return false;
        }
    }

    /// <summary>
    /// A phase whose worker cuts its items: shard k of n on replica k, side by side, each into its own blob; then replica 0
    /// merges them (every item exactly once) and computes the phase's metrics once. One shard: the phase runs whole on replica 0.
    /// </summary>
    private async Task<PhaseOutput> Sharded(string phase, PhaseRequest request, int shards,
        Func<IPolicyWorkerGrain, PhaseRequest, Task<PhaseOutput>> shard, Func<PhaseRequest, Task<PhaseOutput>> merge)
    {
        if (shards <= 1)
        {
            var whole = await Timed(phase, () => merge(request));
            var metrics = ShardMetrics.WithThroughput(whole.Metrics, phase, [whole.Metrics], $"time/{phase}");
            return whole with { Metrics = ShardMetrics.WithStorage(metrics, phase, null) };
        }
        var outputs = await Task.WhenAll(Enumerable.Range(0, shards)
            .Select(k => Timed(phase, () => shard(Replica(k), request with { Shard = k, ShardCount = shards }))));
        var merged = await Timed(phase, () => merge(request with { Shards = outputs.Select(o => o.Output).ToList() }));
        var shardMetrics = outputs.Select(o => o.Metrics).ToList();
        var combined = ShardMetrics.WithThroughput(ShardMetrics.Combine(phase, merged.Metrics, shardMetrics), phase, shardMetrics, $"time/{phase}-shard");
        return merged with { Metrics = ShardMetrics.WithStorage(combined, phase, merged.Metrics) };
    }

    private long? _planBytes;

    /// <summary>
    /// Places the run's replicas on the GPU silos by load before a step uses them (the ledger keeps the silos of replicas
    /// already placed): <paramref name="replicas"/>, or (0) one per GPU silo the run's plan fits on. A run whose plan fits
    /// nowhere waits (waiting_for_gpu). The caller hands the placement to <see cref="Use"/>.
    /// </summary>
    private async Task<RunPlacement> Place(int replicas)
    {
        _planBytes ??= await grains.GetGrain<ISpecCheckGrain>(0).PlanPeak(S.Spec!);
        var decision = await grains.GetGrain<IGpuLedgerGrain>(0).Place(runId, _planBytes.Value, replicas, placeableGpuSilos());
        if (decision.Placement is not { } placement) throw new WaitingForGpuException(decision.Wait ?? "no GPU silo has room for the run");
        // Memory freed (or a silo joined): the run is running again from here, not only once its next phase output is recorded.
        if (S.Lifecycle == RunLifecycle.WaitingForGpu) await transition(RunTrigger.FindGpu, null);
        return placement;
    }

    /// <summary>
    /// The calls the caller makes next carry the placement to the silo that activates a worker (the request context).
    /// Not async on purpose: a request context set inside an async method is gone when it returns to its caller.
    /// </summary>
    /// <returns>the replicas placed</returns>
    private int Use(RunPlacement placement)
    {
        PlacementHint = Placement.GpuSiloPlacementFilterDirector.Hint(runId, placement.Silos);
        Orleans.Runtime.RequestContext.Set(Placement.GpuSiloPlacementFilterDirector.HintKey, PlacementHint);
        return placement.Silos.Count;
    }

    /// <summary>The request context entry of the run's last placement (null: not placed yet), for calls made outside a step.</summary>
    public string? PlacementHint { get; private set; }

    /// <summary>
    /// A phase call, with what it cost beyond the worker's own time (messages, queueing, serialization) as
    /// time/overhead/{phase}: the worker reports its compute and storage time, the caller sees the whole call.
    /// </summary>
    private static async Task<PhaseOutput> Timed(string phase, Func<Task<PhaseOutput>> call)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var output = await call();
        double inWorker = output.Metrics.Where(kv => RoundCommit.IsPhaseTime(kv.Key)).Sum(kv => kv.Value);
        return output with
        {
            Metrics = new Dictionary<string, double>(output.Metrics) { [$"time/overhead/{phase}"] = Math.Max(0, clock.Elapsed.TotalSeconds - inWorker) },
        };
    }
}
