using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// A judge's rows (a common template, then a question shared by its group, then each response) scored with the
/// template once and each question once give what a plain forward pass over each row alone gives.
/// </summary>
public class LastTokenLogProbsTests
{
    /// <summary>
    /// A 12-token template, then groups of 3, 1 and 7 rows whose questions have 5, 9 and 2 tokens, with 1-8-token
    /// tails; the last group is larger than a chunk, so it is split.
    /// </summary>
    private static (List<int[]> Rows, int[] Sizes) Rows(int vocabulary)
    {
        var random = new Random(8);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, vocabulary)).ToArray();
        var template = Tokens(12);
        int[] sizes = [3, 1, 7];
        int[] questions = [5, 9, 2];
        var rows = new List<int[]>();
        for (int g = 0; g < sizes.Length; g++)
        {
            var question = Tokens(questions[g]);
            for (int i = 0; i < sizes[g]; i++) rows.Add([.. template, .. question, .. Tokens(random.Next(1, 9))]);
        }
        return (rows, sizes);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gemma3-tiny")]          // sliding window 4: the template alone is longer
    [InlineData("gemma3-softcap-tiny")]
    public void EachRowsLastTokenLogProbsAreItsOwnForwardPasss(string family)
    {
        using var model = family switch
        {
            "llama" => HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny")),
            "qwen2" => BuiltinModels.Create(Qwen2ShapeTests.SmallQwen2, 5),
            _ => HfCheckpoint.Load(RepositoryPaths.Fixture("hf", family)),
        };
        var (rows, sizes) = Rows(model.Config.VocabSize);
        int[] wanted = [3, 4, 7, 9];
        var shared = LastTokenLogProbs.Score(model, rows, sizes, wanted, maxRows: 4);
        using var noGrad = no_grad();
        for (int b = 0; b < rows.Count; b++)
        {
            using var scope = NewDisposeScope();
            var hidden = model.Hidden(tensor(rows[b].Select(x => (long)x).ToArray(), [1, rows[b].Length]));
            var plain = model.Logits(hidden[0, rows[b].Length - 1]).log_softmax(-1).data<float>().ToArray();
            for (int k = 0; k < wanted.Length; k++)
                Assert.True(Math.Abs(plain[wanted[k]] - shared[b][k]) < 1e-4, $"row {b} token {wanted[k]}: {shared[b][k]} vs {plain[wanted[k]]}");
        }
    }

    [Fact]
    public void GroupSizesThatDoNotCoverTheRowsAreRefused()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 1);
        var error = Assert.Throws<ArgumentException>(() => LastTokenLogProbs.Score(model, [[5, 6], [5, 7]], [1], [3]));
        Assert.Contains("sum to the 2 rows", error.Message);
    }
}
