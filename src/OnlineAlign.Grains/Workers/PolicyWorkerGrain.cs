using Microsoft.Extensions.Logging;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Modeling;
using OnlineAlign.Storage;
using Orleans.Placement;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A run's models on a GPU-tagged silo. Checkpoints come from blob storage (verified by sha256 and
/// cached locally by hash); tensor work runs on this activation's own thread; the new policy goes back
/// to blob storage under a fresh attempt folder, so a retried round never collides with a crashed one.
/// </summary>
[GpuSiloOnly]
[Immovable]
public sealed class PolicyWorkerGrain(CheckpointStore store, WorkerSettings settings, ILogger<PolicyWorkerGrain> log)
    : Grain, IPolicyWorkerGrain
{
    private ModelThread? _thread;
    private volatile PhaseProgress? _progress;

    private ModelThread Thread => _thread ??= new ModelThread($"model-{this.GetPrimaryKeyString()}");

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _thread?.Dispose();
        return Task.CompletedTask;
    }

    public Task<ModelPointer> Prepare(string runId, RunSpec spec, CancellationToken cancellationToken) =>
        Translated(() => PrepareCore(runId, spec, cancellationToken));

    public Task<ModelPointer> Generate(GenerationRequest request, CancellationToken cancellationToken) =>
        Translated(() => GenerateCore(request, cancellationToken));

    public Task<RoundRecord> RunRound(RoundRequest request, CancellationToken cancellationToken) =>
        Translated(() => RunRoundCore(request, cancellationToken));

    /// <summary>
    /// Failures the orchestrator must tell apart cross the grain boundary as contract exceptions (library
    /// exception types are not Orleans-serializable): diverged training, a corrupt checkpoint, unusable inputs.
    /// Anything else (a crash, a timeout, storage down) stays as it is and is retried.
    /// </summary>
    private static async Task<T> Translated<T>(Func<Task<T>> work)
    {
        try { return await work(); }
        catch (NonFiniteLossException e) { throw new TrainingDivergedException(e.Message); }
        catch (CorruptBlobException e) { throw new CheckpointCorruptException(e.Message); }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException)
        {
            throw new RunInputException(e.Message);
        }
    }

    private async Task<ModelPointer> PrepareCore(string runId, RunSpec spec, CancellationToken cancellationToken)
    {
        string output = NewScratch(runId, "prepare");
        _progress = new PhaseProgress { Round = 0, Phase = "prepare" };
        var device = Device(spec);
        await Thread.Run(() => { RoundJob.Prepare(spec, device, output); return 0; });
        var pointer = await store.WriteFolderAsync($"runs/{runId}/round-0000/{Guid.NewGuid():N}", output, cancellationToken);
        Directory.Delete(output, recursive: true);
        return new ModelPointer { Path = pointer.Path, Sha256 = pointer.Sha256 };
    }

    private async Task<ModelPointer> GenerateCore(GenerationRequest request, CancellationToken cancellationToken)
    {
        string folder = await Fetch(request.Policy, cancellationToken);
        _progress = new PhaseProgress { Round = request.Round, Phase = "generate", Total = request.PromptPositions.Count };
        var device = Device(request.Spec);
        var responses = await Thread.Run(() => RoundJob.Generate(request, folder, device));
        var shard = new GenerationShard(request.PromptPositions, responses);
        var pointer = await store.WriteOnceAsync(
            $"runs/{request.RunId}/round-{request.Round:D4}/generation/shard-{request.Shard}-{Guid.NewGuid():N}.json", shard.ToBytes(), cancellationToken);
        _progress = new PhaseProgress { Round = request.Round, Phase = "generate", Done = request.PromptPositions.Count, Total = request.PromptPositions.Count };
        return new ModelPointer { Path = pointer.Path, Sha256 = pointer.Sha256 };
    }

    private async Task<RoundRecord> RunRoundCore(RoundRequest request, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        List<IReadOnlyList<int[]>>? responses = null;
        if (request.Generations.Count > 0)
        {
            var shards = new List<GenerationShard>();
            foreach (var g in request.Generations)
                shards.Add(GenerationShard.FromBytes(await store.ReadAsync(new BlobPointer(g.Path, g.Sha256, 0), cancellationToken)));
            responses = GenerationShard.Merge(shards, request.Spec.PromptsPerRound);
        }
        var folders = new Dictionary<string, string>();
        foreach (var pointer in new[] { request.Policy, request.Initial, request.TrainedFrom, request.TrainedFromBefore })
            if (pointer is not null && !folders.ContainsKey(pointer.Sha256))
                folders[pointer.Sha256] = await Fetch(pointer, cancellationToken);

        double loadSeconds = (DateTime.UtcNow - started).TotalSeconds;
        string output = NewScratch(request.RunId, $"round-{request.Round}");
        var device = Device(request.Spec);
        int round = request.Round;
        var report = await Thread.Run(() => RoundJob.Run(request, folders, device, output,
            (phase, done, total) => _progress = new PhaseProgress { Round = round, Phase = phase, Done = done, Total = total }, responses));
        _progress = new PhaseProgress { Round = round, Phase = "checkpoint" };
        var uploadStarted = DateTime.UtcNow;
        var manifest = await store.WriteFolderAsync($"runs/{request.RunId}/round-{round:D4}/{Guid.NewGuid():N}", output, cancellationToken);
        Directory.Delete(output, recursive: true);
        report.Metrics["time/fetch_checkpoints"] = loadSeconds;
        report.Metrics["time/checkpoint_upload"] = (DateTime.UtcNow - uploadStarted).TotalSeconds;
        log.LogInformation("run {Run} round {Round} done in {Seconds:F1} s", request.RunId, round, (DateTime.UtcNow - started).TotalSeconds);
        return new RoundRecord
        {
            Round = round,
            Metrics = report.Metrics,
            Warnings = report.Warnings,
            ManifestPath = manifest.Path,
            ManifestSha256 = manifest.Sha256,
            Seconds = (DateTime.UtcNow - started).TotalSeconds,
        };
    }

    public Task<PhaseProgress?> Progress() => Task.FromResult(_progress);

    /// <summary>A checkpoint's local folder, downloaded and verified once per content hash.</summary>
    private async Task<string> Fetch(ModelPointer pointer, CancellationToken ct)
    {
        string folder = Path.Combine(settings.CacheFolder, "checkpoints", pointer.Sha256);
        if (Directory.Exists(folder)) return folder;
        // Download beside the cache and rename into place: several activations (replicas) on one silo
        // may fetch the same checkpoint at once, and a half-written folder must never look complete.
        string staging = folder + "." + Guid.NewGuid().ToString("N");
        await store.ReadFolderAsync(new BlobPointer(pointer.Path, pointer.Sha256, 0), staging, ct);
        try { Directory.Move(staging, folder); }
        catch (IOException) when (Directory.Exists(folder)) { Directory.Delete(staging, recursive: true); }
        return folder;
    }

    private string NewScratch(string runId, string what)
    {
        string folder = Path.Combine(settings.CacheFolder, "scratch", runId, $"{what}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>The silo's device, unless the spec pins one.</summary>
    private TorchSharp.torch.Device Device(RunSpec spec) =>
        DeviceSetting.Resolve(spec.Device is "auto" or "" ? settings.Device : spec.Device);
}
