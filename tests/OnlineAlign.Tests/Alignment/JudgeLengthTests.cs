using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Alignment;

/// <summary>judge.max_new_tokens: how long the LLM judge's sampled judgements may be (Self-Rewarding's judge reasons before its score).</summary>
public class JudgeLengthTests
{
    /// <summary>Records the length of each token list the judge decodes: the judgements it sampled.</summary>
    private sealed class RecordingTokenizer(ITextTokenizer inner) : ITextTokenizer
    {
        public List<int> Decoded { get; } = [];
        public int VocabSize => inner.VocabSize;
        public int PadId => inner.PadId;
        public int BosId => inner.BosId;
        public int EosId => inner.EosId;
        public ChatFormat Chat => inner.Chat;
        public int[] Encode(string text) => inner.Encode(text);
        public string Decode(IEnumerable<int> ids)
        {
            var list = ids.ToList();
            Decoded.Add(list.Count);
            return inner.Decode(list);
        }
        public IEnumerable<(string Name, string Content)> HfFiles() => inner.HfFiles();
    }

    private static readonly ResponseGroup Group = new(new PromptItem("sort 312="), [], [[1, 2], [3]], ["123", "321"]);

    [Theory]
    [InlineData(5)]
    [InlineData(11)]
    public void SampledJudgementsAreAsLongAsJudgeMaxNewTokens(int maxNewTokens)
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, seed: 3);
        var tokenizer = new RecordingTokenizer(new ByteTokenizer());
        // A text template is scored by sampled judgements, like the rubric (whose text is longer than the tiny model's context).
        var settings = new RoundSettings { Judge = new() { Kind = "llm", Judgements = 2, Template = "Q {prompt} A {response} J", MaxNewTokens = maxNewTokens } };
        JudgeFactory.Create(settings, model, null, tokenizer, null, null, seed: 1, round: 1).Score([Group]);
        Assert.Equal(2 * 2, tokenizer.Decoded.Count);
        // A random model seldom emits its stop token: the longest judgement is cut at exactly the field's length.
        Assert.Equal(maxNewTokens, tokenizer.Decoded.Max());
    }

    [Fact]
    public void TheCompactTemplateStillSamplesNothing()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, seed: 3);
        var tokenizer = new RecordingTokenizer(new ByteTokenizer());
        var settings = new RoundSettings { Judge = new() { Kind = "llm", Template = "compact", MaxNewTokens = 5 } };
        var scores = JudgeFactory.Create(settings, model, null, tokenizer, null, null, seed: 1, round: 1).Score([Group]).Scores[0];
        Assert.Empty(tokenizer.Decoded); // scored by the expected score digit
        Assert.All(scores, s => Assert.InRange(s, 0, JudgePrompts.MaxScore));
    }
}
