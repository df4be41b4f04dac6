using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

public class GenerationConsistencyTests
{
    private static DecoderLM Fixture() => HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));

    [Fact]
    public void KvCacheDecodingEqualsFullRecomputation()
    {
        using var model = Fixture();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 5, 17, 99, 3, 250, 41, 7, 8, 123, 64 }).unsqueeze(0);
        var full = model.forward(ids);                                    // [1, 10, V]

        using var cache = new KvCache(model.Config, 1, 10, model.DType, model.Device);
        var prefill = model.Logits(model.Hidden(ids.narrow(1, 0, 4), cache: cache));
        var steps = new List<Tensor> { prefill };
        for (int t = 4; t < 10; t++)
            steps.Add(model.Logits(model.Hidden(ids.narrow(1, t, 1), cache: cache)));
        var incremental = cat(steps, 1);
        double maxDiff = (full - incremental).abs().max().item<float>();
        Assert.True(maxDiff <= 1e-5, $"max difference {maxDiff}");
    }

    [Fact]
    public void LeftPaddedBatchGivesEachSequenceItsOwnResult()
    {
        using var model = Fixture();
        int[][] prompts = [[12, 44, 200, 7, 9, 31, 2], [150, 3], [77, 78, 79, 80]];
        var options = new SamplingOptions { MaxNewTokens = 12, Temperature = 0 };
        var batched = TextGenerator.Generate(model, prompts, options);
        for (int i = 0; i < prompts.Length; i++)
        {
            var alone = TextGenerator.Generate(model, [prompts[i]], options)[0];
            Assert.Equal(alone.Tokens, batched[i].Tokens);
            for (int t = 0; t < alone.LogProbs.Length; t++)
                Assert.True(Math.Abs(alone.LogProbs[t] - batched[i].LogProbs[t]) < 1e-4);
        }
    }

    [Fact]
    public void GeneratedLogProbsAgreeWithScoringTheSameResponse()
    {
        using var model = Fixture();
        int[] prompt = [10, 20, 30];
        var gen = TextGenerator.Generate(model, [prompt], new SamplingOptions { MaxNewTokens = 8, Temperature = 0.9, TopP = 0.9, Seed = 3 })[0];
        var score = ResponseLogProbs.Score(model, [new PromptResponse(prompt, gen.Tokens)])[0];
        for (int t = 0; t < gen.Tokens.Length; t++)
            Assert.True(Math.Abs(gen.LogProbs[t] - score.TokenLogProbs[t]) < 1e-4);
    }

    [Fact]
    public void SamplingIsReproducibleWithASeedAndStopsAtEos()
    {
        using var model = Fixture();
        int[][] prompts = [[1, 2, 3], [4, 5, 6, 7]];
        var options = new SamplingOptions { MaxNewTokens = 20, Temperature = 1.0, TopK = 50, Seed = 42, StopTokenIds = [2, 7, 9, 11, 13] };
        var a = TextGenerator.Generate(model, prompts, options);
        var b = TextGenerator.Generate(model, prompts, options);
        var c = TextGenerator.Generate(model, prompts, options with { Seed = 43 });
        Assert.Equal(a.Select(x => x.Tokens), b.Select(x => x.Tokens));
        Assert.NotEqual(a.SelectMany(x => x.Tokens), c.SelectMany(x => x.Tokens));
        foreach (var r in a.Where(r => r.Stopped))
            Assert.Contains(r.Tokens[^1], options.StopTokenIds);
    }

    [Fact]
    public void SampledRowDependsOnlyOnItsPromptAndSeed()
    {
        using var model = Fixture();
        int[][] prompts = [[1, 2, 3], [40, 41], [7, 8, 9, 10, 11]];
        ulong[] seeds = [100, 200, 300];
        var options = new SamplingOptions { MaxNewTokens = 10, Temperature = 0.8, TopP = 0.95 };
        var together = TextGenerator.Generate(model, prompts, options, seeds);
        var reordered = TextGenerator.Generate(model, [prompts[2], prompts[0]], options, [seeds[2], seeds[0]]);
        Assert.Equal(together[2].Tokens, reordered[0].Tokens);
        Assert.Equal(together[0].Tokens, reordered[1].Tokens);
    }

    [Fact]
    public void SamplingFollowsTheModelDistribution()
    {
        // With one new token and many seeds, token frequencies approach softmax(logits).
        using var model = Fixture();
        int[] prompt = [5, 6, 7];
        using var noGrad = no_grad();
        var probs = model.forward(tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0))[0, -1].softmax(-1).data<float>().ToArray();
        int top = Array.IndexOf(probs, probs.Max());
        int n = 2000;
        var samples = TextGenerator.Generate(model, Enumerable.Repeat(prompt, n).ToList(),
            new SamplingOptions { MaxNewTokens = 1, Temperature = 1.0 }, Enumerable.Range(0, n).Select(i => (ulong)i).ToList());
        double frequency = samples.Count(s => s.Tokens[0] == top) / (double)n;
        Assert.InRange(frequency, probs[top] - 0.04, probs[top] + 0.04);
    }

    [Fact]
    public void NoTensorLeaksOver500GenerateAndTrainSteps()
    {
        using var model = Fixture();
        var optimizer = optim.AdamW(model.parameters(), lr: 1e-3);
        int[] prompt = [3, 4, 5];
        long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long? baseline = null;
        for (int step = 0; step < 500; step++)
        {
            TextGenerator.Generate(model, [prompt], new SamplingOptions { MaxNewTokens = 2, Temperature = 1, Seed = (ulong)step });
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var (lp, mask) = ResponseLogProbs.Forward(model, [new PromptResponse(prompt, [6, 7])]);
                var loss = -(lp.sum() / mask.sum());
                loss.backward();
                optimizer.step();
            }
            if (step == 10) baseline = Live();
        }
        Assert.Equal(baseline, Live());
    }
}
