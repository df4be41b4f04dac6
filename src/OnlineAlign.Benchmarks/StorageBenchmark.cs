using System.Diagnostics;
using System.Security.Cryptography;
using OnlineAlign.Storage;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Checkpoint write and read throughput through CheckpointStore against a local Azurite (hashing and
/// verification included), next to the raw disk (write + fsync, read) and sha256 alone. Then, <c>repeats</c> times and
/// alternated, a checkpoint's download verified both ways a worker has done it: the file downloaded, then read back to
/// hash (before 2026-12-06), and hashed as it is written (CheckpointStore.ReadFolderAsync now).
/// </summary>
public static class StorageBenchmark
{
    public static async Task RunAsync(int[] sizesMb, int repeats, TextWriter report)
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
            if (repeats > 0) await CompareVerifiedReads(azurite.ConnectionString, store, manifest, root, mb, repeats, report);
        }
        Directory.Delete(root, recursive: true);
    }

    private static async Task CompareVerifiedReads(string connection, CheckpointStore store, BlobPointer manifestPointer, string root, int mb, int repeats,
        TextWriter report)
    {
        var container = new Azure.Storage.Blobs.BlobServiceClient(connection).GetBlobContainerClient("bench");
        var manifest = await store.ReadManifestAsync(manifestPointer);
        report.WriteLine($"{mb} MB checkpoint read {repeats} times each way, alternating: seconds (download, then read back to hash | hashed as written)");
        var before = new List<double>();
        var now = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            // Which way goes first alternates too: a read right after another may meet its writeback.
            foreach (bool hashedAsWritten in i % 2 == 0 ? new[] { false, true } : new[] { true, false })
            {
                // Each starts with no dirty pages: a 1 GB write is otherwise held back by the writeback of the one before.
                using (var sync = Process.Start("sync")!) await sync.WaitForExitAsync();
                string folder = Path.Combine(root, $"read-{mb}-{i}-{hashedAsWritten}");
                var clock = Stopwatch.StartNew();
                if (hashedAsWritten) await store.ReadFolderAsync(manifestPointer, folder);
                else await DownloadThenHash(container, manifest, folder);
                (hashedAsWritten ? now : before).Add(clock.Elapsed.TotalSeconds);
                Directory.Delete(folder, recursive: true);
            }
            report.WriteLine($"  repeat {i + 1} ({(i % 2 == 0 ? "read back first" : "hashed as written first")}): {before[^1]:F3} | {now[^1]:F3}");
        }
        before.Sort();
        now.Sort();
        report.WriteLine($"  median {before[before.Count / 2]:F3} | {now[now.Count / 2]:F3} (min {before[0]:F3} | {now[0]:F3})");
    }

    /// <summary>The way before: each file downloaded to its path by the blob client, then read back and hashed.</summary>
    private static async Task DownloadThenHash(Azure.Storage.Blobs.BlobContainerClient container, CheckpointManifest manifest, string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var entry in manifest.Files)
        {
            string file = Path.Combine(folder, Path.GetFileName(entry.Path));
            await container.GetBlobClient(entry.Path).DownloadToAsync(file,
                new Azure.Storage.Blobs.Models.BlobDownloadToOptions { TransferOptions = CheckpointStore.DefaultTransfers });
            await using var read = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            if (Convert.ToHexStringLower(await SHA256.HashDataAsync(read)) != entry.Sha256) throw new InvalidDataException($"{entry.Path}: hash differs");
        }
    }
}
