using System.Diagnostics;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Storage;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// `checkpoint-write`: what a full fine-tuning train phase pays after its steps for its checkpoint, both ways a run writes
/// one: without AdamW's moments (`fresh`: a fresh optimiser every round, the default) and with them (`carried`:
/// optimizer.carry_state; before 15a9fa8 every checkpoint after a step held them). Per repeat and way: the folder's
/// write, the plan that names it timed twice (every file read back and hashed, the way before 76e0694; and with the hashes
/// the write took as it wrote, the way now), and with `--upload` its upload to a local Azurite
/// (CheckpointStore.UploadFolderAsync, then deleted). `--under` picks the file system (a tmpfs such as /dev/shm leaves the
/// disk out: the CPU's share alone).
/// </summary>
public static class CheckpointWriteBenchmark
{
    public sealed record Settings(string Model, string Device, ScalarType DType, int Repeats, string Under, bool Upload);

    public static async Task RunAsync(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = ModelShapes.ByName(s.Model);
        using var model = ModelShapes.Random(config, device, s.DType);
        long n = config.ParameterCount();
        // The moments as FlatAdamW keeps them: one flat float32 tensor each, on the host (OptimizerState.CaptureFrom).
        using var expAvg = randn(n, dtype: ScalarType.Float32);
        using var expAvgSq = rand(n, dtype: ScalarType.Float32);
        var moments = new Dictionary<string, Tensor> { ["group0.exp_avg"] = expAvg, ["group0.exp_avg_sq"] = expAvgSq };
        string root = Path.Combine(s.Under, "onlinealign-ckpt-write-" + Guid.NewGuid().ToString("N")[..8]);
        await using var azurite = s.Upload ? await AzuriteProcess.StartAsync(Path.Combine(Path.GetTempPath(), $"onlinealign-ckpt-azurite-{Guid.NewGuid():N}")) : null;
        var store = azurite is null ? null : new CheckpointStore(azurite.ConnectionString, "bench");
        report.WriteLine($"model {s.Model}: {n / 1e6:F1}M parameters, {s.DType}, {device}; {s.Repeats} repeats of each way, alternating");
        report.WriteLine("| repeat | optimizer | folder MB | write s | plan, files read back s | plan, hashes from the write s | upload s |");
        report.WriteLine("|---|---|---|---|---|---|---|");
        try
        {
            for (int i = 0; i < s.Repeats; i++)
                foreach (bool carried in new[] { false, true })
                {
                    // Each starts with no dirty pages: a 5 GB write is otherwise held back by the writeback of the one before.
                    using (var sync = Process.Start("sync")!) sync.WaitForExit();
                    string folder = Path.Combine(root, $"{i}-{carried}");
                    Directory.CreateDirectory(folder);
                    var clock = Stopwatch.StartNew();
                    // As RoundJob.Save writes a full fine-tuning checkpoint, with the hashes it takes while writing.
                    var written = new Dictionary<string, string> { [HfCheckpoint.WeightsFile] = HfCheckpoint.Save(model, folder, []) };
                    if (carried)
                        written[OnlineAlign.Modeling.Training.OptimizerState.FileName] =
                            SafeTensors.Write(Path.Combine(folder, OnlineAlign.Modeling.Training.OptimizerState.FileName), moments);
                    double write = clock.Elapsed.TotalSeconds;
                    clock.Restart();
                    var read = await CheckpointStore.PlanFolderAsync($"bench/{i}-{carried}", folder);
                    double planRead = clock.Elapsed.TotalSeconds;
                    clock.Restart();
                    var known = await CheckpointStore.PlanFolderAsync($"bench/{i}-{carried}", folder, written);
                    double planKnown = clock.Elapsed.TotalSeconds;
                    if (known.Manifest.Sha256 != read.Manifest.Sha256)
                        throw new InvalidOperationException("the hashes taken while writing differ from the files' hashes");
                    string upload = "-";
                    if (store is not null)
                    {
                        clock.Restart();
                        var manifest = await store.UploadFolderAsync(known, folder);
                        upload = clock.Elapsed.TotalSeconds.ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
                        await store.DeleteCheckpointAsync(manifest.Path);
                    }
                    double mb = Directory.EnumerateFiles(folder).Sum(f => new FileInfo(f).Length) / 1e6;
                    report.WriteLine($"| {i + 1} | {(carried ? "carried" : "fresh")} | {mb:F0} | {write:F3} | {planRead:F3} | {planKnown:F3} | {upload} |");
                    Directory.Delete(folder, recursive: true);
                }
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }
}
