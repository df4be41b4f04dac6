using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Grains.Workers;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The next round's generation started early: after round N's evaluation, while its trained checkpoint still uploads
/// (Silo:OverlapNextGeneration), replica 0 (the trainer, which holds that checkpoint in memory and as its local copy; the
/// other replicas would read it from storage, where it is not yet) generates round N+1's shard 0 with it as the policy.
/// Nothing of it reaches the run's state before round N commits: the result is kept here, in memory, and round N+1 takes it
/// only for a request equal to the one it would make itself (the same done-marker key: policy, round, epoch, spec, shard
/// cut). The worker stores no generation on a checkpoint still uploading before that upload is durable, so a crash in the
/// window leaves nothing of round N+1 in storage; and a generation is a function of its request (its seeds come from seed,
/// round, prompt and sample), so one done again after a crash is bit-identical.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "a linked CTS without CancelAfter holds nothing unmanaged; it is cancelled when dropped")]
internal sealed partial class PhaseSequence
{
    /// <summary>A generation shard started before its round: its request's key, its cancellation and its output.</summary>
    private sealed record EarlyGeneration(string Key, GenerationRequest Request, CancellationTokenSource Stop, Task<PhaseOutput> Output);

    private EarlyGeneration? _early;

    /// <summary>The seconds a generation waited for its policy's upload before storing its responses (the worker's metric).</summary>
    public const string CheckpointWait = "generate/checkpoint_wait_seconds";

    /// <summary>Generation shard <paramref name="shard"/> of round <paramref name="round"/>, sampling from <paramref name="policy"/>.</summary>
    private GenerationRequest GenerationAt(int round, BlobRef policy, List<int> positions, int shard) => new()
    {
        RunId = runId, Spec = S.Spec!, Round = round, Policy = policy, PromptPositions = positions, Shard = shard, Epoch = S.Epoch, Initial = S.Initial,
    };

    /// <summary>
    /// Starts round <paramref name="round"/> + 1's generation shard 0 on replica 0 with the trained checkpoint, where the run
    /// will go on: not after the last round, not stopped, not when the guard would stop it at this round's commit (the
    /// commit's own check stays the one that decides; a generation not needed then is dropped).
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
        // Cut as this round was: the next round takes it only if its own count (fixed at its start) is the same.
        var positions = ShardPlan.Cut(S.Spec.PromptsPerRound, current.Replicas, ShardUnits.Generation(S.Spec))[0];
        var request = GenerationAt(round + 1, trained.Output, positions, 0);
        var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        log.LogInformation("run {Run} round {Round}: round {Next}'s generation (shard 0) starts while checkpoint {Manifest} uploads",
            runId, round, round + 1, trained.Output.Path);
        var output = Timed("generate", () => Replica(0).Generate(request, stop.Token));
        // Observed here, so that one dropped and failed is not an unobserved task exception.
        _ = output.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        _early = new EarlyGeneration(PhaseBlobs.Key("generate", request), request, stop, output);
    }

    /// <summary>Stops and forgets a generation started early (the run stops, the round failed or another round comes).</summary>
    public void DropNextGeneration(string why)
    {
        if (_early is not { } early) return;
        _early = null;
        if (!early.Output.IsCompleted)
            log.LogInformation("run {Run}: round {Round}'s generation started early is dropped: {Why}", runId, early.Request.Round, why);
        early.Stop.Cancel();
    }

    /// <summary>
    /// The shard's output from the generation started early, when it was started for this very request (else null). The
    /// round's cancellation (a pause) stops it; one that failed is generated again here, as the round would have.
    /// </summary>
    private Task<PhaseOutput>? TakeEarlyGeneration(GenerationRequest request, CancellationToken ct)
    {
        if (_early is not { } early || early.Key != PhaseBlobs.Key("generate", request)) return null;
        _early = null;
        return Take(early, ct);

        async Task<PhaseOutput> Take(EarlyGeneration early, CancellationToken ct)
        {
            using var pause = ct.Register(early.Stop.Cancel);
            try
            {
                var output = await early.Output;
                log.LogInformation("run {Run} round {Round}: generation shard 0 taken from the generation started early", runId, request.Round);
                // Its wait for the checkpoint's upload (before it stored its responses) lay in the previous round's commit wait.
                var metrics = new Dictionary<string, double>(output.Metrics);
                metrics["time/overhead/generate"] = Math.Max(0, metrics.GetValueOrDefault("time/overhead/generate")
                    - metrics.GetValueOrDefault(CheckpointWait));
                return output with { Metrics = metrics };
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                log.LogInformation("run {Run} round {Round}: the generation started early failed ({Message}); it runs again",
                    runId, request.Round, e.Message);
                return await Timed("generate", () => Replica(0).Generate(request, ct));
            }
        }
    }
}
