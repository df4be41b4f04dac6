using System.Text;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Storage;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Storage;

/// <summary>
/// Phase outputs are streamed to and from storage (no array of the whole output: 2 GB is not a wall), as the very bytes
/// the array path wrote, so existing outputs, done markers and hashes stay valid.
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class StreamedOutputsTests
{
    private static readonly JudgeOutcome Judged = new([[1.5, double.NaN], [0.1 + 0.2, -0.0]], [0.25, double.PositiveInfinity],
        new Dictionary<string, double> { ["judge/score_mean"] = 1.0 / 3 });

    private static async Task<byte[]> Streamed(Func<Stream, CancellationToken, Task> write)
    {
        using var stream = new MemoryStream();
        await write(stream, CancellationToken.None);
        return stream.ToArray();
    }

    [Fact]
    public async Task StreamedPhaseOutputsAreTheBytesTheArrayPathWrote()
    {
        Assert.Equal(PhaseBlobs.Bytes(Judged), await Streamed(PhaseBlobs.Writer(Judged)));
        var shard = new GenerationShard([3, 1], [[[1, 2, 3], []], [[4]]]);
        Assert.Equal(shard.ToBytes(), await Streamed(shard.WriteAsync));
    }

    [Fact]
    public async Task AStreamedBlobHasTheArrayPathsHashAndAStreamedReadChecksIt()
    {
        await using var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var store = new CheckpointStore(azurite.ConnectionString, "test");
        var streamed = await store.WriteOnceAsync("runs/r/round-0001/judge/a/scores.json", PhaseBlobs.Writer(Judged));
        var bytes = PhaseBlobs.Bytes(Judged);
        Assert.Equal(new BlobPointer("runs/r/round-0001/judge/a/scores.json", CheckpointStore.Sha256(bytes), bytes.LongLength), streamed);
        Assert.Equal(streamed, await store.WriteOnceAsync(streamed.Path, bytes)); // the same content: an idempotent rewrite

        var read = await store.ReadAsync(streamed, PhaseBlobs.Reader<JudgeOutcome>("judge output"));
        Assert.Equal(bytes, PhaseBlobs.Bytes(read));
        Assert.Equal(bytes, await store.ReadAsync(streamed));

        await Assert.ThrowsAsync<CorruptBlobException>(() => store.ReadAsync(streamed with { Sha256 = CheckpointStore.Sha256(Encoding.UTF8.GetBytes("other")) },
            PhaseBlobs.Reader<JudgeOutcome>("judge output")));
        await Assert.ThrowsAsync<FileNotFoundException>(() => store.ReadAsync(streamed with { Path = "runs/r/missing.json" }, PhaseBlobs.Reader<JudgeOutcome>("judge output")));
    }
}
