using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Alignment.Health;

/// <summary>judge/pairwise_accuracy and judge/pairwise_count: a judge's scores of the pairwise set's chosen and rejected responses.</summary>
public static class PairwiseJudging
{
    /// <summary>
    /// Each pair becomes a group of two responses [chosen, rejected], laid out as a round's samples are (the response and
    /// its end of turn) and scored by <see cref="IJudge.Score"/>, the call the judge phase makes; no metric without pairs.
    /// Their prompt indices are negative, apart from every round prompt's, so an LLM judge's draws for them are their own.
    /// </summary>
    public static Dictionary<string, double> Measure(IReadOnlyList<JudgePair> pairs, ITextTokenizer tokenizer, IJudge judge,
        CancellationToken cancellationToken = default)
    {
        if (pairs.Count == 0) return [];
        var groups = pairs.Select((p, i) =>
        {
            int[][] ids = [Examples.ResponseIds(tokenizer, p.Chosen), Examples.ResponseIds(tokenizer, p.Rejected)];
            return new ResponseGroup(p.Item, Examples.PromptIds(tokenizer, p.Item.Prompt), ids, ids.Select(r => tokenizer.Decode(r)).ToList(), -1 - i);
        }).ToList();
        var scores = judge.Score(groups, cancellationToken).Scores;
        return new()
        {
            [PairwiseSet.Accuracy] = PairwiseSet.AccuracyOf(scores.Select(s => (IReadOnlyList<double>)s).ToList()),
            [PairwiseSet.Count] = pairs.Count,
        };
    }
}
