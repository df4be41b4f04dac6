using OnlineAlign.Alignment.Tasks;

namespace OnlineAlign.Alignment.Judges;

/// <summary>1 for a response the task's verifier accepts, 0 otherwise.</summary>
public sealed class VerifierJudge(IVerifiableTask task) : IJudge
{
    public string Kind => "verifier";

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default) =>
        new(groups.Select(g => g.ResponseTexts.Select(text => task.Verify(g.Item, text) ? 1.0 : 0.0).ToArray()).ToList());
}
