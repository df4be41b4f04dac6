namespace OnlineAlign.Alignment.Judges;

/// <summary>
/// Self-consistency of internal reward models (Zhou et al. 2025): the policy judges twice, as an LLM judge
/// (its generative reward) and through its implicit DPO reward. The scores are the first judge's; the
/// second's travel along as <see cref="JudgeResult.Agreement"/>, and a pair is trained on only when both
/// judges order it the same way (pairs where they disagree are dropped and counted). This is the paper's data filter,
/// with both judges' scores taken once before the round trains; its consistency loss (both internal reward models
/// trained towards agreement at every step) is not implemented. As kind "llm" (judge.implicit_agreement) the second
/// judge's scores are only measured against the first's (health/implicit_agreement): no pair is dropped.
/// </summary>
public sealed class AgreementJudge(IJudge scores, IJudge agreement, string kind = "self_consistent") : IJudge
{
    public string Kind => kind;

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default)
    {
        var first = scores.Score(groups, cancellationToken);
        var second = agreement.Score(groups, cancellationToken);
        return first with { Agreement = second.Scores };
    }

    public JudgeResult ScoreShard(IReadOnlyList<ResponseGroup> round, IReadOnlyList<int> positions, CancellationToken cancellationToken = default)
    {
        var first = scores.ScoreShard(round, positions, cancellationToken);
        var second = agreement.ScoreShard(round, positions, cancellationToken);
        return first with { Agreement = second.Scores };
    }

    /// <summary>Whether a second judge's scores order a pair as the pair does (strictly).</summary>
    public static bool Agrees(IReadOnlyList<double> second, int chosen, int rejected) => second[chosen] > second[rejected];
}
