namespace OnlineAlign.Alignment.Judges;

/// <summary>
/// Self-consistency as a judge, without labels: a response scores the share of its prompt's N responses
/// that give the same answer (the first line, trimmed, as the built-in tasks read answers). The most common
/// answer among samples is right more often than one sample is (self-consistency, Wang et al. 2023), so
/// preferring it over a rare answer is a label-free preference signal (majority-vote rewards, as in TTRL).
/// An empty answer scores 0. The score depends only on the responses, so no consistency regularisation applies.
/// </summary>
public sealed class MajorityJudge : IJudge
{
    public string Kind => "majority";

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default) =>
        new(groups.Select(g =>
        {
            var answers = g.ResponseTexts.Select(Answer).ToList();
            return answers.Select(a => a.Length == 0 ? 0.0 : (double)answers.Count(b => b == a) / answers.Count).ToArray();
        }).ToList());

    public static string Answer(string response) => response.Split('\n')[0].Trim();
}
