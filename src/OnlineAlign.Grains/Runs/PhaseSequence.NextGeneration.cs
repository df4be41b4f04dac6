using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Grains.Workers;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The next round's generation started early: after round N's evaluation, while its trained checkpoint still uploads
/// (Silo:OverlapNextGeneration), every replica that holds that checkpoint P_{N+1} generates its shard of round N+1 with it
/// as the policy: replica 0 (the trainer, which holds it in memory and as its local copy), after a data-parallel train
/// phase each other replica that trained with it and kept its copy (it applied the same updates), and each replica that
/// copied it from the trainer for its evaluation shard (Silo:CopyTrainedCheckpoint); each is asked first
/// (IPolicyWorkerGrain.Keeps). The other replicas would read P_{N+1} from storage, where it is not whole yet: their shards
/// start with the round. Nothing of it reaches the run's state before round N commits: the results are kept
/// here, in memory, and round N+1 takes each only for a request equal to the one it would make itself (the same done-marker
/// key: policy, round, epoch, spec, shard cut). A worker stores no generation on a checkpoint still uploading before that
/// upload is durable (a replica asks replica 0), so a crash in the window leaves nothing of round N+1 in storage; and a
/// generation is a function of its request (its seeds come from seed, round, prompt and sample), so one done again after a
/// crash is bit-identical.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "a linked CTS without CancelAfter holds nothing unmanaged; it is cancelled when dropped")]
internal sealed partial class PhaseSequence
{
    /// <summary>
    /// A generation shard started before its round: its request's key, its cancellation and its output (null: its replica
    /// did not hold the checkpoint, so nothing started).
    /// </summary>
    private sealed record EarlyGeneration(string Key, GenerationRequest Request, CancellationTokenSource Stop, Task<PhaseOutput?> Output);

    /// <summary>The shards started early, by shard; they share one cancellation and are dropped together.</summary>
    private readonly Dictionary<int, EarlyGeneration> _early = [];

    /// <summary>The seconds a generation waited for its policy's upload before storing its responses (the worker's metric).</summary>
    public const string CheckpointWait = "generate/checkpoint_wait_seconds";

    /// <summary>Generation shard <paramref name="shard"/> of round <paramref name="round"/>, sampling from <paramref name="policy"/>.</summary>
    private GenerationRequest GenerationAt(int round, BlobRef policy, List<int> positions, int shard) => new()
    {
        RunId = runId, Spec = S.Spec!, Round = round, Policy = policy, PromptPositions = positions, Shard = shard, Epoch = S.Epoch, Initial = S.Initial,
    };

    /// <summary>
    /// Starts round <paramref name="round"/> + 1's generation shards on the replicas that hold the trained checkpoint, where
    /// the run will go on: not after the last round, not stopped, not when the guard would stop it at this round's commit
    /// (the commit's own check stays the one that decides; a generation not needed then is dropped).
    /// </summary>
    private void StartNextGeneration(int round, PhaseOutput trained, PhaseOutput evaluated, CancellationToken ct)
    {
        DropNextGeneration("another one starts");
        if (!settings.OverlapNextGeneration || round >= S.Spec!.Rounds || ct.IsCancellationRequested) return;
        var current = S.Current!;
        var preview = new RoundProgress
        {
            Round = round, Generations = current.Generations, Judged = current.Judged, Pairs = current.Pairs, Trained = trained, Evaluated = evaluated,
            Seconds = current.Seconds, Replicas = current.Replicas,
        };
        if (RunGuard.Of(S.Spec, S.Baseline, [.. S.Rounds, RoundCommit.Record(preview, S.Rounds, S.Baseline)]).Stop) return;
        // Cut as this round was: the next round takes a shard only if its own count (fixed at its start) is the same.
        var shards = ShardPlan.Cut(S.Spec.PromptsPerRound, current.Replicas, ShardUnits.Generation(S.Spec));
        // Only the replicas that trained (replica 0, or every data-parallel one) may hold P_{N+1}, or any that copied it from
        // the trainer for its evaluation shard (Silo:CopyTrainedCheckpoint); each is asked (Keeps).
        int holders = Math.Min(shards.Count, settings.CopyTrainedCheckpoint ? current.Replicas : DataParallelTraining.Replicas(S.Spec, current.Replicas));
        var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        for (int k = 0; k < holders; k++)
        {
            var request = GenerationAt(round + 1, trained.Output, shards[k], k);
            var output = StartEarly(round, k, request, stop.Token);
            // Observed here, so that one dropped and failed is not an unobserved task exception.
            _ = output.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            _early[k] = new EarlyGeneration(PhaseBlobs.Key("generate", request), request, stop, output);
        }
    }

    /// <summary>Shard <paramref name="k"/> started early on its replica; another replica than 0 first says whether it holds the checkpoint.</summary>
    private async Task<PhaseOutput?> StartEarly(int round, int k, GenerationRequest request, CancellationToken stop)
    {
        if (k > 0 && !await Replica(k).Keeps(request.Policy)) return null;
        log.LogInformation("run {Run} round {Round}: round {Next}'s generation (shard {Shard}) starts while checkpoint {Manifest} uploads",
            runId, round, round + 1, k, request.Policy.Path);
        return await Timed("generate", () => Replica(k).Generate(request, stop));
    }

    /// <summary>Stops and forgets the generations started early (the run stops, the round failed or another round comes).</summary>
    public void DropNextGeneration(string why)
    {
        if (_early.Count == 0) return;
        var early = _early.Values.ToList();
        _early.Clear();
        foreach (var e in early.Where(e => !e.Output.IsCompleted))
            log.LogInformation("run {Run}: round {Round}'s generation shard {Shard} started early is dropped: {Why}",
                runId, e.Request.Round, e.Request.Shard, why);
        // One cancellation for all of them (shared): cancelled once.
        early[0].Stop.Cancel();
    }

    /// <summary>
    /// The shard's output from the generation started early, when it was started for this very request (else null). The
    /// round's cancellation (a pause) stops it; one that failed, or that its replica could not start, is generated here, as
    /// the round would have.
    /// </summary>
    private Task<PhaseOutput>? TakeEarlyGeneration(GenerationRequest request, CancellationToken ct)
    {
        if (!_early.TryGetValue(request.Shard, out var early) || early.Key != PhaseBlobs.Key("generate", request)) return null;
        _early.Remove(request.Shard);
        return Take(early, ct);

        async Task<PhaseOutput> Take(EarlyGeneration early, CancellationToken ct)
        {
            using var pause = ct.Register(early.Stop.Cancel);
            try
            {
                if (await early.Output is not { } output) return await Timed("generate", () => Replica(request.Shard).Generate(request, ct));
                log.LogInformation("run {Run} round {Round}: generation shard {Shard} taken from the generation started early",
                    runId, request.Round, request.Shard);
                // Its wait for the checkpoint's upload (before it stored its responses) lay in the previous round's commit wait.
                var metrics = new Dictionary<string, double>(output.Metrics);
                metrics["time/overhead/generate"] = Math.Max(0, metrics.GetValueOrDefault("time/overhead/generate")
                    - metrics.GetValueOrDefault(CheckpointWait));
                return output with { Metrics = metrics };
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                log.LogInformation("run {Run} round {Round}: the generation shard {Shard} started early failed ({Message}); it runs again",
                    runId, request.Round, request.Shard, e.Message);
                return await Timed("generate", () => Replica(request.Shard).Generate(request, ct));
            }
        }
    }
}
