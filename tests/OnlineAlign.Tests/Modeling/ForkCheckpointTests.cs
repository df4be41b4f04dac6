using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Execution.Forks;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>A fork of a LoRA run's later round: the parent's round-0 base with the round's adapter loads alone as that round's policy.</summary>
public class ForkCheckpointTests
{
    private static readonly Tensor Ids = tensor(new long[] { 3, 4, 5, 6, 7, 8, 9 }).unsqueeze(0);

    /// <summary>llama-tiny with a drawn (non-zero) adapter, as a LoRA round would hold it.</summary>
    private static DecoderLM Adapted(ulong seed) => AdaptedLlamaTiny.Adapted(AdaptedLlamaTiny.QueryValue, seed);

    private static List<string> Names(string folder) => Directory.EnumerateFiles(folder).Select(f => Path.GetFileName(f)!).ToList();

    [Fact]
    public void ALoraRoundForkedWithItsBaseLoadsAsThatRoundAndTakesTheNextRoundsAdapter()
    {
        using var round0 = Adapted(3);
        string initial = RepositoryPaths.NewTempFolder("fork-r0");
        PolicyCheckpoint.SaveBase(round0, initial, "tiny", []);
        using var round2 = Adapted(11);
        string adapterOnly = RepositoryPaths.NewTempFolder("fork-r2");
        PolicyCheckpoint.SaveAdapter(round2, adapterOnly, "tiny", initial, []);

        string fork = RepositoryPaths.NewTempFolder("fork-child-r0");
        foreach (var (name, fromRound) in ForkFiles.Select(Names(initial), Names(adapterOnly)))
            File.Copy(Path.Combine(fromRound ? adapterOnly : initial, name), Path.Combine(fork, name));

        Assert.False(PolicyCheckpoint.IsAdapterOnly(fork));
        Assert.Equal(fork, PolicyCheckpoint.BaseOf(fork, null)); // a round-0 form: its own base
        using var loaded = PolicyCheckpoint.Load(fork, CPU);
        Assert.True(loaded.forward(Ids).equal(round2.forward(Ids)).all().item<bool>(), "the fork's round 0 is not the parent's round 2");

        // The fork's round 1 saves an adapter over the fork's round 0, which loads back over it (the base's sha256 matches).
        string next = RepositoryPaths.NewTempFolder("fork-child-r1");
        PolicyCheckpoint.SaveAdapter(loaded, next, "tiny", fork, []);
        using var reloaded = PolicyCheckpoint.Load(next, CPU, baseFolder: fork);
        Assert.True(reloaded.forward(Ids).equal(round2.forward(Ids)).all().item<bool>());
    }
}
