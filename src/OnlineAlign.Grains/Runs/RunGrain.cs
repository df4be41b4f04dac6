using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Storage;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// Drives a run's rounds: prepare the initial policy, then for each round ask the run's worker grain to
/// run it and commit its record (metrics + checkpoint manifest) to persisted state. A background loop
/// does the driving; a durable reminder and activation restart it after a silo dies, and it resumes
/// from the last committed round. Reentrant so that status, listing and watching answer while a round runs.
/// </summary>
[Reentrant]
[CollectionAgeLimit(Days = 7)]
public sealed class RunGrain(
    [PersistentState("run", "runs")] IPersistentState<RunState> state,
    ILogger<RunGrain> log) : Grain, IRunGrain, IRemindable
{
    private const string ReminderName = "drive";
    private Task? _loop;
    private PhaseProgress? _progress;

    private string RunId => this.GetPrimaryKeyString();
    private RunState S => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // A silo that died mid-round left the state "running": pick the run up again.
        if (S.State is "running" or "waiting_for_gpu") EnsureLoop();
        return Task.CompletedTask;
    }

    public async Task<RunStatus> Start(RunSpec spec)
    {
        if (S.Spec is not null) throw new RunStateException($"run '{RunId}' already exists (state {S.State})");
        var problems = RunSpecMapping.Problems(spec);
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
        S.Spec = spec;
        S.State = "running";
        S.CreatedUtc = DateTime.UtcNow;
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<IRunRegistryGrain>(0).Add(RunId);
        await this.RegisterOrUpdateReminder(ReminderName, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
        EnsureLoop();
        return Status();
    }

    public Task<RunStatus?> Get() => Task.FromResult(S.Spec is null ? null : Status());

    public Task<List<RoundRecord>> Rounds() => Task.FromResult(S.Rounds.ToList());

    public async Task<RunStatus> Pause()
    {
        Require("pause", "running", "waiting_for_gpu");
        S.State = "paused";
        await state.WriteStateAsync();
        _inflight?.Cancel(); // the phase in flight stops at its next step; its output was never recorded
        return Status();
    }

    public async Task<RunStatus> Resume()
    {
        Require("resume", "paused", "failed");
        S.State = "running";
        S.Error = null;
        await state.WriteStateAsync();
        await this.RegisterOrUpdateReminder(ReminderName, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
        EnsureLoop();
        return Status();
    }

    public async Task<RunStatus> Cancel()
    {
        Require("cancel", "pending", "running", "paused", "waiting_for_gpu", "failed");
        S.State = "cancelled";
        await state.WriteStateAsync();
        _inflight?.Cancel();
        return Status();
    }

    public async IAsyncEnumerable<RunEvent> Watch(int fromRound, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (S.Spec is null) throw new RunNotFoundException(RunId);
        int next = Math.Max(1, fromRound);
        PhaseProgress? sent = null;
        string? sentState = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var record in S.Rounds.Where(r => r.Round >= next).ToList())
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
            if (S.State != sentState)
            {
                yield return new RunEvent { Status = Status() };
                sentState = S.State;
            }
            if (S.State is not ("running" or "waiting_for_gpu" or "pending")) yield break;
            try { await Task.Delay(250, cancellationToken); }
            catch (OperationCanceledException) { yield break; }
        }
    }

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (S.State is "running" or "waiting_for_gpu") EnsureLoop();
        return Task.CompletedTask;
    }

    private void EnsureLoop()
    {
        if (_loop is null || _loop.IsCompleted) _loop = Drive();
    }

    private async Task Drive()
    {
        var worker = GrainFactory.GetGrain<IPolicyWorkerGrain>(RunId);
        int failures = 0;
        while (S.State is "running" or "waiting_for_gpu")
        {
            var progressPoll = PollProgress(worker);
            _inflight = new CancellationTokenSource();
            try
            {
                if (S.Initial is null)
                {
                    await SetPhase(0, "prepare");
                    S.Initial = (await worker.Prepare(RunId, S.Spec!, S.Epoch, _inflight.Token)).Output;
                    await state.WriteStateAsync();
                    continue;
                }
                int round = S.Rounds.Count + 1;
                if (round > S.Spec!.Rounds)
                {
                    S.State = "completed";
                    S.Phase = "";
                    await state.WriteStateAsync();
                    await UnregisterReminder();
                    break;
                }
                await RunRound(worker, round, _inflight.Token);
                failures = 0;
            }
            catch (TrainingDivergedException e)
            {
                await Stop("paused", $"{e.Message}; the last committed checkpoint (round {S.Rounds.Count}) is intact");
            }
            catch (CheckpointCorruptException e)
            {
                await RollBackPast(e.Message);
            }
            catch (RunInputException e)
            {
                await Stop("failed", $"round {S.Round}: {e.Message}");
            }
            catch (InconsistentStateException e)
            {
                // Another activation of this run wrote the state since we read it (a shutdown race): its write won
                // on the ETag. This activation must not commit anything more; drop it and let the winner drive.
                log.LogWarning(e, "run {Run}: the persisted state changed under this activation; it stops and deactivates", RunId);
                DeactivateOnIdle();
                break;
            }
            catch (OperationCanceledException) when (S.State is not ("running" or "waiting_for_gpu"))
            {
                // Paused or cancelled while a phase ran: the phase was stopped between steps and left unrecorded.
            }
            catch (OrleansException e) when (e.Message.Contains("No active nodes are compatible"))
            {
                // No GPU silo in the cluster right now: park visibly and keep trying.
                if (S.State != "waiting_for_gpu") { S.State = "waiting_for_gpu"; await state.WriteStateAsync(); }
                await Task.Delay(TimeSpan.FromSeconds(5));
            }
            catch (Exception e)
            {
                // Silo crashes, timeouts, storage outages: retry the phase from its recorded inputs, with backoff.
                failures++;
                log.LogWarning(e, "run {Run} round {Round} {Phase} attempt failed ({Failures})", RunId, S.Round, S.Phase, failures);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, failures))));
                // A GPU silo answered (this failure came later): running again; the next phase's record persists it.
                if (S.State == "waiting_for_gpu") S.State = "running";
            }
            finally
            {
                _stopPolling?.Cancel();
                await progressPoll;
            }
        }
    }

    /// <summary>
    /// One round as a state machine: generate, judge, pairs, train, evaluate, commit. Each phase's output is
    /// recorded in the persisted state the moment it exists; after a crash the round goes on from the first
    /// phase without an output, from the recorded outputs of the phases before it.
    /// </summary>
    private async Task RunRound(IPolicyWorkerGrain worker, int round, CancellationToken ct)
    {
        var p = S.Current is { } current && current.Round == round ? current : S.Current = new RoundProgress { Round = round };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        async Task Record()
        {
            p.Seconds += clock.Elapsed.TotalSeconds;
            clock.Restart();
            await state.WriteStateAsync();
        }

        if (p.Generations.Count == 0)
        {
            Enter(round, "generate");
            var shards = Shards(S.Spec!.PromptsPerRound, S.Spec.GenerationReplicas);
            var outputs = await Task.WhenAll(shards.Select((positions, k) => Timed("generate", () => Replica(worker, k).Generate(new GenerationRequest
            {
                RunId = RunId, Spec = S.Spec, Round = round, Policy = PolicyAt(round)!, PromptPositions = positions, Shard = k, Epoch = S.Epoch,
            }, ct))));
            p.Generations = outputs.ToList();
            await Record();
        }
        var request = new PhaseRequest
        {
            RunId = RunId, Spec = S.Spec!, Round = round, Epoch = S.Epoch, Policy = PolicyAt(round)!, Initial = S.Initial!,
            TrainedFrom = PolicyAt(round - 1), TrainedFromBefore = PolicyAt(round - 2), Generations = p.Generations.Select(g => g.Output).ToList(),
        };
        if (p.Judged is null)
        {
            Enter(round, "judge");
            p.Judged = await Timed("judge", () => worker.Judge(request, ct));
            await Record();
        }
        request = request with { Judged = p.Judged.Output };
        if (p.Pairs is null)
        {
            Enter(round, "pairs");
            p.Pairs = await Timed("pairs", () => worker.BuildPairs(request, ct));
            await Record();
        }
        request = request with { Pairs = p.Pairs.Output };
        if (p.Trained is null)
        {
            Enter(round, "train");
            p.Trained = await Timed("train", () => worker.Train(request, ct));
            await Record();
        }
        request = request with { Trained = p.Trained.Output };
        if (p.Evaluated is null)
        {
            Enter(round, "evaluate");
            p.Evaluated = await Timed("evaluate", () => worker.Evaluate(request, ct));
            p.Seconds += clock.Elapsed.TotalSeconds;
        }
        // Commit: the round exists once its record is persisted (a concurrent writer loses on the ETag).
        S.Rounds.Add(RoundCommit.Record(p, S.Rounds));
        S.Current = null;
        S.Phase = "committed";
        await state.WriteStateAsync();
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
        if (S.State == "waiting_for_gpu") S.State = "running";
    }

    private CancellationTokenSource? _inflight;

    private CancellationTokenSource? _stopPolling;

    /// <summary>Copies the worker's progress into this grain while a call to it is in flight, for Watch.</summary>
    private async Task PollProgress(IPolicyWorkerGrain worker)
    {
        _stopPolling = new CancellationTokenSource();
        var token = _stopPolling.Token;
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

    private async Task SetPhase(int round, string phase)
    {
        Enter(round, phase);
        await state.WriteStateAsync();
    }

    /// <summary>
    /// A checkpoint failed its hash check: never load it. Rounds from the corrupt one on are dropped and
    /// redone from the last good committed checkpoint (round 0, the initial policy, is rebuilt by prepare).
    /// </summary>
    private async Task RollBackPast(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, @"round-(\d{4})/");
        if (!match.Success)
        {
            await Stop("failed", $"round {S.Round}: {message}");
            return;
        }
        int corrupt = int.Parse(match.Groups[1].Value);
        if (corrupt == 0) S.Initial = null;
        S.Rounds = S.Rounds.Where(r => r.Round < corrupt).ToList();
        S.Current = null;
        S.Epoch++;
        S.Error = $"{message}: the checkpoint of round {corrupt} was discarded; continuing from the last good committed round ({S.Rounds.Count})";
        log.LogWarning("run {Run}: {Error}", RunId, S.Error);
        await state.WriteStateAsync();
    }

    private async Task Stop(string newState, string error)
    {
        log.LogWarning("run {Run}: {State}: {Error}", RunId, newState, error);
        S.State = newState;
        S.Error = error;
        await state.WriteStateAsync();
    }

    private async Task UnregisterReminder()
    {
        var reminder = await this.GetReminder(ReminderName);
        if (reminder is not null) await this.UnregisterReminder(reminder);
    }

    private void Require(string action, params string[] allowed)
    {
        if (S.Spec is null) throw new RunNotFoundException(RunId);
        if (!allowed.Contains(S.State)) throw new RunStateException($"cannot {action} run '{RunId}': it is {S.State}");
    }

    private RunStatus Status() => new()
    {
        RunId = RunId, Spec = S.Spec ?? new RunSpec(), State = S.State, Round = S.Round, Phase = S.Phase,
        CommittedRounds = S.Rounds.Count, Error = S.Error,
    };
}
