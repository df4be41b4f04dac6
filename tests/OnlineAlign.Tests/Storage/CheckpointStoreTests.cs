using Azure.Storage.Blobs;
using OnlineAlign.Storage;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Storage;

[Collection("processes")]
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
}
