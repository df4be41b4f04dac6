using System.Globalization;
using System.Text.RegularExpressions;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Alignment.Judges;

/// <summary>
/// LLM-as-a-judge (Self-Rewarding LMs): the policy reads an additive 5-point rubric with the question
/// and a response and ends with "Score: &lt;points&gt;". k judgements are sampled and averaged; answers
/// without a parsable score are counted and left out; a response with none gets NaN (excluded).
/// </summary>
public sealed partial class LlmJudge(DecoderLM judge, ITextTokenizer tokenizer, PromptTemplate template, int judgements,
    SamplingOptions sampling, string? rubric = null) : IJudge
{
    public const string DefaultRubric =
        "Review the user's question and the corresponding response using the additive 5-point scoring system described below.\n" +
        "- Add 1 point if the response is relevant and provides some information related to the user's inquiry.\n" +
        "- Add another point if the response addresses a substantial portion of the user's question.\n" +
        "- Award a third point if the response answers the basic elements of the user's question in a useful way.\n" +
        "- Grant a fourth point if the response is clearly written, direct and comprehensive.\n" +
        "- Bestow a fifth point for a response that is impeccably tailored to the question, without extraneous information.\n\n" +
        "User: {prompt}\n<response>{response}</response>\n\n" +
        "After examining the user's instruction and the response, conclude with the score in the format \"Score: <total points>\".";

    public string Kind => "llm";

    // The number must end there: "Score: 10" is out of the rubric's range, not a 1.
    [GeneratedRegex(@"Score:\s*([0-5](?:\.\d+)?)(?!\d)(?!\.\d)", RegexOptions.IgnoreCase)]
    private static partial Regex ScorePattern();

    /// <summary>The last "Score: N" (0 to 5) in a judgement, or null.</summary>
    public static double? ParseScore(string judgement)
    {
        var matches = ScorePattern().Matches(judgement);
        return matches.Count == 0 ? null : double.Parse(matches[^1].Groups[1].Value, CultureInfo.InvariantCulture);
    }

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default)
    {
        string text = rubric ?? DefaultRubric;
        var prompts = new List<int[]>();
        foreach (var g in groups)
            foreach (var response in g.ResponseTexts)
            {
                var ids = Examples.PromptIds(tokenizer, template.Format(text.Replace("{prompt}", g.Item.Prompt).Replace("{response}", response)));
                for (int j = 0; j < judgements; j++) prompts.Add(ids);
            }
        // One seed per judgement so that the k samples differ and the whole judging is reproducible.
        var seeds = Enumerable.Range(0, prompts.Count).Select(i => sampling.Seed * 1_000_003UL + (ulong)i).ToList();
        var outputs = TextGenerator.Generate(judge, prompts, sampling with { StopTokenIds = [tokenizer.EosId], PadTokenId = Math.Max(0, tokenizer.PadId) }, seeds,
            cancellationToken: cancellationToken);
        int failures = 0, k = 0;
        var scores = new List<double[]>();
        foreach (var g in groups)
        {
            var s = new double[g.ResponseTexts.Count];
            for (int i = 0; i < s.Length; i++)
            {
                var parsed = new List<double>();
                for (int j = 0; j < judgements; j++, k++)
                {
                    var score = ParseScore(tokenizer.Decode(outputs[k].Tokens));
                    if (score is double v) parsed.Add(v); else failures++;
                }
                s[i] = parsed.Count == 0 ? double.NaN : parsed.Average();
            }
            scores.Add(s);
        }
        return new JudgeResult(scores, failures);
    }
}
