using System.Globalization;
using System.Text.RegularExpressions;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;
using static TorchSharp.torch;

namespace OnlineAlign.Alignment.Judges;

/// <summary>How the LLM judge turns its judgement into a number.</summary>
public enum LlmJudgeScoring
{
    /// <summary>Self-Rewarding's way: k judgements are sampled and their parsed scores averaged.</summary>
    Sampled,
    /// <summary>
    /// The judge is made to answer "Score: " at once and the score is the expectation of the digit it would
    /// write, sum_d p(d) d over 0..5 (renormalised over the digits): one forward pass per response, no
    /// sampling noise, and ties only where the judge is truly indifferent (as G-Eval weights scores).
    /// </summary>
    Expected,
}

/// <summary>
/// LLM-as-a-judge (Self-Rewarding LMs): the policy reads a judge prompt (<see cref="JudgePrompts"/>) with
/// the question and a response and ends with "Score: &lt;points&gt;". Sampled: answers without a parsable
/// score are counted and left out, and a response with none gets NaN (excluded from pairs).
/// </summary>
public sealed partial class LlmJudge(DecoderLM judge, ITextTokenizer tokenizer, int judgements,
    SamplingOptions sampling, string? judgeTemplate = null, LlmJudgeScoring scoring = LlmJudgeScoring.Sampled, int maxBatch = 64) : IJudge
{
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

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default) =>
        ScoreShard(groups, Enumerable.Range(0, groups.Count).ToList(), cancellationToken);

    public JudgeResult ScoreShard(IReadOnlyList<ResponseGroup> round, IReadOnlyList<int> positions, CancellationToken cancellationToken = default)
    {
        if (positions.Where((p, i) => p != positions[0] + i).Any()) throw new ArgumentException("a judge shard's positions must be contiguous");
        var groups = positions.Select(p => round[p]).ToList();
        int failures = 0;
        double[] flat;
        if (scoring == LlmJudgeScoring.Expected)
        {
            // Every row of the round is formatted: the prefix all rows share and the cache's size are the whole round's.
            int from = round.Take(positions.Count > 0 ? positions[0] : 0).Sum(g => g.ResponseTexts.Count), count = groups.Sum(g => g.ResponseTexts.Count);
            flat = Expected(JudgeRows(round), [.. round.Select(g => g.ResponseTexts.Count).Where(n => n > 0)],
                from..(from + count), cancellationToken)[from..(from + count)];
        }
        else flat = Sampled(JudgeRows(groups), groups, cancellationToken, out failures);
        var scores = new List<double[]>();
        int k = 0;
        foreach (var g in groups)
        {
            scores.Add(flat.Skip(k).Take(g.ResponseTexts.Count).ToArray());
            k += g.ResponseTexts.Count;
        }
        return new JudgeResult(scores, failures);
    }

    /// <summary>The judge prompt of every response, in order.</summary>
    private List<int[]> JudgeRows(IReadOnlyList<ResponseGroup> groups) => groups.SelectMany(g => g.ResponseTexts.Select(response =>
        Examples.PromptIds(tokenizer, JudgePrompts.Format(judgeTemplate ?? "rubric", g.Item.Prompt, response)))).ToList();

    private double[] Sampled(List<int[]> prompts, IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken, out int failures)
    {
        var repeated = prompts.SelectMany(p => Enumerable.Repeat(p, judgements)).ToList();
        // One seed per (prompt, sample, judgement), so the k samples differ, the whole judging is reproducible, and a
        // judgement is the same whichever shard or batch position it is drawn in.
        var seeds = groups.SelectMany(g => g.ResponseTexts.SelectMany((_, sample) =>
            Enumerable.Range(0, judgements).Select(j => Seeds.Judgement(sampling.Seed, g.PromptIndex, sample, j)))).ToList();
        // In batches (the KV cache of every judgement at once would grow with the round); a response's k judgements
        // are adjacent, so each is prefilled once, and the rubric once a batch.
        var outputs = TextGenerator.Generate(judge, repeated,
            sampling with { StopTokenIds = [.. tokenizer.Chat.StopIds], PadTokenId = Math.Max(0, tokenizer.PadId) }, seeds,
            maxBatch, cancellationToken);
        failures = 0;
        var result = new double[prompts.Count];
        for (int i = 0, k = 0; i < prompts.Count; i++)
        {
            var parsed = new List<double>();
            for (int j = 0; j < judgements; j++, k++)
            {
                if (ParseScore(tokenizer.Decode(outputs[k].Tokens)) is double v) parsed.Add(v); else failures++;
            }
            result[i] = parsed.Count == 0 ? double.NaN : parsed.Average();
        }
        return result;
    }

    /// <param name="only">the rows to score (a shard); the others' results are NaN</param>
    private double[] Expected(List<int[]> prompts, IReadOnlyList<int> groupSizes, Range only, CancellationToken cancellationToken)
    {
        var digits = Enumerable.Range(0, JudgePrompts.MaxScore + 1).Select(d => tokenizer.Encode(d.ToString(CultureInfo.InvariantCulture))).ToArray();
        if (digits.Any(ids => ids.Length != 1))
            throw new ArgumentException("judge scoring 'expected' needs each digit 0-5 to be one token of the model's tokenizer");
        int[] prefix = tokenizer.Encode(JudgePrompts.ScorePrefix);
        var rows = prompts.Select(p => (int[])[.. p, .. prefix]).ToList();
        // The rubric is computed once for all responses and each question once for its responses.
        var logProbs = LastTokenLogProbs.Score(judge, rows, groupSizes, [.. digits.Select(d => d[0])], Math.Min(maxBatch, 32),
            Math.Max(0, tokenizer.PadId), cancellationToken, only);
        return logProbs.Select(lp =>
        {
            if (lp is null) return double.NaN;
            double mass = 0, sum = 0;
            for (int d = 0; d < lp.Length; d++) { double p = Math.Exp(lp[d]); mass += p; sum += p * d; }
            return sum / mass;
        }).ToArray();
    }
}
