using System.Globalization;
using OnlineAlign.Specs;
using Grpc.Core;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Storage;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Silo.Api;

/// <summary>The onlinealign.v1.Runs gRPC service: validation, status codes, and the bridge to run grains.</summary>
public sealed class RunsService(IClusterClient cluster, CheckpointStore store, SpecLimits limits, WatchStreamLimits watchLimits,
    IHostApplicationLifetime lifetime, OnlineAlign.Grains.Runtime.FaultPoints faults, ILogger<RunsService> logger)
    : V1.Runs.RunsBase
{
    public override async Task<V1.Run> StartRun(V1.StartRunRequest request, ServerCallContext context)
    {
        string? requestId = string.IsNullOrEmpty(request.RequestId) ? null : request.RequestId;
        if (requestId is not null && (requestId.Length > 64 || !requestId.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "request_id: up to 64 characters from [A-Za-z0-9._-]"));
        if (request.ForkFrom is { } fork) return await Fork(request, requestId, fork, context.CancellationToken);
        var spec = SpecConversion.FromProto(request.Spec ?? new V1.RunSpec());
        await RequireValid(spec);
        string runId = NewRunId(spec, requestId);
        return SpecConversion.ToProto(await Call(() => cluster.GetGrain<IRunGrain>(runId).Start(spec, requestId)));
    }

    /// <summary>
    /// A run started from another run's committed round (<see cref="RunForks"/>): the parent's spec with the overrides,
    /// checked as any spec is; round 0 is the round's checkpoint, copied into the new run's storage first.
    /// </summary>
    private async Task<V1.Run> Fork(V1.StartRunRequest request, string? requestId, V1.ForkFrom fork, CancellationToken ct)
    {
        if (request.Spec is not null)
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                "spec: leave it unset with fork_from (the parent's spec is used, with fork_from.overrides)"));
        if (!RunIds.IsValid(fork.RunId) || !await cluster.GetGrain<IRunRegistryGrain>(0).Contains(fork.RunId))
            throw new RpcException(new Status(StatusCode.NotFound, $"fork_from.run_id: {NotFound(fork.RunId).Status.Detail}"));
        var parentGrain = cluster.GetGrain<IRunGrain>(fork.RunId);
        var parent = await Call(parentGrain.Get)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"fork_from.run_id: {NotFound(fork.RunId).Status.Detail}"));
        var (round, initial) = await Call(() => RunForks.Round(parentGrain, fork));
        var spec = SpecConversion.FromProto(RunForks.Spec(parent, fork));
        await RequireValid(spec);
        string runId = NewRunId(spec, requestId);
        // A retried fork (same request id) that started already answers that run, even if the parent's retention has
        // removed the round since; its grain still compares spec and lineage.
        var started = requestId is not null && await cluster.GetGrain<IRunRegistryGrain>(0).Contains(runId)
            ? (await Call(cluster.GetGrain<IRunGrain>(runId).Get))?.ForkedFrom : null;
        var kept = started is { } same && same.ParentRunId == fork.RunId && same.ParentRound == fork.Round ? same.Initial : null;
        var child = cluster.GetGrain<IRunGrain>(runId);
        return SpecConversion.ToProto(await Call(() => RunForks.CopyThenStartAsync(store, faults, runId, fork, round, initial, kept,
            copied => child.Fork(spec, requestId, new RunLineage { ParentRunId = fork.RunId, ParentRound = fork.Round, Initial = copied }),
            async () => (await child.Get())?.ForkedFrom?.Initial, ct)));
    }

    private async Task RequireValid(RunSpec spec)
    {
        var problems = await Problems(spec);
        if (problems.Count > 0)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "invalid run spec: " + string.Join("; ", problems)));
    }

    /// <summary>A retried request (same request id) names the same run; without one, every start is a new run.</summary>
    private static string NewRunId(RunSpec spec, string? requestId)
    {
        string suffix = requestId is null ? $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}"
            : "r" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(requestId)))[..16];
        return $"{Slug(spec.Name)}-{suffix}";
    }

    /// <summary>
    /// The spec's problems. Every spec is checked on a GPU silo, where its files will be read (its data roots and limits)
    /// and its memory plan must fit (a built-in model's too); its counts are checked here first, so an oversized spec
    /// never travels further. A spec that names no file is accepted without a GPU silo: it waits for one, and the
    /// worker's reservation checks its plan there.
    /// </summary>
    private async Task<List<string>> Problems(RunSpec spec)
    {
        var problems = RunSpecMapping.Problems(spec, limits, roots: null, readFiles: false);
        if (problems.Count > 0) return problems;
        try { return await AskedOfTwoChecks(check => check.Problems(spec)); }
        catch (Exception e) when (FailureClassifier.Classify(e) == FailureKind.NoGpuSilo)
        {
            if (!SpecFiles.Named(spec).Any()) return problems;
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"no GPU silo is in the cluster to read {string.Join(" and ", SpecFiles.Named(spec).Select(f => f.Field))}: start one, then try again"));
        }
        // The check's GPU silo briefly out of reach: answered as any call's (Call), not as an unknown error.
        catch (Exception e) when (FailureClassifier.IsTransient(e)) { throw Unavailable(e); }
    }

    private const int SpecCheckSpread = 16;

    /// <summary>
    /// A spec check's call, asked once more of another key when its answer is transient. Keys spread checks over GPU silos,
    /// and a key's activation can be out of reach for a call's whole timeout while others answer at once: seen once in CI, a
    /// new activation whose registration in the grain directory went unanswered for 30 s just after a GPU silo was replaced.
    /// Once more only: a cluster that fails twice is answered "unavailable, try again" (by the caller), not waited on.
    /// </summary>
    private async Task<T> AskedOfTwoChecks<T>(Func<ISpecCheckGrain, Task<T>> check)
    {
        int first = Random.Shared.Next(SpecCheckSpread);
        try { return await check(cluster.GetGrain<ISpecCheckGrain>(first)); }
        catch (Exception e) when (FailureClassifier.Classify(e) == FailureKind.Transient)
        {
            int other = (first + 1 + Random.Shared.Next(SpecCheckSpread - 1)) % SpecCheckSpread;
            logger.LogWarning("a spec check did not answer ({Kind}: {Message}); asking another", e.GetType().Name, e.Message);
            return await check(cluster.GetGrain<ISpecCheckGrain>(other));
        }
    }

    public override async Task<V1.Run> GetRun(V1.GetRunRequest request, ServerCallContext context)
    {
        var status = await Existing(request.RunId);
        var run = SpecConversion.ToProto(status);
        // The plan reads the model's config where the model lives; a cluster without a GPU silo answers without it.
        try { run.MemoryPlan = await cluster.GetGrain<ISpecCheckGrain>(Random.Shared.Next(SpecCheckSpread)).Plan(status.Spec); }
        catch (Exception e) when (FailureClassifier.Classify(e) == FailureKind.NoGpuSilo) { }
        // The plan only decorates the run's status: a status a watcher polls is neither failed nor asked again for want of it.
        catch (Exception e) when (FailureClassifier.IsTransient(e))
        {
            logger.LogWarning("run {Run}: answered without its memory plan ({Kind}: {Message})", request.RunId, e.GetType().Name, e.Message);
        }
        return run;
    }

    /// <summary>A page of runs in start order; the token is the position of the page's first run.</summary>
    public override async Task<V1.ListRunsResponse> ListRuns(V1.ListRunsRequest request, ServerCallContext context)
    {
        int size = request.PageSize == 0 ? DefaultPageSize : request.PageSize;
        if (size is < 1 or > MaxPageSize)
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"page_size must be between 1 and {MaxPageSize} (0: {DefaultPageSize}), got {request.PageSize}"));
        int start = 0;
        if (request.PageToken.Length > 0
            && !(request.PageToken.Length <= 10 && int.TryParse(request.PageToken, System.Globalization.NumberStyles.None, null, out start)))
            throw new RpcException(new Status(StatusCode.InvalidArgument, "page_token is not a token this service gave (pass next_page_token as it came)"));
        var (ids, total) = await cluster.GetGrain<IRunRegistryGrain>(0).Page(start, size);
        var statuses = await Task.WhenAll(ids.Select(id => cluster.GetGrain<IRunGrain>(id).Get()));
        var response = new V1.ListRunsResponse
        {
            TotalRuns = total,
            NextPageToken = start + ids.Count < total ? (start + ids.Count).ToString(CultureInfo.InvariantCulture) : "",
        };
        response.Runs.AddRange(statuses.OfType<RunStatus>().Select(SpecConversion.ToProto));
        return response;
    }

    private const int DefaultPageSize = 100, MaxPageSize = 1000;

    public override async Task<V1.ListRoundsResponse> ListRounds(V1.ListRoundsRequest request, ServerCallContext context)
    {
        var run = await Registered(request.RunId);
        var response = new V1.ListRoundsResponse();
        var rounds = await run.Rounds();
        // Superseded rounds (discarded by a rollback) only on request, among the others by round and attempt.
        if (request.IncludeSuperseded) rounds = [.. rounds.Concat(await run.Superseded()).OrderBy(r => r.Round).ThenBy(r => r.Epoch)];
        response.Rounds.AddRange(rounds.Select(SpecConversion.ToProto));
        if (await run.Initial() is { } initial) response.Initial = SpecConversion.ToProto(initial);
        return response;
    }

    /// <summary>
    /// A page of training steps in (round, step) order. The token is the position of the page's first step
    /// ("round.index"), so a page reads only the rounds it covers.
    /// </summary>
    public override async Task<V1.ListStepsResponse> ListSteps(V1.ListStepsRequest request, ServerCallContext context)
    {
        var rounds = await (await Registered(request.RunId)).Rounds();
        if (request.Round != 0 && rounds.All(r => r.Round != request.Round))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"round {request.Round} of run '{request.RunId}' is not committed (committed: {string.Join(", ", rounds.Select(r => r.Round))})"));
        int size = request.PageSize == 0 ? DefaultStepPageSize : request.PageSize;
        if (size is < 1 or > MaxStepPageSize)
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"page_size must be between 1 and {MaxStepPageSize} (0: {DefaultStepPageSize}), got {request.PageSize}"));
        var (fromRound, fromIndex) = StepToken(request.PageToken);
        var response = new V1.ListStepsResponse();
        // A checkpoint deleted by retention took its per-step metrics with it (the round's own metrics stay).
        foreach (var record in rounds.Where(r => (request.Round == 0 || r.Round == request.Round) && r.Round >= fromRound && !r.CheckpointDeleted))
        {
            var manifest = await store.ReadManifestAsync(new BlobPointer(record.ManifestPath, record.ManifestSha256, 0), context.CancellationToken);
            // Checkpoints written before per-step metrics were kept have no such file.
            if (manifest.Files.FirstOrDefault(f => Path.GetFileName(f.Path) == TrainingSteps.FileName) is not { } file) continue;
            string text = System.Text.Encoding.UTF8.GetString(await store.ReadAsync(file, context.CancellationToken));
            var steps = TrainingSteps.Parse(text).ToList();
            for (int i = record.Round == fromRound ? fromIndex : 0; i < steps.Count; i++)
            {
                if (response.Steps.Count == size)
                {
                    response.NextPageToken = $"{record.Round}.{i}";
                    return response;
                }
                response.Steps.Add(new V1.TrainingStep { Round = record.Round, Step = steps[i].Step, Metrics = { steps[i].Metrics } });
            }
        }
        return response;
    }

    private const int DefaultStepPageSize = 1000, MaxStepPageSize = 10_000;

    private static (int Round, int Index) StepToken(string token)
    {
        if (token.Length == 0) return (0, 0);
        var parts = token.Split('.');
        const System.Globalization.NumberStyles digits = System.Globalization.NumberStyles.None;
        if (token.Length <= 21 && parts.Length == 2 && int.TryParse(parts[0], digits, null, out int round)
            && int.TryParse(parts[1], digits, null, out int index))
            return (round, index);
        throw new RpcException(new Status(StatusCode.InvalidArgument, "page_token is not a token this service gave (pass next_page_token as it came)"));
    }

    public override async Task WatchRun(V1.WatchRunRequest request, IServerStreamWriter<V1.RunEvent> responseStream, ServerCallContext context)
    {
        await Existing(request.RunId);
        var (lease, refusal) = watchLimits.TryOpen(request.RunId, WatchStreamLimits.ClientOf(context.Peer));
        if (lease is null) throw new RpcException(new Status(StatusCode.ResourceExhausted, refusal!));
        using var _ = lease;
        // An open stream must not hold up host shutdown.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        await foreach (var e in cluster.GetGrain<IRunGrain>(request.RunId).Watch(request.FromRound, linked.Token).WithCancellation(linked.Token))
        {
            var item = new V1.RunEvent();
            if (e.Progress is { } p) item.Progress = new V1.PhaseProgress { Round = p.Round, Phase = p.Phase, Done = p.Done, Total = p.Total };
            else if (e.RoundCommitted is { } r) item.RoundCommitted = SpecConversion.ToProto(r);
            else if (e.Status is { } s) item.Run = SpecConversion.ToProto(s);
            await responseStream.WriteAsync(item, linked.Token);
        }
    }

    public override async Task<V1.Run> PauseRun(V1.RunRef request, ServerCallContext context) =>
        SpecConversion.ToProto(await Call(async () => await (await Registered(request.RunId)).Pause()));

    public override async Task<V1.Run> ResumeRun(V1.RunRef request, ServerCallContext context) =>
        SpecConversion.ToProto(await Call(async () => await (await Registered(request.RunId)).Resume()));

    public override async Task<V1.Run> CancelRun(V1.RunRef request, ServerCallContext context) =>
        SpecConversion.ToProto(await Call(async () => await (await Registered(request.RunId)).Cancel()));

    public override async Task ExportPolicy(V1.ExportPolicyRequest request, IServerStreamWriter<V1.PolicyChunk> responseStream, ServerCallContext context)
    {
        await Existing(request.RunId);
        var grain = cluster.GetGrain<IRunGrain>(request.RunId);
        var rounds = await grain.Rounds();
        // Round 0 is the initial policy (after any warm start), once it has been evaluated.
        var record = request.Round < 0 ? rounds.LastOrDefault() : request.Round == 0 ? await grain.Initial()
            : rounds.FirstOrDefault(r => r.Round == request.Round);
        // An epoch names one attempt of the round: the current one, or one a rollback superseded.
        if (request.HasEpoch && record?.Epoch != request.Epoch)
            record = (await grain.Superseded()).LastOrDefault(r => r.Round == (request.Round < 0 ? record?.Round : request.Round) && r.Epoch == request.Epoch);
        if (record is null)
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"round {request.Round}{(request.HasEpoch ? $" (epoch {request.Epoch})" : "")} of run '{request.RunId}' is not committed " +
                    $"(committed: {string.Join(", ", rounds.Select(r => r.Round))})"));
        if (record.CheckpointDeleted)
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"round {record.Round} of run '{request.RunId}': its checkpoint was removed by the run's retention (retention.keep_last); its " +
                    $"metrics remain in ListRounds"));
        try
        {
            await PolicyStream.WriteAsync(store, new BlobPointer(record.ManifestPath, record.ManifestSha256, 0), responseStream, context.CancellationToken);
        }
        catch (CorruptBlobException e) { throw new RpcException(new Status(StatusCode.DataLoss, e.Message)); }
    }

    private async Task<RunStatus> Existing(string runId) =>
        await (await Registered(runId)).Get() ?? throw NotFound(runId);

    /// <summary>
    /// The run's grain, once the registry knows the id: a made-up or mistyped id is answered from the
    /// registry and never activates (and keeps in memory) a run grain of its own.
    /// </summary>
    private async Task<IRunGrain> Registered(string runId)
    {
        if (!RunIds.IsValid(runId) || !await cluster.GetGrain<IRunRegistryGrain>(0).Contains(runId))
            throw NotFound(runId);
        return cluster.GetGrain<IRunGrain>(runId);
    }

    private static RpcException NotFound(string runId) =>
        new(new Status(StatusCode.NotFound, $"run '{(runId.Length > RunIds.MaxLength ? runId[..RunIds.MaxLength] + "..." : runId)}' does not exist"));

    private static async Task<T> Call<T>(Func<Task<T>> call)
    {
        try { return await call(); }
        catch (RunNotFoundException e) { throw new RpcException(new Status(StatusCode.NotFound, e.Message)); }
        catch (RunStateException e) { throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message)); }
        catch (RunLimitException e) { throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message)); }
        catch (ArgumentException e) { throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message)); }
        catch (Exception e) when (FailureClassifier.IsTransient(e)) { throw Unavailable(e); }
    }

    /// <summary>Storage or a silo briefly out of reach: the call may be retried as it is (with a request id, StartRun too).</summary>
    private static RpcException Unavailable(Exception e) =>
        new(new Status(StatusCode.Unavailable, $"the cluster could not complete the call now ({e.GetType().Name}: {e.Message}); try again"));

    private static string Slug(string name)
    {
        var chars = name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray();
        var slug = new string(chars).Trim('-');
        return slug.Length == 0 ? "run" : slug[..Math.Min(slug.Length, 32)];
    }
}
