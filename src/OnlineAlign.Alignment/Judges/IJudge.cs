using OnlineAlign.Alignment.Tasks;

namespace OnlineAlign.Alignment.Judges;

/// <summary>One prompt's N sampled responses, as text and as token ids.</summary>
public sealed record ResponseGroup(PromptItem Item, int[] PromptIds, IReadOnlyList<int[]> ResponseIds, IReadOnlyList<string> ResponseTexts);

/// <summary>Scores per prompt and response; NaN marks a response the judge could not score (excluded).</summary>
/// <param name="Agreement">a second judge's scores that a pair must agree with to be kept (self-consistency), or null</param>
public sealed record JudgeResult(IReadOnlyList<double[]> Scores, int ParseFailures = 0, IReadOnlyList<double[]>? Agreement = null);

/// <summary>Scores every response of every group. Judges run synchronously on the model's thread.</summary>
public interface IJudge
{
    string Kind { get; }
    /// <param name="cancellationToken">Checked between batches: a paused or cancelled run stops judging within a batch.</param>
    JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default);
}
