using System.Diagnostics;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Storage;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// `checkpoint-write`: what a full fine-tuning train phase pays after its steps, before it can hand the checkpoint on: the
/// folder's write (the weights, and AdamW's two float32 moments as `optimizer.carry_state` keeps them) and the hashing that
/// names it (CheckpointStore.PlanFolderAsync), the plan timed both ways: every file read back and hashed, and with the
/// hashes the write took as it wrote (the large files not read again). `--under` picks the file system (a tmpfs such as
/// /dev/shm leaves the disk out: the CPU's share alone).
/// </summary>
public static class CheckpointWriteBenchmark
{
    public sealed record Settings(string Model, string Device, ScalarType DType, int Repeats, string Under);

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
        report.WriteLine($"model {s.Model}: {n / 1e6:F1}M parameters, {s.DType}, {device}; with AdamW moments (float32); {s.Repeats} repeats");
        report.WriteLine("| repeat | folder MB | write s | plan, files read and hashed s | plan, hashes from the write s |");
        report.WriteLine("|---|---|---|---|---|");
        for (int i = 0; i < s.Repeats; i++)
        {
            // Each repeat starts with no dirty pages: a 5 GB write is otherwise held back by the writeback of the one before.
            using (var sync = System.Diagnostics.Process.Start("sync")) sync.WaitForExit();
            string folder = Path.Combine(s.Under, "onlinealign-ckpt-write-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(folder);
            try
            {
                var clock = Stopwatch.StartNew();
                // As RoundJob.Save writes a full fine-tuning checkpoint, with the hashes it takes while writing.
                var written = new Dictionary<string, string>
                {
                    [HfCheckpoint.WeightsFile] = HfCheckpoint.Save(model, folder, []),
                    [OnlineAlign.Modeling.Training.OptimizerState.FileName] =
                        SafeTensors.Write(Path.Combine(folder, OnlineAlign.Modeling.Training.OptimizerState.FileName), moments),
                };
                double write = clock.Elapsed.TotalSeconds;
                clock.Restart();
                var read = await CheckpointStore.PlanFolderAsync("bench", folder);
                double planRead = clock.Elapsed.TotalSeconds;
                clock.Restart();
                var known = await CheckpointStore.PlanFolderAsync("bench", folder, written);
                double planKnown = clock.Elapsed.TotalSeconds;
                if (known.Manifest.Sha256 != read.Manifest.Sha256)
                    throw new InvalidOperationException("the hashes taken while writing differ from the files' hashes");
                double mb = Directory.EnumerateFiles(folder).Sum(f => new FileInfo(f).Length) / 1e6;
                report.WriteLine($"| {i + 1} | {mb:F0} | {write:F3} | {planRead:F3} | {planKnown:F3} |");
            }
            finally { Directory.Delete(folder, recursive: true); }
        }
    }
}
