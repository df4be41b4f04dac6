using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using static TorchSharp.torch;

namespace OnlineAlign.Alignment.Judges;

/// <summary>Scores responses with a trained Bradley-Terry reward model.</summary>
public sealed class RewardModelJudge(RewardModel model, int padTokenId = 0, int chunkSize = 32) : IJudge
{
    public string Kind => "reward_model";

    public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default)
    {
        var rows = groups.SelectMany(g => g.ResponseIds.Select(r => new PromptResponse(g.PromptIds, r))).ToList();
        var rewards = new List<double>(rows.Count);
        using var noGrad = no_grad();
        for (int i = 0; i < rows.Count; i += chunkSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            rewards.AddRange(model.Rewards(rows.Skip(i).Take(chunkSize).ToList(), padTokenId).cpu().data<float>().ToArray().Select(x => (double)x));
        }
        int k = 0;
        return new JudgeResult(groups.Select(g => g.ResponseIds.Select(_ => rewards[k++]).ToArray()).ToList());
    }
}
