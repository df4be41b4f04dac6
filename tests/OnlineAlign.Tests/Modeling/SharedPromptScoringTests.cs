using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Modeling;

/// <summary>Log-probs with each distinct prompt computed once equal the plain pass's, row by row and token by token.</summary>
public class SharedPromptScoringTests
{
    /// <summary>Three prompts of 5, 11 and 1 tokens with 1-9-token responses, grouped, then one prompt again out of its group.</summary>
    private static List<PromptResponse> Rows(int vocabulary)
    {
        var random = new Random(4);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, vocabulary)).ToArray();
        var prompts = new[] { Tokens(5), Tokens(11), Tokens(1) };
        var rows = prompts.SelectMany(p => Enumerable.Range(0, 3).Select(_ => new PromptResponse(p, Tokens(random.Next(1, 10))))).ToList();
        rows.Add(new PromptResponse(prompts[0], Tokens(4)));
        return rows;
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void SharedPromptsGiveThePlainPasssLogProbs(string family)
    {
        using var model = family == "llama" ? HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny")) : BuiltinModels.Create(Qwen2ShapeTests.SmallQwen2, 5);
        var rows = Rows(model.Config.VocabSize);
        var plain = ResponseLogProbs.Score(model, rows, chunkSize: rows.Count, sharePrompts: false);
        var shared = ResponseLogProbs.Score(model, rows, chunkSize: rows.Count);
        for (int b = 0; b < rows.Count; b++)
        {
            Assert.Equal(plain[b].TokenLogProbs.Length, shared[b].TokenLogProbs.Length);
            for (int i = 0; i < plain[b].TokenLogProbs.Length; i++)
                Assert.True(Math.Abs(plain[b].TokenLogProbs[i] - shared[b].TokenLogProbs[i]) < 1e-4,
                    $"row {b} token {i}: {shared[b].TokenLogProbs[i]} vs {plain[b].TokenLogProbs[i]}");
        }
        // Chunks of two split groups and give the same again (a chunk of distinct prompts takes the plain pass).
        var chunked = ResponseLogProbs.Score(model, rows, chunkSize: 2);
        Assert.All(Enumerable.Range(0, rows.Count), b => Assert.True(Math.Abs(chunked[b].Sum - plain[b].Sum) < 1e-3));
    }
}
