using OnlineAlign.Alignment.Losses;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Specs;
using static TorchSharp.torch;

namespace OnlineAlign.Alignment.Training;

/// <summary>
/// The preference update: pairs with reference log-probs computed beforehand (once per round), a loss
/// from <see cref="PreferenceLoss"/>, AdamW over flat buffers, gradient clipping, gradient accumulation.
/// Seeded: the same model, pairs and settings give the same weights on CPU. When an optimiser state
/// is passed, AdamW starts from it and it holds the final moments afterwards (carried between rounds).
/// </summary>
public static class PreferenceTrainer
{
    public sealed record Settings(LossSpec Loss, OptimizerSettings Optimizer, int Epochs, int BatchSize, int Seed);

    public static List<StepMetrics> Train(DecoderLM model, IReadOnlyList<PairExample> pairs, Settings s, int padTokenId = 0,
        Action<int, int>? progress = null, OptimizerState? optimizerState = null, CancellationToken cancellationToken = default)
    {
        if (s.Loss.Problems(SpecLimits.Default) is [var problem, ..]) throw new ArgumentException(problem);
        var metrics = new List<StepMetrics>();
        if (pairs.Count == 0) return metrics;
        var random = new Random(s.Seed);
        int accumulation = Math.Max(1, s.Optimizer.GradientAccumulation);
        var batches = new List<List<PairExample>>();
        for (int epoch = 0; epoch < s.Epochs; epoch++)
        {
            var order = Enumerable.Range(0, pairs.Count).OrderBy(_ => random.Next()).ToList();
            for (int i = 0; i < order.Count; i += s.BatchSize)
                batches.Add(order.Skip(i).Take(s.BatchSize).Select(j => pairs[j]).ToList());
        }
        int totalSteps = (batches.Count + accumulation - 1) / accumulation;
        using var adam = new FlatAdamW(model, s.Optimizer);
        optimizerState?.RestoreInto(adam);
        var device = model.Device;
        for (int step = 0; step < totalSteps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            adam.LearningRate = s.Optimizer.LearningRateAt(step, totalSteps);
            adam.ZeroGrad();
            var micro = batches.Skip(step * accumulation).Take(accumulation).ToList();
            int pairsInStep = micro.Sum(m => m.Count);
            var sums = new double[6]; // loss, chosen reward, rejected reward, accuracy, chosen logp, rejected logp
            foreach (var batch in micro)
            {
                bool explore = s.Loss.SelmAlpha > 0;
                var rows = batch.Select(p => new PromptResponse(p.Prompt, p.Chosen))
                    .Concat(batch.Select(p => new PromptResponse(p.Prompt, p.Rejected)))
                    .Concat(explore ? batch.Select(p =>
                        new PromptResponse(p.Prompt, p.Explore ?? throw new ArgumentException("loss.selm_alpha needs pairs with a sampled response")))
                        : []).ToList();
                var (tokenLogProbs, _) = ResponseLogProbs.Forward(model, rows, padTokenId);
                var sequence = tokenLogProbs.sum(1, type: ScalarType.Float64);
                int n = batch.Count;
                var x = new PairLogProbs(
                    sequence.narrow(0, 0, n), sequence.narrow(0, n, n),
                    tensor(batch.Select(p => p.ReferenceChosen).ToArray(), device: device),
                    tensor(batch.Select(p => p.ReferenceRejected).ToArray(), device: device),
                    tensor(batch.Select(p => (double)p.Chosen.Length).ToArray(), device: device),
                    tensor(batch.Select(p => (double)p.Rejected.Length).ToArray(), device: device),
                    tensor(batch.Select(p => p.Consistency).ToArray(), device: device),
                    tensor(batch.Select(p => p.WinChosen).ToArray(), device: device),
                    tensor(batch.Select(p => p.WinRejected).ToArray(), device: device),
                    explore ? sequence.narrow(0, 2 * n, n) : null,
                    explore ? tensor(batch.Select(p => p.ReferenceExplore).ToArray(), device: device) : null);
                var loss = PreferenceLoss.PerPair(s.Loss, x);
                (loss.sum() / pairsInStep).backward();

                using var noGrad = no_grad();
                var chosenReward = s.Loss.Beta * (x.PolicyChosen - x.ReferenceChosen);
                var rejectedReward = s.Loss.Beta * (x.PolicyRejected - x.ReferenceRejected);
                // One device-to-host copy (one sync) for all six sums rather than one each.
                var batchSums = stack(new[] { loss.sum(), chosenReward.sum(), rejectedReward.sum(),
                        (chosenReward > rejectedReward).sum(), x.PolicyChosen.sum(), x.PolicyRejected.sum() }
                    .Select(t => t.to(ScalarType.Float64))).cpu().data<double>().ToArray();
                for (int k = 0; k < sums.Length; k++) sums[k] += batchSums[k];
            }
            double meanLoss = sums[0] / pairsInStep;
            if (!double.IsFinite(meanLoss)) throw new NonFiniteLossException(step, meanLoss);
            double gradNorm = adam.ClipGradients().item<float>();
            adam.StepOnce();
            metrics.Add(new StepMetrics(step, meanLoss, sums[1] / pairsInStep, sums[2] / pairsInStep, sums[3] / pairsInStep,
                (sums[1] - sums[2]) / pairsInStep, sums[4] / pairsInStep, sums[5] / pairsInStep, gradNorm, adam.LearningRate));
            progress?.Invoke(step + 1, totalSteps);
        }
        optimizerState?.CaptureFrom(adam);
        return metrics;
    }
}
