using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Alignment;

/// <summary>Response groups and a judge with fixed scores, for tests of the judge and pairs phases.</summary>
internal static class JudgeTestData
{
    public static readonly ByteTokenizer Tokenizer = new();

    /// <summary>Scores given in advance; NaN counts as a judgement that could not be parsed.</summary>
    public sealed class FixedJudge(params double[][] scores) : IJudge
    {
        public string Kind => "fixed";
        public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default) =>
            new(scores, scores.Sum(r => r.Count(double.IsNaN)));
    }

    /// <summary>Sort prompts, each with responses "{prompt index}{sample index}".</summary>
    public static List<ResponseGroup> Groups(int prompts, int samples)
    {
        var items = new SortDigitsTask().Prompts(prompts, 5, "train").ToList();
        return items.Select((p, i) => new ResponseGroup(p, Examples.PromptIds(Tokenizer, p.Prompt),
            Enumerable.Range(0, samples).Select(k => Examples.ResponseIds(Tokenizer, $"{i}{k}")).ToList(),
            Enumerable.Range(0, samples).Select(k => $"{i}{k}").ToList())).ToList();
    }
}
