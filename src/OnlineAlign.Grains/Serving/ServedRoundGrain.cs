using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Serving;
using OnlineAlign.Storage;
using Orleans.Concurrency;

namespace OnlineAlign.Grains.Serving;

/// <summary>
/// A committed round's policy on a GPU silo, served through the same code as `onlinealign serve`
/// (<see cref="SingleModelCatalog"/>: the request read against the round's tokenizer and context, generated on the model's
/// own thread by <see cref="ModelWorker"/>). Loaded from the checkpoint cache on the first request (a LoRA round as its
/// run's round-0 base + the adapter, unmerged, as <see cref="ServedModel.Load"/> loads it), let go after
/// <see cref="ServingSettings.IdleRelease"/> without requests. Reentrant: concurrent requests share the model (the worker
/// queues them), and each is bounded by <see cref="ServeLimits.MaxConcurrent"/>.
/// </summary>
[GpuSiloOnly]
[Reentrant]
public sealed class ServedRoundGrain(CheckpointCache cache, WorkerSettings settings, ServingSettings serving, MemoryLedger ledger,
    ILogger<ServedRoundGrain> log)
    : Grain, IServedRoundGrain
{
    private sealed record Loaded(ServedModel Model, ModelWorker Worker, ModelThread Thread, IDisposable Pin, SingleModelCatalog Catalog);

    private Task<Loaded>? _loading;
    private int _inFlight;
    private IGrainTimer? _idle;

    public async IAsyncEnumerable<ServeChunk> Generate(ServeCall call, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _inFlight);
        _idle?.Dispose();
        _idle = null;
        // Ended when the caller stops reading (its client went away): the model thread stops this request at its next token.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var (reply, refusal) = await Start(call, stop.Token);
            if (refusal is not null)
            {
                yield return refusal;
                yield break;
            }
            yield return new ServeChunk { Model = reply!.Model, PromptTokens = reply.PromptTokens, N = reply.N, Stream = reply.Stream,
                IncludeUsage = reply.IncludeUsage };
            await foreach (var d in reply.Deltas.WithCancellation(stop.Token))
                yield return new ServeChunk { Index = d.Index, Text = d.Text, FinishReason = d.FinishReason, Generated = d.Generated };
        }
        finally
        {
            await stop.CancelAsync();
            if (Interlocked.Decrement(ref _inFlight) == 0) WatchIdle();
        }
    }

    /// <summary>The request read and started, or its refusal (an HTTP status naming the field) as the stream's one item.</summary>
    private async Task<(ServedReply? Reply, ServeChunk? Refusal)> Start(ServeCall call, CancellationToken ct)
    {
        try
        {
            if (Volatile.Read(ref _inFlight) > serving.Limits.MaxConcurrent)
                throw new ServeException(429, null, $"the model is busy: {serving.Limits.MaxConcurrent} requests are in progress; retry later",
                    "rate_limit_error");
            var (run, round, sha) = ServedRoundKeys.Parse(this.GetPrimaryKeyString()) ?? throw new ArgumentException("not a served-round key");
            // The caller is a cluster member, yet what it names becomes a download: the checkpoint must be this key's, in this run's storage.
            if (call.Checkpoint.Sha256 != sha || !InRun(call.Checkpoint, run) || (call.Initial is { } initial && !InRun(initial, run)))
                throw new ServeException(400, "model", $"the call names a checkpoint that is not round {round} of run '{run}'");
            var loading = _loading ??= Load(call, ServedRoundKeys.Name(run, round));
            Loaded loaded;
            try { loaded = await loading; }
            catch
            {
                if (_loading == loading) _loading = null; // the next request tries again
                throw;
            }
            var body = JsonNode.Parse(call.Body) as JsonObject ?? throw new ServeException(400, null, "the request body must be a JSON object");
            return (await loaded.Catalog.StartAsync(call.Chat, body, ct), null);
        }
        catch (ServeException e) { return (null, Refusal(e.Status, e.Param, e.Message, e.Type)); }
        catch (JsonException e) { return (null, Refusal(400, null, $"the request body is not valid JSON: {e.Message}", "invalid_request_error")); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "serving {Key} failed", this.GetPrimaryKeyString());
            return (null, Refusal(500, null, $"the round could not be served: {e.GetType().Name}: {e.Message}", "server_error"));
        }
    }

    private static bool InRun(BlobRef blob, string run) =>
        blob.Path.StartsWith($"runs/{run}/", StringComparison.Ordinal) && !blob.Path.Contains("..", StringComparison.Ordinal);

    private static ServeChunk Refusal(int status, string? param, string message, string type) =>
        new() { Status = status, Param = param, Message = message, ErrorType = type };

    /// <summary>The round's checkpoint from this silo's cache (its base too, for an adapter-only round), loaded on a model thread.</summary>
    private async Task<Loaded> Load(ServeCall call, string id)
    {
        if (!serving.TryTake())
        {
            DeactivateOnIdle();
            throw new ServeException(503, "model",
                $"this silo's {serving.MaxModels} served-round slot(s) are taken (Silo:MaxServedModels); a round is let go after " +
                    $"{serving.IdleRelease.TotalSeconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture)} s without requests: retry later",
                "server_error");
        }
        IDisposable? pin = null;
        ModelThread? thread = null;
        try
        {
            pin = cache.Pin(new[] { call.Checkpoint, call.Initial }.OfType<BlobRef>().Select(c => c.Sha256));
            string folder = await cache.FetchAsync(Pointer(call.Checkpoint));
            string? baseFolder = null;
            if (PolicyCheckpoint.IsAdapterOnly(folder))
                baseFolder = await cache.FetchAsync(Pointer(call.Initial
                    ?? throw new InvalidDataException($"{id} holds only a LoRA adapter and no base was named")));
            thread = new ModelThread($"serve-{id}");
            var device = DeviceSetting.Resolve(settings.Device);
            var model = await thread.Run(() => ServedModel.Load(folder, device, id, baseFolder));
            // Its weights share the device with the runs on this silo: reserved in the silo's ledger like a run's plan peak.
            long bytes = await thread.Run(() => model.Model.parameters().Sum(p => p.NumberOfElements * p.ElementSize));
            if (settings.Budget(new RunSpec()) is { } budget
                && ledger.TryReserve(Holder, new MemoryLedger.Reservation(bytes, 0), budget) is { } refusal)
            {
                await thread.Run(() => { model.Dispose(); return 0; });
                throw new ServeException(503, "model", $"{id} ({MemoryPlan.Gib(bytes)} of weights) does not fit on this silo now: {refusal}", "server_error");
            }
            var worker = new ModelWorker(model);
            log.LogInformation("serving {Model} on this silo ({Type}, {Lora}; {Loaded} of {Max} served rounds loaded)", id, model.Model.Config.ModelType,
                baseFolder is null ? "full weights" : "base + LoRA adapter, unmerged", serving.Loaded, serving.MaxModels);
            return new Loaded(model, worker, thread, pin, new SingleModelCatalog(model, worker, serving.Limits));
        }
        catch
        {
            ledger.Release(Holder);
            pin?.Dispose();
            thread?.Dispose();
            serving.Release();
            throw;
        }
    }

    /// <summary>This round's holder name in the silo's memory ledger (run workers hold theirs by run id, which never holds '@').</summary>
    private string Holder => "serve:" + this.GetPrimaryKeyString();

    private static BlobPointer Pointer(BlobRef r) => new(r.Path, r.Sha256, 0);

    /// <summary>No request in flight: the round lets its model go after the idle time (a new request cancels this).</summary>
    private void WatchIdle()
    {
        _idle?.Dispose();
        _idle = this.RegisterGrainTimer(() =>
        {
            if (Volatile.Read(ref _inFlight) == 0)
            {
                log.LogInformation("served round {Key} idle for {Seconds} s: it lets its model go", this.GetPrimaryKeyString(),
                    serving.IdleRelease.TotalSeconds);
                DeactivateOnIdle();
            }
            return Task.CompletedTask;
        }, serving.IdleRelease, Timeout.InfiniteTimeSpan);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _idle?.Dispose();
        if (_loading is not { IsCompletedSuccessfully: true } loading) return;
        var loaded = loading.Result;
        loaded.Worker.Dispose(); // its thread ends once the requests queued on it have
        await loaded.Thread.Run(() => { loaded.Model.Dispose(); return 0; });
        loaded.Thread.Dispose();
        loaded.Pin.Dispose();
        ledger.Release(Holder);
        serving.Release();
    }
}
