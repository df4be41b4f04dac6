using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Training;
using static TorchSharp.torch;

namespace OnlineAlign.Alignment.Training;

/// <summary>Supervised fine-tuning on demonstrations: next-token loss on response tokens only.</summary>
public static class SftTrainer
{
    /// <returns>The loss of each step.</returns>
    public static List<double> Train(DecoderLM model, IReadOnlyList<PromptResponse> examples, OptimizerSettings optimizer,
        int steps, int batchSize, int seed, int padTokenId = 0, CancellationToken cancellationToken = default)
    {
        if (examples.Count == 0) throw new ArgumentException("SFT needs at least one demonstration");
        var random = new Random(seed);
        using var adam = new FlatAdamW(model, optimizer);
        var losses = new List<double>(steps);
        var order = new List<int>();
        for (int step = 0; step < steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = new List<PromptResponse>(batchSize);
            while (batch.Count < batchSize)
            {
                // Epochs over a seeded shuffle: every demonstration once before any twice.
                if (order.Count == 0) order = Enumerable.Range(0, examples.Count).OrderBy(_ => random.Next()).ToList();
                batch.Add(examples[order[^1]]);
                order.RemoveAt(order.Count - 1);
            }
            using var scope = NewDisposeScope();
            adam.LearningRate = optimizer.LearningRateAt(step, steps);
            adam.ZeroGrad();
            var (logProbs, mask) = ResponseLogProbs.Forward(model, batch, padTokenId);
            var loss = -(logProbs.sum() / mask.sum());
            double value = loss.item<float>();
            if (!double.IsFinite(value)) throw new NonFiniteLossException(step, value);
            loss.backward();
            adam.ClipGradients();
            adam.StepOnce();
            losses.Add(value);
        }
        return losses;
    }
}
