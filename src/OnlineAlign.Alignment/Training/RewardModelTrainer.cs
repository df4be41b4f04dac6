using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace OnlineAlign.Alignment.Training;

/// <summary>
/// Bradley-Terry reward modelling: maximise log sigmoid(r(chosen) - r(rejected)) on training pairs,
/// report the fraction of held-out pairs ranked correctly.
/// </summary>
public static class RewardModelTrainer
{
    public sealed record Result(List<double> Losses, double TrainAccuracy, double HeldOutAccuracy, int TrainPairs, int HeldOutPairs);

    public static Result Train(RewardModel model, ITextTokenizer tokenizer, IReadOnlyList<PreferenceItem> pairs, double heldOutFraction,
        OptimizerSettings optimizer, int steps, int batchSize, int seed)
    {
        var random = new Random(seed);
        var shuffled = pairs.OrderBy(_ => random.Next()).ToList();
        int heldOut = (int)Math.Round(shuffled.Count * heldOutFraction);
        var eval = shuffled.Take(heldOut).ToList();
        var train = shuffled.Skip(heldOut).ToList();
        if (train.Count == 0) throw new ArgumentException("no training pairs left after the held-out split");
        var adam = optim.AdamW(model.parameters(), lr: optimizer.LearningRate, weight_decay: optimizer.WeightDecay);
        var losses = new List<double>();
        int pad = Math.Max(0, tokenizer.PadId);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var batch = Enumerable.Range(0, batchSize).Select(_ => train[random.Next(train.Count)]).ToList();
            adam.zero_grad();
            var rewards = model.Rewards(Rows(tokenizer, batch), pad);
            var margin = rewards.narrow(0, 0, batch.Count) - rewards.narrow(0, batch.Count, batch.Count);
            var loss = -F.logsigmoid(margin).mean();
            double value = loss.item<float>();
            if (!double.IsFinite(value)) throw new NonFiniteLossException(step, value);
            loss.backward();
            nn.utils.clip_grad_norm_(model.parameters(), optimizer.MaxGradNorm > 0 ? optimizer.MaxGradNorm : 1e9);
            adam.step();
            losses.Add(value);
        }
        return new Result(losses, Accuracy(model, tokenizer, train.Take(512).ToList()), eval.Count == 0 ? double.NaN : Accuracy(model, tokenizer, eval),
            train.Count, eval.Count);
    }

    /// <summary>Fraction of pairs whose chosen response gets the higher reward.</summary>
    public static double Accuracy(RewardModel model, ITextTokenizer tokenizer, IReadOnlyList<PreferenceItem> pairs)
    {
        using var noGrad = no_grad();
        int correct = 0;
        for (int i = 0; i < pairs.Count; i += 32)
        {
            using var scope = NewDisposeScope();
            var batch = pairs.Skip(i).Take(32).ToList();
            var r = model.Rewards(Rows(tokenizer, batch), Math.Max(0, tokenizer.PadId)).cpu().data<float>().ToArray();
            correct += Enumerable.Range(0, batch.Count).Count(k => r[k] > r[batch.Count + k]);
        }
        return pairs.Count == 0 ? double.NaN : (double)correct / pairs.Count;
    }

    private static List<PromptResponse> Rows(ITextTokenizer tokenizer, IReadOnlyList<PreferenceItem> batch) =>
        batch.Select(p => Examples.Pair(tokenizer, p.Prompt, p.Chosen)).Concat(batch.Select(p => Examples.Pair(tokenizer, p.Prompt, p.Rejected))).ToList();
}
