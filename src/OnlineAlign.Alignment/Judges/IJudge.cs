using OnlineAlign.Alignment.Tasks;

namespace OnlineAlign.Alignment.Judges;

/// <summary>One prompt's N sampled responses, as text and as token ids.</summary>
/// <param name="PromptIndex">the prompt's index in the run's prompt order: what a judge's random draws are seeded from</param>
public sealed record ResponseGroup(PromptItem Item, int[] PromptIds, IReadOnlyList<int[]> ResponseIds,
    IReadOnlyList<string> ResponseTexts, int PromptIndex = 0);

/// <summary>Scores per prompt and response; NaN marks a response the judge could not score (excluded).</summary>
/// <param name="Agreement">a second judge's scores that a pair must agree with to be kept (self-consistency), or null</param>
public sealed record JudgeResult(IReadOnlyList<double[]> Scores, int ParseFailures = 0, IReadOnlyList<double[]>? Agreement = null);

/// <summary>Scores every response of every group. Judges run synchronously on the model's thread.</summary>
public interface IJudge
{
    string Kind { get; }
    /// <param name="cancellationToken">Checked between batches: a paused or cancelled run stops judging within a batch.</param>
    JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default);

    /// <summary>
    /// Scores the groups at <paramref name="positions"/> (a contiguous shard cut on the judge's batch boundaries) of a
    /// round's <paramref name="round"/>, each with exactly the numbers scoring the whole round gives it. Judges that batch
    /// only within the rows they are given need nothing more than the shard's groups; one whose batches depend on the whole
    /// round (a prefix shared by all its rows) overrides this.
    /// </summary>
    JudgeResult ScoreShard(IReadOnlyList<ResponseGroup> round, IReadOnlyList<int> positions, CancellationToken cancellationToken = default) =>
        Score(positions.Select(p => round[p]).ToList(), cancellationToken);
}
