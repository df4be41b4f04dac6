using System.Diagnostics;
using System.Security.Cryptography;
using OnlineAlign.Storage;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Checkpoint write and read throughput through CheckpointStore against a local Azurite (hashing and
/// verification included), next to the raw disk (write + fsync, read) and sha256 alone.
/// </summary>
public static class StorageBenchmark
{
    public static async Task RunAsync(int[] sizesMb, TextWriter report)
    {
        string root = Path.Combine(Path.GetTempPath(), "onlinealign-storage-" + Guid.NewGuid().ToString("N")[..8]);
        await using var azurite = await AzuriteProcess.StartAsync(Path.Combine(root, "azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "bench");
        foreach (int mb in sizesMb)
        {
            // A checkpoint-like folder: one large weights file plus small json files.
            string folder = Path.Combine(root, $"ckpt-{mb}");
            Directory.CreateDirectory(folder);
            var weights = new byte[mb * 1_000_000L];
            new Random(mb).NextBytes(weights);
            await File.WriteAllBytesAsync(Path.Combine(folder, "model.safetensors"), weights);
            await File.WriteAllTextAsync(Path.Combine(folder, "config.json"), "{}");
            double megabytes = weights.Length / 1e6;

            var clock = Stopwatch.StartNew();
            SHA256.HashData(weights);
            double sha = megabytes / clock.Elapsed.TotalSeconds;

            clock.Restart();
            string raw = Path.Combine(root, $"raw-{mb}.bin");
            using (var file = new FileStream(raw, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                await file.WriteAsync(weights);
                file.Flush(flushToDisk: true);
            }
            double diskWrite = megabytes / clock.Elapsed.TotalSeconds;
            clock.Restart();
            await File.ReadAllBytesAsync(raw);
            double diskRead = megabytes / clock.Elapsed.TotalSeconds; // likely from the page cache, as the checkpoint read below

            clock.Restart();
            var manifest = await store.WriteFolderAsync($"bench/{mb}/{Guid.NewGuid():N}", folder);
            double write = megabytes / clock.Elapsed.TotalSeconds;
            clock.Restart();
            await store.ReadFolderAsync(manifest, Path.Combine(root, $"read-{mb}"));
            double read = megabytes / clock.Elapsed.TotalSeconds;

            report.WriteLine($"{mb,5} MB checkpoint: Azurite write {write,7:F0} MB/s, read+verify {read,7:F0} MB/s | raw disk write+fsync " +
                $"{diskWrite,7:F0} MB/s, read {diskRead,7:F0} MB/s | sha256 {sha,6:F0} MB/s");
        }
        Directory.Delete(root, recursive: true);
    }
}
