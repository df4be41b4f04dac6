using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Judging;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Storage;
using Orleans.Placement;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A run's models on a GPU-tagged silo. Each phase reads its inputs from blob storage (checkpoints are
/// verified by sha256 and cached locally by hash), runs its tensor work on this activation's own thread,
/// and writes its output under a fresh attempt folder, then a "done" marker named by the hash of its
/// inputs. A phase asked again (the orchestrator crashed before recording it, or two activations raced)
/// returns the marker's output instead of running twice; the first marker written wins.
/// </summary>
[GpuSiloOnly]
[Immovable]
public sealed partial class PolicyWorkerGrain(CheckpointStore store, WorkerSettings settings, CheckpointCache cache, ComputeGate gate, FaultPoints faults,
    MemoryLedger ledger,
    ILogger<PolicyWorkerGrain> log)
    : Grain, IPolicyWorkerGrain
{
    private ModelThread? _thread;
    private ModelCache? _models;
    private volatile PhaseProgress? _progress;

    private ModelThread Thread => _thread ??= new ModelThread($"model-{this.GetPrimaryKeyString()}");

    /// <summary>The run this worker serves and its replica index in it (0: the run's own worker), from its key "run" or "run#genK".</summary>
    private (string Run, int Replica) RunAndReplica => GpuSiloPlacementFilterDirector.RunAndReplica(this.GetPrimaryKeyString());

    private ModelCache Models => _models ??= new ModelCache(settings.PretrainedCache)
    {
        // Each checkpoint read from its folder into memory: the log shows what a worker did not have to read back.
        Loaded = (sha256, folder) => log.LogInformation("worker {Key}: checkpoint {Sha256} read into memory from {Folder}",
            this.GetPrimaryKeyString(), sha256, folder),
        OptimizerLoaded = (sha256, file) => log.LogInformation("worker {Key}: optimizer state of checkpoint {Sha256} read into memory from {File}",
            this.GetPrimaryKeyString(), sha256, file),
    };

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        ledger.Release(this.GetPrimaryKeyString()); // its models go with it
        await UploadsFinished(cancellationToken);   // a checkpoint uploading behind the phases is not given up
        foreach (var sha in _copied.Keys.ToList()) Uncopy(sha);   // copies from the trainer: evictable again
        if (_thread is null) return;
        // Models hold tensors created on the model thread: release them there.
        var models = _models;
        var training = _training;
        await _thread.Run(() => { training?.Dispose(); models?.Dispose(); return 0; });
        _thread.Dispose();
    }

    public Task<PhaseProgress?> Progress() => Task.FromResult(_progress);

    public Task Retire()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public Task MoveToPlacedSilo()
    {
        // Migrated rather than deactivated: Orleans registers the new activation (placed through the GPU filter with this
        // call's placement) before this one ends, so a caller whose location cache still names this silo is forwarded there.
        // Deactivated, such a call activated the worker here again without asking placement (dotnet/orleans#9685), and the
        // replicas stayed stacked. Where placement picks this silo after all, nothing happens.
        MigrateOnIdle();
        return Task.CompletedTask;
    }

    public Task<string> Silo() => Task.FromResult(GrainContext.Address.SiloAddress!.ToParsableString());

    public Task<PhaseOutput> Prepare(string runId, RunSpec spec, int epoch, CancellationToken ct) => Budgeted(spec, "prepare", ct, ct =>
        Once(runId, spec, 0, "prepare", PhaseBlobs.Key("prepare", new { spec, epoch }), ct, async prefix =>
        {
            string output = NewScratch(runId, "prepare");
            _progress = new PhaseProgress { Round = 0, Phase = "prepare" };
            var total = Stopwatch.StartNew();
            _computeSeconds = 0;
            var hashes = await Compute(() => RoundJob.Prepare(spec, Device(spec), output, Models.PretrainedCache, ct));
            var manifest = await UploadCheckpoint(prefix, output, "prepare/round-0", ct, hashes);
            // M0 stored beside round 0: the judges on every other silo read it from there instead of pretraining it again
            // (and so judge with the very same M0 whatever their thread count).
            var beforeWarmStart = RoundJob.BeforeWarmStartFolder(spec, Models.PretrainedCache) is { } m0
                ? await UploadCheckpoint($"{prefix}/m0", CopyToScratch(m0, runId), "prepare/m0", ct) : null;
            if (beforeWarmStart is not null) log.LogInformation("run {Run}: M0 stored as checkpoint {Manifest}", runId, beforeWarmStart.Path);
            return Output(manifest, new() { ["time/prepare"] = _computeSeconds, ["time/checkpoint"] = total.Elapsed.TotalSeconds - _computeSeconds })
                with { BeforeWarmStart = beforeWarmStart is null ? null : new BlobRef { Path = beforeWarmStart.Path, Sha256 = beforeWarmStart.Sha256 } };
        }));

    public Task<PhaseOutput> Generate(GenerationRequest r, CancellationToken ct) => Budgeted(r.Spec, "generate", ct, ct =>
        Once(r.RunId, r.Spec, r.Round, "generate", PhaseBlobs.Key("generate", r), ct, async prefix =>
        {
            var total = Stopwatch.StartNew();
            using var pinned = cache.Pin(new[] { r.Policy, r.Initial }.OfType<BlobRef>().Select(c => c.Sha256));
            var (folders, heldModels) = await FetchFolders([r.Policy, r.Initial], r.Initial, r.Policy, r.Spec, trains: false, ct);
            using var held = heldModels;
            string folder = folders[r.Policy.Sha256];
            string? initialFolder = r.Initial is null ? null : folders[r.Initial.Sha256];
            _progress = new PhaseProgress { Round = r.Round, Phase = "generate", Total = r.PromptPositions.Count };
            log.LogInformation("run {Run} round {Round} generate shard {Shard} started on this silo", r.RunId, r.Round, r.Shard);
            var device = Device(r.Spec);
            var models = Models;
            _computeSeconds = 0;
            var responses = await Compute(() => RoundJob.Generate(r, folder, initialFolder, device, models, ct));
            long tokens = responses.Sum(group => group.Sum(response => (long)response.Length));
            RunTelemetry.Generated(r.RunId, tokens);
            // Its policy still uploading (here, or on replica 0 for a trained model kept or a checkpoint copied here): nothing stored before.
            double waited = await PolicyDurableBeforeStoring(r.RunId, r.Policy, ct);
            var blob = await store.WriteOnceAsync($"{prefix}/shard-{r.Shard}.json", new GenerationShard(r.PromptPositions, responses).WriteAsync, ct);
            _progress = new PhaseProgress { Round = r.Round, Phase = "generate", Done = r.PromptPositions.Count, Total = r.PromptPositions.Count };
            var metrics = new Dictionary<string, double>
            {
                ["time/generate"] = _computeSeconds, ["time/storage"] = total.Elapsed.TotalSeconds - _computeSeconds - waited, ["shards/generate/tokens"] = tokens,
            };
            if (waited > 0) metrics[PhaseSequence.CheckpointWait] = waited;
            return Output(blob, metrics);
        }));

    public Task<PhaseOutput> Judge(PhaseRequest r, CancellationToken ct) => Budgeted(r.Spec, "judge", ct, ct => Phase(r, "judge", ct,
        [r.Policy, r.TrainedFrom, r.TrainedFromBefore, r.Initial, RoundJob.JudgesWithBeforeWarmStart(r.Spec, r) ? r.BeforeWarmStart : null], async (c, prefix) =>
        {
            var responses = await Responses(r, ct);
            var (remote, remoteMetrics) = r.Spec.Judge.Kind == "remote" ? await RemoteJudge(r, c, responses, ct) : (null, []);
            var shards = await ReadShards<JudgeScores>(r, "judge shard", ct);
            var judged = await Compute(() => RoundJob.Judge(c, responses, shards, remote));
            foreach (var (name, value) in remoteMetrics) judged.Metrics[name] = value;
            // The judging this call did itself (a merge of shards judged nothing): for shards/judge/tokens_per_second.
            if (shards is null) judged.Metrics["shards/judge/tokens"] = JudgedTokens(responses, null);
            return (await store.WriteOnceAsync($"{prefix}/scores.json", PhaseBlobs.Writer(judged), ct), judged.Metrics);
        }));

    public Task<PhaseOutput> JudgeShard(PhaseRequest r, CancellationToken ct) => Budgeted(r.Spec, "judge", ct, ct => Phase(r, "judge-shard", ct,
        [r.Policy, r.TrainedFrom, r.TrainedFromBefore, r.Initial, RoundJob.JudgesWithBeforeWarmStart(r.Spec, r) ? r.BeforeWarmStart : null], async (c, prefix) =>
        {
            await ShardStarted(r, "judge", ct);
            var responses = await Responses(r, ct);
            var scores = await Compute(() => RoundJob.JudgeShard(c, responses, r.Shard, r.ShardCount));
            return (await store.WriteOnceAsync($"{prefix}/shard-{r.Shard}.json", PhaseBlobs.Writer(scores), ct),
                new Dictionary<string, double> { ["shards/judge/tokens"] = JudgedTokens(responses, ShardPlan.Cut(r.Spec.PromptsPerRound, r.ShardCount,
                    ShardUnits.Judge(r.Spec)).ElementAtOrDefault(r.Shard) ?? []) });
        }));

    /// <summary>The response tokens judged: of the prompts at <paramref name="positions"/> (null: all of them).</summary>
    private static double JudgedTokens(List<IReadOnlyList<int[]>> responses, IReadOnlyList<int>? positions) =>
        (positions ?? Enumerable.Range(0, responses.Count).ToList()).Where(p => p < responses.Count).Sum(p => responses[p].Sum(x => (double)x.Length));

    public Task<PhaseOutput> BuildPairs(PhaseRequest r, CancellationToken ct) => Budgeted(r.Spec, "pairs", ct, ct => Phase(r, "pairs", ct,
        [r.Policy, r.Reference, r.Initial], async (c, prefix) =>
        {
            var responses = await Responses(r, ct);
            var judged = await store.ReadAsync(Pointer(r.Judged!), PhaseBlobs.Reader<JudgeOutcome>("judge output"), ct);
            var shards = await ReadShards<PairShard>(r, "pairs shard", ct);
            var pairs = await Compute(() => RoundJob.Pairs(c, responses, judged, shards));
            return (await store.WriteOnceAsync($"{prefix}/pairs.json", PhaseBlobs.Writer(pairs), ct), pairs.Metrics);
        }));

    public Task<PhaseOutput> PairsShard(PhaseRequest r, CancellationToken ct) => Budgeted(r.Spec, "pairs", ct, ct => Phase(r, "pairs-shard", ct,
        [r.Policy, r.Reference, r.Initial], async (c, prefix) =>
        {
            await ShardStarted(r, "pairs", ct);
            var responses = await Responses(r, ct);
            var judged = await store.ReadAsync(Pointer(r.Judged!), PhaseBlobs.Reader<JudgeOutcome>("judge output"), ct);
            var shard = await Compute(() => RoundJob.PairsShard(c, responses, judged, r.Shard, r.ShardCount));
            return (await store.WriteOnceAsync($"{prefix}/shard-{r.Shard}.json", PhaseBlobs.Writer(shard), ct), new Dictionary<string, double>());
        }));

    public Task<PhaseOutput> Train(PhaseRequest r, CancellationToken ct) =>
        // Asked again while the checkpoint it trained is still uploading (the evaluation after it failed and the round is
        // retried): the same checkpoint, not a second one.
        Uploading(PhaseBlobs.Key("train", r)) is { } uploading ? Task.FromResult(uploading) : Budgeted(r.Spec, "train", ct, ct => Phase(r, "train", ct,
        [r.Policy, r.Initial], async (c, prefix) =>
        {
            var pairs = await store.ReadAsync(Pointer(r.Pairs!), PhaseBlobs.Reader<PairsOutcome>("pairs output"), ct);
            string output = NewScratch(r.RunId, $"round-{r.Round}");
            // Across the replicas where PhaseSequence asked for it (ShardCount > 1) and the round allows it bit-identically.
            var parallel = r.ShardCount > 1 ? await TrainDataParallel(c, r, pairs, output, ct) : null;
            // The model trained here (and its carried moments): kept in memory once its checkpoint has its hash.
            var (trained, kept, hashes) = parallel is { } dp ? (dp.Outcome, dp.Kept, dp.Hashes) : await Compute(() => RoundJob.TrainKeeping(c, pairs, output));
            string? keptAs = null;
            try
            {
                long trainedTokens = r.Spec.Optimizer.Epochs * pairs.Examples.Sum(p => (long)p.Prompt.Length * 2 + p.Chosen.Length + p.Rejected.Length);
                RunTelemetry.Trained(r.RunId, trainedTokens);
                _progress = new PhaseProgress { Round = r.Round, Phase = "checkpoint" };
                var clock = Stopwatch.StartNew();
                // Overlapped: hashed here, uploaded once this call has returned (UploadBehind); the round commits when it is durable.
                var manifest = settings.OverlapUpload ? await UploadBehind(prefix, output, hashes, r.Round, ct)
                    : await UploadCheckpoint(prefix, output, $"train/round-{r.Round}", ct, hashes);
                double upload = clock.Elapsed.TotalSeconds;
                if (settings.KeepTrainedModel)
                {
                    string baseFolder = c.Folder(r.Initial);
                    await Compute(() => { Models.Adopt(kept, manifest.Sha256, baseFolder); return 0; });
                    keptAs = manifest.Sha256;
                    log.LogInformation("run {Run} round {Round}: trained model kept in memory as checkpoint {Manifest} ({Sha256})",
                        r.RunId, r.Round, manifest.Path, manifest.Sha256);
                }
                log.LogInformation("run {Run} round {Round} trained and checkpointed", r.RunId, r.Round);
                var metrics = new Dictionary<string, double>(trained.Metrics) { ["time/checkpoint"] = upload, ["shards/train/tokens"] = trainedTokens };
                // Overlapped, the upload's own time comes with its durability (CheckpointDurable); here it was all of time/checkpoint.
                if (!settings.OverlapUpload) metrics["checkpoint/upload_seconds"] = upload;
                return (manifest, metrics);
            }
            finally
            {
                // Its copy is in the model cache (or the upload failed): the trained model's tensors go, on the model thread.
                await Thread.Run(() => { kept.Dispose(); return 0; });
                // The other replicas applied the same updates: they keep their trained copies under the same hash too.
                if (parallel is not null) await EndReplicas(r.RunId, parallel.Session, parallel.Others, keptAs);
            }
        }));

    public Task<PhaseOutput> Evaluate(PhaseRequest r, CancellationToken ct) => Budgeted(r.Spec, "evaluate", ct, ct => Phase(r, "evaluate", ct,
        [r.Trained, r.Initial, r.Reference, r.Policy], async (c, prefix) =>
        {
            var shards = await ReadShards<EvalShard>(r, "evaluation shard", ct);
            var metrics = await Compute(() => RoundJob.Evaluate(c, shards));
            log.LogInformation("run {Run} round {Round} done", r.RunId, r.Round);
            return (await store.WriteOnceAsync($"{prefix}/metrics.json", PhaseBlobs.Bytes(metrics), ct), metrics);
        }));

    /// <summary>
    /// judge.kind remote: the round's judgements asked over HTTP (not on the model thread: it waits on the network), with the
    /// round's cache in storage; the wall time counts as the phase's compute time (time/judge).
    /// </summary>
    private async Task<(JudgeResult, Dictionary<string, double>)> RemoteJudge(PhaseRequest r, RoundJob.Context c, IReadOnlyList<IReadOnlyList<int[]>> responses,
        CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var judge = r.Spec.Judge;
        var groups = RoundJob.Groups(c, responses);
        var requests = RemoteJudgements.Requests(groups, judge.RemoteTemplate(), judge.Judgements, r.Spec.Seed, r.Round);
        var client = new RemoteJudgeClient(judge, RemoteJudgeKey.Read(judge, settings.DataRoots), allowedHosts: settings.Limits.RemoteJudgeAllowedHosts,
            proxy: settings.Limits.RemoteJudgeProxy);
        _progress = new PhaseProgress { Round = r.Round, Phase = "judge", Total = requests.Count };
        var outcome = await RemoteJudging.RunAsync(requests, client, new BlobJudgementCache(store, r.RunId, r.Round, judge), judge.Concurrency,
            async done =>
            {
                _progress = new PhaseProgress { Round = r.Round, Phase = "judge", Done = done, Total = requests.Count };
                await faults.ReachAsync($"judge/round-{r.Round}/remote-batch", ct);
            }, ct);
        log.LogInformation("run {Run} round {Round} remote judge {Endpoint}: {Cached} judgements from the cache, {Requests} requests ({Retries} retried)",
            r.RunId, r.Round, judge.Endpoint, outcome.Cached, outcome.Requests, outcome.Retries);
        _computeSeconds += clock.Elapsed.TotalSeconds;
        return (RemoteJudgements.Scores(groups, judge.Judgements, outcome.Answers), new()
        {
            ["judge/remote_cached"] = outcome.Cached, ["judge/remote_requests"] = outcome.Requests, ["judge/remote_retries"] = outcome.Retries,
        });
    }

    public Task<PhaseOutput> EvaluateShard(PhaseRequest r, CancellationToken ct) => Budgeted(r.Spec, "evaluate", ct, ct => Phase(r, "evaluate-shard", ct,
        [r.Trained, r.Initial, r.Reference, r.Policy], async (c, prefix) =>
        {
            await ShardStarted(r, "evaluate", ct);
            var shard = await Compute(() => RoundJob.EvaluateShard(c, r.Shard, r.ShardCount));
            return (await store.WriteOnceAsync($"{prefix}/shard-{r.Shard}.json", PhaseBlobs.Writer(shard), ct), new Dictionary<string, double>());
        }));

    /// <summary>
    /// A shard of a sharded phase begins here: logged (which silo ran which shard), and a fault point of its own,
    /// "{phase}-shard/round-{R}/shard-{K}", so a test can hold one shard on one silo while the others go on.
    /// </summary>
    private async Task ShardStarted(PhaseRequest r, string phase, CancellationToken ct)
    {
        log.LogInformation("run {Run} round {Round} {Phase} shard {Shard} started on this silo", r.RunId, r.Round, phase, r.Shard);
        await faults.ReachAsync($"{phase}-shard/round-{r.Round}/shard-{r.Shard}", ct);
    }

    /// <summary>A sharded phase's shard outputs, in shard order (null: the phase was not sharded).</summary>
    private async Task<List<T>?> ReadShards<T>(PhaseRequest r, string what, CancellationToken ct)
    {
        if (r.Shards.Count == 0) return null;
        // Side by side (storage round trips overlap), kept in shard order.
        return [.. await Task.WhenAll(r.Shards.Select(shard => store.ReadAsync(Pointer(shard), PhaseBlobs.Reader<T>(what), ct)))];
    }

    /// <summary>A phase attempt within the spec's wall-time budget (budget.max_phase_seconds): see <see cref="PhaseDeadline"/>.</summary>
    private async Task<PhaseOutput> Budgeted(RunSpec spec, string phase, CancellationToken ct, Func<CancellationToken, Task<PhaseOutput>> attempt)
    {
        StopIdleWatch();
        try { return await PhaseDeadline.Run(phase, spec.Budget.MaxPhaseSeconds, ct, attempt); }
        finally { WatchIdle(phase); }
    }

    private IGrainTimer? _idle;

    /// <summary>
    /// A run's extra replica (key "run#genK") left idle for Silo:ReplicaIdleSeconds (between rounds: while the run's own
    /// worker trains) lets its models go by deactivating, which frees its device memory here; its next call loads them
    /// again from the checkpoint cache, on the same silo (the run's placement). The run's own worker keeps its models.
    /// A test fires the release at once after a given phase (fault point "replica-idle/{phase}/replica-K", see
    /// <see cref="FaultPoints.Fires"/>) instead of waiting out the idle time.
    /// </summary>
    private void WatchIdle(string phase)
    {
        int replica = RunAndReplica.Replica;
        if (settings.ReplicaIdleRelease <= TimeSpan.Zero || replica == 0) return;
        if (faults.Fires($"replica-idle/{phase}/replica-{replica}"))
        {
            LetModelsGo($"its idle release was fired after its {phase} call");
            return;
        }
        IGrainTimer? timer = null;
        timer = this.RegisterGrainTimer(() =>
        {
            // A tick runs between calls, never inside one (the timer does not interleave), but one already due when the next
            // phase began would still come once that phase returned: only the timer armed last may release, and never while
            // a data-parallel train session is open (its exchange calls go through no phase, and deactivating would lose it).
            if (!ReferenceEquals(timer, _idle) || _training is not null) return Task.CompletedTask;
            LetModelsGo($"idle for {settings.ReplicaIdleRelease.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)} s");
            return Task.CompletedTask;
        }, settings.ReplicaIdleRelease, Timeout.InfiniteTimeSpan);
        _idle = timer;
    }

    /// <summary>Stops the idle timer while this replica works outside a phase call (a data-parallel train session).</summary>
    private void StopIdleWatch()
    {
        _idle?.Dispose();
        _idle = null;
    }

    private void LetModelsGo(string why)
    {
        log.LogInformation("replica {Key} lets its models go: {Why}", this.GetPrimaryKeyString(), why);
        DeactivateOnIdle();
    }

    /// <summary>
    /// The shape every round phase shares: fetch the checkpoints it names, run its work, time the compute
    /// (time/{phase}) apart from storage (time/storage; the train phase's upload is time/checkpoint).
    /// </summary>
    private Task<PhaseOutput> Phase(PhaseRequest r, string phase, CancellationToken ct, BlobRef?[] checkpoints,
        Func<RoundJob.Context, string, Task<(BlobPointer Blob, Dictionary<string, double> Metrics)>> work) =>
        Once(r.RunId, r.Spec, r.Round, phase, PhaseBlobs.Key(phase, r), ct, async prefix =>
        {
            var total = Stopwatch.StartNew();
            using var pinned = cache.Pin(checkpoints.OfType<BlobRef>().Select(c => c.Sha256)); // not evicted while this phase reads them
            var (folders, heldModels) = await FetchFolders(checkpoints, r.Initial, r.Policy, r.Spec, trains: phase == "train", ct);
            using var held = heldModels;
            _progress = new PhaseProgress { Round = r.Round, Phase = phase };
            log.LogInformation("run {Run} round {Round} {Phase} started on this silo", r.RunId, r.Round, phase);
            int round = r.Round;
            var context = new RoundJob.Context(r, folders, Device(r.Spec), Models, (p, done, all) =>
            {
                // Checked between steps on the model thread: a cancelled call (pause, cancel, timeout) stops here.
                ct.ThrowIfCancellationRequested();
                _progress = new PhaseProgress { Round = round, Phase = p, Done = done, Total = all };
                if (done > 0) faults.Reach($"{p}/round-{round}/step", ct);
            }, ct);
            _computeSeconds = 0;
            var (blob, metrics) = await work(context, prefix);
            var result = new Dictionary<string, double>(metrics) { [$"time/{phase}"] = _computeSeconds };
            result["time/storage"] = total.Elapsed.TotalSeconds - _computeSeconds - result.GetValueOrDefault("time/checkpoint")
                - result.GetValueOrDefault("time/exchange");   // data-parallel training's wait for and exchange with the other replicas
            return Output(blob, result);
        });

    /// <summary>Runs tensor work on the model thread, adding its wall time to the current phase's compute time.</summary>
    private async Task<T> Compute<T>(Func<T> job) => await gate.RunAsync(async () =>
    {
        // Timed once the device is this phase's: waiting for a slot is neither compute nor storage.
        var clock = Stopwatch.StartNew();
        // Every model file the job opens must be under this silo's data roots or its own cache, checked on the open handle
        // (a spec's folder was checked by path before the job; a link swapped since then is refused here).
        try { return await Thread.Run(() => { using (settings.ConfineReads()) return job(); }); }
        finally { _computeSeconds += clock.Elapsed.TotalSeconds; }
    }, _phaseCancellation);

    /// <summary>The cancellation of the phase in flight (one at a time per activation), for the compute gate's wait.</summary>
    private CancellationToken _phaseCancellation;

    private double _computeSeconds; // one call at a time: the grain is not reentrant (only Progress interleaves)

    /// <summary>This silo's local disk as a full-disk error names it: the silo and its cache folder, so a user knows which disk to free.</summary>
    private string LocalDisk => $"local disk of silo {RuntimeIdentity} (cache folder {settings.CacheFolder})";

    /// <summary>Runs a phase at most once per input key: an existing "done" marker is the answer.</summary>
    private async Task<PhaseOutput> Once(string runId, RunSpec spec, int round, string phase, string key, CancellationToken ct,
        Func<string, Task<PhaseOutput>> work)
    {
        string folder = $"runs/{runId}/round-{round:D4}/{phase}"; // a name only: used as a path once the checks below passed
        try
        {
            // The caller is a cluster member, yet what it hands over becomes paths and allocations: checked here too.
            CallerChecks.Require(runId, spec, settings.Limits);
            string marker = $"{folder}/done-{key}.json";
            var markerClock = Stopwatch.StartNew();
            var done = await store.TryReadAsync(marker, ct);
            if (done is not null)
            {
                log.LogInformation("run {Run} round {Round} {Phase}: already done, reusing {Marker}", runId, round, phase, marker);
                return PhaseBlobs.Output(done);
            }
            double lookup = markerClock.Elapsed.TotalSeconds;
            await faults.ReachAsync($"{phase}/round-{round}/start", ct);
            _phaseCancellation = ct;
            using var span = RunTelemetry.StartPhase(runId, round, phase, RuntimeIdentity);
            // The spec's files are checked where they are read: this silo's data roots and limits, not the API silo's.
            SpecFiles.Require(spec, settings.DataRoots, settings.Limits);
            Reserve(spec);
            _behind = null;
            var output = await work($"{folder}/{Guid.NewGuid():N}");
            if (output.Metrics.TryGetValue($"time/{phase}", out double seconds)) RunTelemetry.PhaseFinished(runId, phase, seconds);
            // A checkpoint still to upload: its marker is written once it is durable, never before (a marker is reused as done).
            if (_behind is { } behind) return StartUpload(runId, key, marker, behind, output, lookup);
            markerClock.Restart();
            var recorded = PhaseBlobs.Output(await store.WriteFirstAsync(marker, PhaseBlobs.Bytes(output), ct));
            // The marker's own reads and writes are storage time too (the marker cannot hold its own write time).
            var metrics = new Dictionary<string, double>(recorded.Metrics);
            metrics["time/storage"] = metrics.GetValueOrDefault("time/storage") + lookup + markerClock.Elapsed.TotalSeconds;
            // Beside "started": a phase that never says it finished is told apart from an answer that never reached its caller.
            log.LogInformation("run {Run} round {Round} {Phase} finished on this silo", runId, round, phase);
            return recorded with { Metrics = metrics };
        }
        // Failures the orchestrator must tell apart cross the grain boundary as contract exceptions (library
        // exception types need not be Orleans-serializable), each with what went wrong and where.
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            log.LogInformation("run {Run} round {Round} {Phase} cancelled", runId, round, phase);
            throw;
        }
        catch (Exception e) when (FailureClassifier.DiskFull(e) is { } where)
        {
            string at = where == "local disk" ? LocalDisk : where;
            log.LogError(e, "run {Run} round {Round} {Phase}: disk full ({Where})", runId, round, phase, at);
            throw FailureClassifier.DiskFullFailure(e, at, $"round {round} {phase}'s output {folder}");
        }
        catch (NonFiniteLossException e) { throw new TrainingDivergedException($"round {round}: {e.Message}"); }
        catch (CorruptBlobException e) { throw new CheckpointCorruptException(e.Message); }
        catch (Exception e) when (e is SpecFileException or ArgumentException or InvalidDataException or FileNotFoundException
                                       or DirectoryNotFoundException or NotSupportedException)
        {
            throw new RunInputException(e.Message);
        }
        catch (Exception e) when (FailureClassifier.IsTransient(e))
        {
            throw new TransientPhaseException($"{e.GetType().Name}: {e.Message}");
        }
        catch (Exception e) when (e is not (TrainingDivergedException or CheckpointCorruptException or RunInputException or PhaseFailedException))
        {
            // Anything else (CUDA out of memory, a bug, a judge that cannot be read) would most likely fail the same
            // way again: the orchestrator counts such attempts and fails the run after a few.
            log.LogError(e, "run {Run} round {Round} {Phase} failed", runId, round, phase);
            throw new PhaseFailedException($"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            Scratch.RemoveLeftovers(runId);
            _behind?.Pin.Dispose();   // planned, but the phase failed before its upload started
            _behind = null;
        }
    }

    private bool _reserved;

    /// <summary>
    /// Reserves the run's plan peak in this silo's ledger before the first phase loads a model (held until the worker
    /// deactivates). A run that does not fit beside the others here fails the attempt, naming their reservation, as a transient
    /// failure: the cluster's placement made room for it, and a run that stopped may still be letting its models go here.
    /// </summary>
    private void Reserve(RunSpec spec)
    {
        if (_reserved || settings.Budget(spec) is not { } budget) return;
        if (RunSpecMapping.Plan(spec, budget.Cpu, budget.Bytes) is not { } plan || RunSpecMapping.HostPlan(spec, budget.Cpu) is not { } host) return;
        if (ledger.TryReserve(this.GetPrimaryKeyString(), new MemoryLedger.Reservation(plan.Peak, host.Peak), budget) is { } refusal)
            throw new TransientPhaseException(refusal);
        _reserved = true;
    }

    /// <summary>This call's scratch folders (one call at a time: the grain is not reentrant).</summary>
    private ScratchFolders Scratch => _scratchFolders ??= new ScratchFolders(settings.CacheFolder, log);
    private ScratchFolders? _scratchFolders;

    private async Task<List<IReadOnlyList<int[]>>> Responses(PhaseRequest r, CancellationToken ct)
    {
        var shards = await Task.WhenAll(r.Generations.Select(g => store.ReadAsync(Pointer(g), GenerationShard.ReadAsync, ct)));
        return GenerationShard.Merge([.. shards], r.Spec.PromptsPerRound);
    }

    /// <summary>
    /// Uploads a checkpoint folder, then keeps it as this silo's cached copy (its content is the manifest's).
    /// <paramref name="written"/>: the sha256 its writer took of some of its files (not read again).
    /// </summary>
    private async Task<BlobPointer> UploadCheckpoint(string prefix, string folder, string point, CancellationToken ct,
        IReadOnlyDictionary<string, string>? written = null)
    {
        var manifest = await Upload(await CheckpointStore.PlanFolderAsync(prefix, folder, written, ct), folder, point, ct);
        cache.Adopt(folder, manifest);
        return manifest;
    }

    /// <summary>A planned checkpoint's upload, with its fault points "{point}/upload" and "{point}/uploaded-one-file" (a kill between files).</summary>
    private async Task<BlobPointer> Upload(FolderPlan plan, string folder, string point, CancellationToken ct)
    {
        await faults.ReachAsync($"{point}/upload", ct);
        bool first = true;
        return await store.UploadFolderAsync(plan, folder, ct, async () =>
        {
            if (first) await faults.ReachAsync($"{point}/uploaded-one-file", ct);
            first = false;
        });
    }

    /// <summary>
    /// A checkpoint's verified local folder, downloaded once per content hash. One this silo's cache does not hold is downloaded only once it is whole in
    /// storage: a phase is sent a checkpoint still uploading only where its replica holds it (kept from training, copied from
    /// the trainer), but a new activation of that replica (an idle release ended the one that held it) knows nothing of it,
    /// and a download before the manifest is there fails as a missing input would, which fails the run.
    /// </summary>
    private async Task<string> Fetch(BlobRef pointer, CancellationToken ct)
    {
        if (!cache.Holds(pointer.Sha256) && !await Durable(pointer, ct)) await TrainerSaysDurable(RunAndReplica.Run, pointer, ct);
        return await cache.FetchAsync(Pointer(pointer), ct);
    }

    private static BlobPointer Pointer(BlobRef r) => new(r.Path, r.Sha256, 0);

    private static PhaseOutput Output(BlobPointer blob, Dictionary<string, double> metrics) =>
        new() { Output = new BlobRef { Path = blob.Path, Sha256 = blob.Sha256 }, Metrics = metrics };

    private string NewScratch(string runId, string what) => Scratch.Create(RunIds.Require(runId), what);

    /// <summary>A copy of a folder this worker must keep (an upload moves its folder into the checkpoint cache).</summary>
    private string CopyToScratch(string folder, string runId)
    {
        string copy = NewScratch(runId, "copy");
        foreach (string file in Directory.EnumerateFiles(folder)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        return copy;
    }

    /// <summary>The silo's device, unless the spec pins one.</summary>
    private TorchSharp.torch.Device Device(RunSpec spec) =>
        DeviceSetting.Resolve(spec.Device is "auto" or "" ? settings.Device : spec.Device);
}
