using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// The M0 cache lives in the folder its owner names (a silo's data folder, a run's own), is written whole (staging + rename,
/// with a manifest of the weights' SHA-256), and an entry that is torn or altered is never read: it is removed and rebuilt.
/// </summary>
public class PretrainedBaseCacheTests
{
    [Fact]
    public void ATornOrAlteredEntryIsIgnoredAndRebuiltAndOtherSettingsGetTheirOwnEntry()
    {
        string cache = RepositoryPaths.NewTempFolder("m0-cache");
        var task = new SortDigitsTask();
        var settings = new WarmStart.Settings(BatchSize: 8, Demonstrations: 40, PretrainSteps: 4);
        DecoderLM Load(WarmStart.Settings s) => PretrainedBaseCache.Load(cache, BuiltinModels.Tiny, "tiny", task, s, 2, TorchSharp.torch.CPU, default);
        using var first = Load(settings);
        string entry = Assert.Single(Directory.GetDirectories(cache));
        Assert.Equal(PretrainedBaseCache.EntryFolder(cache, PretrainedBaseCache.Key(BuiltinModels.Tiny, "tiny", task, settings, 2)), entry);
        Assert.True(File.Exists(Path.Combine(entry, PretrainedBaseCache.ManifestFile)));
        string weights = Path.Combine(entry, HfCheckpoint.WeightsFile);
        byte[] whole = File.ReadAllBytes(weights);

        void AssertSameWeights(DecoderLM model)
        {
            var expected = first.state_dict();
            foreach (var (name, t) in model.state_dict()) Assert.True(t.equal(expected[name]).all().item<bool>(), name);
        }
        // A torn write (half the file) and an altered one (same length, the last weight's bytes changed: it still parses).
        byte[] altered = (byte[])whole.Clone();
        for (int i = 1; i <= 4; i++) altered[^i] ^= 0x5A;
        foreach (var damaged in new[] { whole[..(whole.Length / 2)], altered })
        {
            File.WriteAllBytes(weights, damaged);
            using (var again = Load(settings)) AssertSameWeights(again);
            Assert.Equal(whole, File.ReadAllBytes(weights)); // rebuilt whole in its place
        }
        // A crash before the rename leaves only a staging folder, which is never an entry: the entry is read, nothing rebuilt.
        Directory.CreateDirectory(entry + ".deadbeef.partial");
        File.WriteAllBytes(Path.Combine(entry + ".deadbeef.partial", HfCheckpoint.WeightsFile), whole[..100]);
        DateTime written = File.GetLastWriteTimeUtc(weights);
        using (var cached = Load(settings)) AssertSameWeights(cached);
        Assert.Equal(written, File.GetLastWriteTimeUtc(weights));

        // Different settings never share an entry.
        using (var other = Load(settings with { PretrainSteps = 5 })) Assert.NotNull(other);
        using (var more = Load(settings with { LearningRate = 1e-3 })) Assert.NotNull(more);
        Assert.Equal(3, Directory.GetDirectories(cache).Count(d => !d.EndsWith(".partial", StringComparison.Ordinal)));
    }
}
