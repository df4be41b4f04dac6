using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// The round engine (shared prompt prefill, finished rows leaving the batch) gives every row exactly what the plain
/// static-batch engine gives it: the same tokens, the same stops, the same log-probs.
/// </summary>
public class RoundEngineTests
{
    [Theory]
    [InlineData(1.0, 0.9, 64, 0)]    // sampling, top-p, batches of 64 rows
    [InlineData(0.7, 1.0, 13, 0)]    // batches that split a prompt's samples
    [InlineData(0.0, 1.0, 64, 0)]    // greedy: a prompt's samples are all the same
    [InlineData(1.0, 1.0, 64, 30)]   // a judge's shape: a 30-token rubric before every prompt, prefilled once
    [InlineData(1.0, 1.0, 16, 9)]    // a short common prefix, batches that split it
    public void ARoundShapedWorkloadGivesTheReferenceEnginesTokensForEveryRow(double temperature, double topP, int maxBatch, int commonPrefix)
    {
        using var model = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        var random = new Random(11);
        // 12 prompts of 3 to 20 tokens, 6 samples each (adjacent, as a round orders them), distinct seeds.
        var rubric = Enumerable.Range(0, commonPrefix).Select(_ => random.Next(3, 250)).ToArray();
        var distinct = Enumerable.Range(0, 12).Select(_ => rubric.Concat(Enumerable.Range(0, random.Next(3, 21)).Select(_ => random.Next(3, 250))).ToArray()).ToList();
        var prompts = distinct.SelectMany(p => Enumerable.Repeat(p, 6)).ToList();
        var seeds = Enumerable.Range(0, prompts.Count).Select(i => 1000UL + (ulong)(i * 7)).ToList();
        // A tenth of the vocabulary stops a row, so responses end at very different lengths.
        var options = new SamplingOptions
        {
            MaxNewTokens = 40, Temperature = temperature, TopP = topP, StopTokenIds = Enumerable.Range(0, 256).Where(t => t % 10 == 3).ToList(),
        };

        var reference = ReferenceGenerator.Generate(model, prompts, options, seeds, maxBatch);
        var stats = new GenerationStats();
        var engine = TextGenerator.Generate(model, prompts, options, seeds, maxBatch, stats: stats);

        Assert.Equal(reference.Count, engine.Count);
        for (int i = 0; i < reference.Count; i++)
        {
            Assert.Equal(reference[i].Tokens, engine[i].Tokens);
            Assert.Equal(reference[i].Stopped, engine[i].Stopped);
            for (int t = 0; t < reference[i].LogProbs.Length; t++)
                Assert.True(Math.Abs(reference[i].LogProbs[t] - engine[i].LogProbs[t]) < 1e-4, $"row {i} token {t}: {reference[i].LogProbs[t]} vs {engine[i].LogProbs[t]}");
        }
        Assert.Contains(engine, c => c.Stopped && c.Tokens.Length < 10);
        Assert.Contains(engine, c => c.Tokens.Length > 20);
        Assert.True(stats.PrefillTokensSaved > stats.PrefillTokens, $"saved {stats.PrefillTokensSaved} of {stats.PrefillTokens + stats.PrefillTokensSaved}");
        // With a common prefix, each batch prefills it once (12 prompts in batches of maxBatch rows, 6 rows a prompt).
        long batches = (prompts.Count + maxBatch - 1) / maxBatch;
        long own = prompts.Sum(p => (long)p.Length - commonPrefix) / 6;
        if (commonPrefix > 0) Assert.True(stats.PrefillTokens <= own + batches * (commonPrefix + 6L * 20), $"prefilled {stats.PrefillTokens}");
        Assert.True(stats.Compactions > 0);
        Assert.True(stats.DecodeRowSteps < prompts.Count * options.MaxNewTokens);
    }

    /// <summary>
    /// Rows with their own token limits (offline throughput benchmarks give each sequence its own length) give the
    /// first tokens they give without one, and end at their limit unless a stop token comes first.
    /// </summary>
    [Fact]
    public void ARowsOwnTokenLimitGivesThePrefixOfItsUnlimitedOutput()
    {
        using var model = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        var random = new Random(5);
        var prompts = Enumerable.Range(0, 9).Select(_ => Enumerable.Range(0, random.Next(2, 12)).Select(_ => random.Next(3, 250)).ToArray()).ToList();
        var options = new SamplingOptions { MaxNewTokens = 24, Temperature = 1.0, StopTokenIds = [7] };
        int[] limits = [1, 24, 5, 13, 2, 24, 9, 17, 3];
        var unlimited = TextGenerator.Generate(model, prompts, options);
        var limited = TextGenerator.Generate(model, prompts, options, maxBatch: 4, rowMaxNewTokens: limits);
        for (int i = 0; i < prompts.Count; i++)
        {
            int expected = Math.Min(limits[i], unlimited[i].Tokens.Length);
            Assert.Equal(unlimited[i].Tokens[..expected], limited[i].Tokens);
            Assert.Equal(unlimited[i].Stopped && unlimited[i].Tokens.Length <= limits[i], limited[i].Stopped);
        }
        Assert.Contains(limited, c => !c.Stopped && c.Tokens.Length < 24);
        var error = Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, prompts, options, rowMaxNewTokens: [.. limits[..8], 25]));
        Assert.Contains("each from 1 to max_new_tokens (24)", error.Message);
    }

    /// <summary>
    /// Rows with their own temperature and top_p (a server batching requests): each row gets exactly the tokens and
    /// log-probs that a call giving every row its setting gives it, and rows of a batch of mixed lengths, limits and
    /// settings never depend on each other (rows ended by the caller leave without disturbing the rest).
    /// </summary>
    [Fact]
    public void RowsWithTheirOwnSamplingSettingsGetWhatTheirSettingGivesThemAlone()
    {
        using var model = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        var random = new Random(9);
        var prompts = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, random.Next(2, 15)).Select(_ => random.Next(3, 250)).ToArray()).ToList();
        RowSampling[] settings = [new(0, 1), new(1.0, 0.9), new(0.7, 1), new(0, 1), new(1.3, 0.5), new(1.0, 0.9), new(0.7, 1), new(1.0, 1)];
        int[] limits = [20, 7, 20, 3, 16, 20, 11, 20];
        var seeds = Enumerable.Range(0, prompts.Count).Select(i => 500UL + (ulong)(i * 13)).ToList();
        var options = new SamplingOptions { MaxNewTokens = 20, StopTokenIds = [7] };
        int row7 = 0;
        var mixed = TextGenerator.Generate(model, prompts, options, seeds, rowMaxNewTokens: limits, rowSampling: settings,
            keepRow: (row, token) => row != 7 || ++row7 < 4);   // the caller ends row 7 after 4 tokens (a stop sequence)
        for (int i = 0; i < prompts.Count; i++)
        {
            var alone = TextGenerator.Generate(model, [prompts[i]],
                options with { Temperature = settings[i].Temperature, TopP = settings[i].TopP, MaxNewTokens = limits[i] }, [seeds[i]])[0];
            int expected = i == 7 ? Math.Min(4, alone.Tokens.Length) : alone.Tokens.Length;
            Assert.Equal(alone.Tokens[..expected], mixed[i].Tokens);
            for (int t = 0; t < expected; t++)
                Assert.True(Math.Abs(alone.LogProbs[t] - mixed[i].LogProbs[t]) < 1e-4, $"row {i} token {t}: {alone.LogProbs[t]} vs {mixed[i].LogProbs[t]}");
        }
        Assert.Equal(4, mixed[7].Tokens.Length);
        Assert.False(mixed[7].Stopped);
        // The same settings for every row give what the one-setting call gives (the round's path).
        var uniform = TextGenerator.Generate(model, prompts, options with { Temperature = 1.0, TopP = 0.9 }, seeds);
        var perRow = TextGenerator.Generate(model, prompts, options, seeds, rowSampling: [.. Enumerable.Repeat(new RowSampling(1.0, 0.9), 8)]);
        for (int i = 0; i < prompts.Count; i++) Assert.Equal(uniform[i].Tokens, perRow[i].Tokens);
        Assert.Throws<ArgumentException>(() => TextGenerator.Generate(model, prompts, options, rowSampling: [.. settings[..7], new(1.0, 0)]));
    }
}
