using OnlineAlign.Specs;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Alignment;

public class ShardedGenerationTests
{
    [Fact]
    public void TwoShardsSampleExactlyWhatOneReplicaSamples()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 4);
        var tokenizer = new ByteTokenizer();
        var prompts = new SortDigitsTask().Prompts(10, 3, "train").ToList();
        var indices = Enumerable.Range(100, 10).ToList();
        var settings = new RoundSettings { SamplesPerPrompt = 3 };

        var whole = RoundPhases.Generate(model, tokenizer, prompts, indices, settings, seed: 9, round: 2);
        var shards = ShardPlan.Cut(prompts.Count, 2, 1).Select((positions, k) => new GenerationShard(positions,
            RoundPhases.Generate(model, tokenizer, positions.Select(p => prompts[p]).ToList(), positions.Select(p => indices[p]).ToList(),
                settings with { Sampling = settings.Sampling with { BatchSize = 7 } }, seed: 9, round: 2).Select(g => g.ResponseIds.ToList()).ToList())).ToList();
        var merged = GenerationShard.Merge(shards.Select(s => GenerationShard.FromBytes(s.ToBytes())), prompts.Count);

        Assert.Equal(whole.Select(g => g.ResponseIds.ToList()), merged.Select(m => m.ToList()));
    }

    [Fact]
    public void ShardsCoverEveryPromptOnceAndMergeRefusesGapsAndOverlaps()
    {
        var shards = ShardPlan.Cut(10, 3, 1);
        Assert.Equal(Enumerable.Range(0, 10), shards.SelectMany(s => s));
        Assert.Single(ShardPlan.Cut(1, 4, 1));
        var a = new GenerationShard([0, 1], [[[1]], [[2]]]);
        Assert.Throws<InvalidDataException>(() => GenerationShard.Merge([a], 3));
        Assert.Throws<InvalidDataException>(() => GenerationShard.Merge([a, a], 2));
    }
}
