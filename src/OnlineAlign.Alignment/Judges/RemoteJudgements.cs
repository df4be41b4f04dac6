using OnlineAlign.Alignment.Rounds;

namespace OnlineAlign.Alignment.Judges;

/// <summary>One judgement a remote judge is asked for: response <paramref name="Sample"/> of the round's prompt <paramref name="Prompt"/>,
/// its <paramref name="Judgement"/>-th of k.</summary>
/// <param name="Text">the judge prompt (the template with the question and the response)</param>
/// <param name="Seed">the request's sampling seed: derived from (run seed, round, prompt, sample, judgement), 31 bits (every server takes those)</param>
public sealed record JudgeRequest(int Prompt, int Sample, int Judgement, string Text, long Seed)
{
    /// <summary>The judgement's place in the round (the round is the cache's folder).</summary>
    public string Key => $"{Prompt}/{Sample}/{Judgement}";
}

/// <summary>
/// A remote judge's side that needs no network (the HTTP client lives with the worker): which judgements a round asks
/// for, and the scores their answers give, read by the LLM judge's own parser. An answer without a readable score is
/// counted (<see cref="JudgeResult.ParseFailures"/>) and left out of its response's mean; a response with no readable
/// judgement gets NaN (unscored: it takes part in no pair), never a made-up score.
/// </summary>
public static class RemoteJudgements
{
    /// <summary>A tag that keeps the judge's seeds apart from the sampling seeds derived from the same (seed, round, prompt, sample).</summary>
    private const int SeedTag = -4;

    /// <summary>Every judgement of the round, prompt by prompt, sample by sample, judgement by judgement.</summary>
    public static List<JudgeRequest> Requests(IReadOnlyList<ResponseGroup> groups, string template, int judgements, ulong runSeed, int round)
    {
        var requests = new List<JudgeRequest>();
        for (int p = 0; p < groups.Count; p++)
            for (int s = 0; s < groups[p].ResponseTexts.Count; s++)
            {
                string text = JudgePrompts.Format(template, groups[p].Item.Prompt, groups[p].ResponseTexts[s]);
                ulong sampleSeed = Seeds.For(runSeed, round, p, s);
                for (int j = 0; j < judgements; j++)
                    requests.Add(new JudgeRequest(p, s, j, text, (long)(Seeds.For(sampleSeed, SeedTag, j, 0) & 0x7FFF_FFFF)));
            }
        return requests;
    }

    /// <summary>The scores of the answers to <see cref="Requests"/> (in its order): the mean of each response's readable scores.</summary>
    public static JudgeResult Scores(IReadOnlyList<ResponseGroup> groups, int judgements, IReadOnlyList<string> answers)
    {
        int expected = groups.Sum(g => g.ResponseTexts.Count) * judgements;
        if (answers.Count != expected) throw new ArgumentException($"{answers.Count} answers for {expected} judgements");
        int failures = 0, k = 0;
        var scores = new List<double[]>();
        foreach (var g in groups)
        {
            var row = new double[g.ResponseTexts.Count];
            for (int s = 0; s < row.Length; s++)
            {
                var parsed = new List<double>();
                for (int j = 0; j < judgements; j++, k++)
                    if (LlmJudge.ParseScore(answers[k]) is double v) parsed.Add(v); else failures++;
                row[s] = parsed.Count == 0 ? double.NaN : parsed.Average();
            }
            scores.Add(row);
        }
        return new JudgeResult(scores, failures);
    }
}

/// <summary>A judge whose scores are already known (a remote judge's, read from its answers):
/// the round's metrics are computed from them as from any judge's.</summary>
public sealed class ScoredJudge(string kind, JudgeResult result) : IJudge
{
    public string Kind => kind;

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default) =>
        groups.Count == result.Scores.Count ? result : throw new ArgumentException($"scores for {result.Scores.Count} prompts, asked for {groups.Count}");
}
