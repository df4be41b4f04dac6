using Azure.Storage;
using Azure.Storage.Blobs;
using OnlineAlign.Storage;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Storage;

[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class CheckpointStoreTests
{
    [Fact]
    public async Task WriteOnceVerifiesHashesAndDetectsCorruptionAndTruncation()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "test");

        var pointer = await store.WriteOnceAsync("a/weights.bin", [1, 2, 3, 4]);
        Assert.Equal(CheckpointStore.Sha256([1, 2, 3, 4]), pointer.Sha256);
        Assert.Equal(pointer, await store.WriteOnceAsync("a/weights.bin", [1, 2, 3, 4])); // idempotent retry
        var clash = await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteOnceAsync("a/weights.bin", [9]));
        Assert.Contains("never overwritten", clash.Message);
        Assert.Equal([1, 2, 3, 4], await store.ReadAsync(pointer));

        // Tamper with the stored bytes behind the store's back: reads refuse them.
        var blob = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("test").GetBlobClient("a/weights.bin");
        await blob.UploadAsync(new BinaryData(new byte[] { 1, 2, 3, 5 }), overwrite: true);
        var corrupt = await Assert.ThrowsAsync<CorruptBlobException>(() => store.ReadAsync(pointer));
        Assert.Contains("a/weights.bin", corrupt.Message);
        await blob.UploadAsync(new BinaryData(new byte[] { 1, 2 }), overwrite: true);
        await Assert.ThrowsAsync<CorruptBlobException>(() => store.ReadAsync(pointer));
        await Assert.ThrowsAsync<FileNotFoundException>(() => store.ReadAsync(pointer with { Path = "a/missing.bin" }));
    }

    [Fact]
    public async Task FolderRoundTripsThroughAManifest()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "test");
        string source = RepositoryPaths.Fixture("hf", "llama-tiny");
        var manifest = await store.WriteFolderAsync("runs/x/round-0001/attempt", source);
        string target = RepositoryPaths.NewTempFolder("download");
        var read = await store.ReadFolderAsync(manifest, target);
        Assert.Equal(Directory.GetFiles(source).Length, read.Files.Count);
        foreach (var file in Directory.GetFiles(source))
            Assert.Equal(await File.ReadAllBytesAsync(file), await File.ReadAllBytesAsync(Path.Combine(target, Path.GetFileName(file))));
    }

    [Fact]
    public async Task APartitionedDownloadIsHashedAsItIsWrittenAndACorruptRangeIsRefused()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("test");
        // Small requests, so that a 3 MB file comes down as a checkpoint's gigabytes do: an initial range, then many
        // ranges 4 at a time. The hash is taken of the bytes as they are written: it matches only if they arrive in order.
        var transfers = new StorageTransferOptions { InitialTransferSize = 256 * 1024, MaximumTransferSize = 64 * 1024, MaximumConcurrency = 4 };
        var store = new CheckpointStore(container, transfers: transfers);
        string source = RepositoryPaths.NewTempFolder("source");
        var weights = new byte[3 * 1024 * 1024 + 123];
        new Random(7).NextBytes(weights);
        await File.WriteAllBytesAsync(Path.Combine(source, "model.safetensors"), weights);
        await File.WriteAllTextAsync(Path.Combine(source, "config.json"), "{}");
        var manifest = await store.WriteFolderAsync("runs/x/round-0001/attempt", source);

        string target = RepositoryPaths.NewTempFolder("download");
        await store.ReadFolderAsync(manifest, target);
        Assert.Equal(weights, await File.ReadAllBytesAsync(Path.Combine(target, "model.safetensors")));
        var entry = (await store.ReadManifestAsync(manifest)).Files.Single(f => f.Path.EndsWith("/model.safetensors", StringComparison.Ordinal));
        Assert.Equal(weights, await store.ReadAsync(entry, ReadAll));

        // One bit flipped in a late range behind the store's back: both reads refuse it, and no file of it is left.
        weights[^100] ^= 1;
        await container.GetBlobClient(entry.Path).UploadAsync(new BinaryData(weights), overwrite: true);
        string again = RepositoryPaths.NewTempFolder("again");
        var corrupt = await Assert.ThrowsAsync<CorruptBlobException>(() => store.ReadFolderAsync(manifest, again));
        Assert.Contains("model.safetensors", corrupt.Message);
        Assert.Equal(["config.json"], Directory.GetFiles(again).Select(Path.GetFileName));
        await Assert.ThrowsAsync<CorruptBlobException>(() => store.ReadAsync(entry, ReadAll));

        static async Task<byte[]> ReadAll(Stream stream, CancellationToken ct)
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy, ct);
            return copy.ToArray();
        }
    }

    [Fact]
    public async Task RacingWritersAgreeOnTheFirstAndUnknownHashReadsAreVerified()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "test");
        Assert.Null(await store.TryReadAsync("runs/r/done.json"));

        // Two activations finishing the same phase: the second gets the first's marker back, not its own.
        var results = await Task.WhenAll(store.WriteFirstAsync("runs/r/done.json", [1]), store.WriteFirstAsync("runs/r/done.json", [2]));
        Assert.Equal(results[0], results[1]);
        Assert.Equal(results[0], await store.WriteFirstAsync("runs/r/done.json", [3]));
        Assert.Equal(results[0], await store.TryReadAsync("runs/r/done.json"));

        var blob = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("test").GetBlobClient("runs/r/done.json");
        await blob.UploadAsync(new BinaryData(new byte[] { 7 }), overwrite: true); // no sha256 recorded any more
        var error = await Assert.ThrowsAsync<CorruptBlobException>(() => store.TryReadAsync("runs/r/done.json"));
        Assert.Contains("runs/r/done.json", error.Message);
    }

    [Fact]
    public async Task AnInterruptedFolderUploadHasNoManifestAndIsNeverReadAsACheckpoint()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "test", maxUploadBytesPerSecond: 200_000);
        using var stop = new CancellationTokenSource();
        var upload = store.WriteFolderAsync("runs/r/round-0001/train/a", RepositoryPaths.Fixture("hf", "llama-tiny"), stop.Token);
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("test");
        var written = new List<string>();
        while (written.Count == 0)
        {
            await Task.Delay(50);
            written.Clear();
            try
            {
                await foreach (var b in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "runs/r/", CancellationToken.None))
                    written.Add(b.Name);
            }
            catch (Azure.RequestFailedException e) when (e.Status == 404) { }
        }
        stop.Cancel(); // the silo dies mid-upload
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => upload);
        Assert.DoesNotContain(written, n => n.EndsWith("manifest.json", StringComparison.Ordinal));
        Assert.Null(await store.TryReadAsync("runs/r/round-0001/train/a/manifest.json"));
    }
}
