using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;

namespace OnlineAlign.Alignment.Judges;

/// <summary>
/// CREAM's self-reward: the implicit DPO reward log pi(y|x) - log pi_prev(y|x) of the current policy
/// against the model it was trained from (no beta: only the ranking matters). With no such model yet,
/// the length-normalised log-likelihood under the policy.
/// </summary>
public sealed class ImplicitRewardJudge(DecoderLM policy, DecoderLM? trainedFrom, int padTokenId = 0, int chunkSize = 32) : IJudge
{
    public string Kind => "implicit";

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default)
    {
        var rows = groups.SelectMany(g => g.ResponseIds.Select(r => new PromptResponse(g.PromptIds, r))).ToList();
        var current = ResponseLogProbs.Score(policy, rows, chunkSize, padTokenId, cancellationToken);
        var previous = trainedFrom is null ? null : ResponseLogProbs.Score(trainedFrom, rows, chunkSize, padTokenId, cancellationToken);
        var scores = new List<double[]>();
        int k = 0;
        foreach (var g in groups)
        {
            var s = new double[g.ResponseIds.Count];
            for (int i = 0; i < s.Length; i++, k++)
                s[i] = previous is null ? current[k].Mean : current[k].Sum - previous[k].Sum;
            scores.Add(s);
        }
        return new JudgeResult(scores);
    }
}
