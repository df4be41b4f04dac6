using OnlineAlign.Alignment.Losses;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Specs;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace OnlineAlign.Alignment.Training;

/// <summary>
/// The preference update one optimiser step at a time, each micro-batch's gradient computed on its own (grads zeroed,
/// one backward) and added into a float32 accumulator in micro-batch order. One replica adds its own micro-batches'
/// gradients (<see cref="AddOwn"/>); a data-parallel coordinator adds the others' (<see cref="Add"/>) in the same order,
/// so both make the very same sum, bit for bit, and every replica applies it with <see cref="Apply"/>. The batches are
/// planned from the seed alone: every replica plans the same steps. Create and use it on the model's thread only.
/// </summary>
public sealed class PreferenceSteps : IDisposable
{
    /// <summary>The six sums a micro-batch reports: loss, chosen reward, rejected reward, accuracy, chosen logp, rejected logp.</summary>
    public const int SumCount = 6;

    private readonly DecoderLM _model;
    private readonly PreferenceTrainer.Settings _s;
    private readonly int _pad;
    private readonly List<List<List<PairExample>>> _steps = [];
    private readonly FlatAdamW _adam;
    private readonly OptimizerState? _state;
    private Tensor? _sumBuffer;

    /// <summary>The step's float32 sum, made on first use: a step of one micro-batch trained alone needs none (full fine-tuning's is 4 bytes a weight).</summary>
    private Tensor SumBuffer => _sumBuffer ??= zeros(_adam.GradientLength, ScalarType.Float32, _model.Device).DetachFromDisposeScope();

    public PreferenceSteps(DecoderLM model, IReadOnlyList<PairExample> pairs, PreferenceTrainer.Settings s, int padTokenId = 0,
        OptimizerState? optimizerState = null)
    {
        if (s.Loss.Problems(SpecLimits.Default) is [var problem, ..]) throw new ArgumentException(problem);
        (_model, _s, _pad, _state) = (model, s, padTokenId, optimizerState);
        var random = new Random(s.Seed);
        int accumulation = Math.Max(1, s.Optimizer.GradientAccumulation);
        var batches = new List<List<PairExample>>();
        for (int epoch = 0; epoch < s.Epochs && pairs.Count > 0; epoch++)
        {
            var order = Enumerable.Range(0, pairs.Count).OrderBy(_ => random.Next()).ToList();
            for (int i = 0; i < order.Count; i += s.BatchSize)
                batches.Add(order.Skip(i).Take(s.BatchSize).Select(j => pairs[j]).ToList());
        }
        for (int i = 0; i < batches.Count; i += accumulation) _steps.Add(batches.Skip(i).Take(accumulation).ToList());
        _adam = new FlatAdamW(model, s.Optimizer);
        optimizerState?.RestoreInto(_adam);
    }

    /// <summary>The optimiser steps.</summary>
    public int Count => _steps.Count;

    /// <summary>The micro-batches of a step (the last step may have fewer).</summary>
    public int MicroBatches(int step) => _steps[step].Count;

    /// <summary>The values of one flat gradient.</summary>
    public long GradientLength => _adam.GradientLength;

    /// <summary>
    /// Micro-batch <paramref name="micro"/> of <paramref name="step"/>: its gradient (the loss summed over its pairs, divided by
    /// the step's pairs) into the optimiser's zeroed gradients; returns its six sums.
    /// </summary>
    public double[] Backward(int step, int micro)
    {
        using var scope = NewDisposeScope();
        _adam.ZeroGrad();
        var batch = _steps[step][micro];
        int pairsInStep = _steps[step].Sum(m => m.Count);
        var device = _model.Device;
        bool explore = _s.Loss.SelmAlpha > 0;
        var rows = batch.Select(p => new PromptResponse(p.Prompt, p.Chosen))
            .Concat(batch.Select(p => new PromptResponse(p.Prompt, p.Rejected)))
            .Concat(explore ? batch.Select(p =>
                new PromptResponse(p.Prompt, p.Explore ?? throw new ArgumentException("loss.selm_alpha needs pairs with a sampled response")))
                : []).ToList();
        var (tokenLogProbs, _) = ResponseLogProbs.Forward(_model, rows, _pad);
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
        var loss = PreferenceLoss.PerPair(_s.Loss, x);
        (loss.sum() / pairsInStep).backward();

        using var noGrad = no_grad();
        var chosenReward = _s.Loss.Beta * (x.PolicyChosen - x.ReferenceChosen);
        var rejectedReward = _s.Loss.Beta * (x.PolicyRejected - x.ReferenceRejected);
        // One device-to-host copy (one sync) for all six sums rather than one each.
        return stack(new[] { loss.sum(), chosenReward.sum(), rejectedReward.sum(),
                (chosenReward > rejectedReward).sum(), x.PolicyChosen.sum(), x.PolicyRejected.sum() }
            .Select(t => t.to(ScalarType.Float64))).cpu().data<double>().ToArray();
    }

    /// <summary>Adds the gradient <see cref="Backward"/> just computed into the step's sum.</summary>
    public void AddOwn() => _adam.AddGradientsTo(SumBuffer);

    /// <summary>The gradient <see cref="Backward"/> just computed, as float32 values on the host (to send to the coordinator).</summary>
    public float[] Gradient()
    {
        using var scope = NewDisposeScope();
        var copy = zeros(_adam.GradientLength, ScalarType.Float32, _model.Device);
        _adam.AddGradientsTo(copy);   // 0 + g: exactly g
        return Host(copy);
    }

    /// <summary>Adds another replica's micro-batch gradient into the step's sum (in micro-batch order, as <see cref="AddOwn"/> would).</summary>
    public void Add(ReadOnlySpan<float> gradient)
    {
        if (gradient.Length != _adam.GradientLength)
            throw new ArgumentException($"a gradient of {gradient.Length} values, expected {_adam.GradientLength}");
        using var scope = NewDisposeScope();
        SumBuffer.add_(tensor(gradient.ToArray(), ScalarType.Float32).to(_model.Device));
    }

    /// <summary>The step's summed gradient on the host (what the coordinator sends every other replica).</summary>
    public float[] Sum()
    {
        using var scope = NewDisposeScope();
        return Host(SumBuffer);
    }

    /// <summary>Replaces the step's sum with the coordinator's (on a replica that is not the coordinator).</summary>
    public void SetSum(float[] sum)
    {
        if (sum.Length != _adam.GradientLength) throw new ArgumentException($"a gradient sum of {sum.Length} values, expected {_adam.GradientLength}");
        using var scope = NewDisposeScope();
        SumBuffer.copy_(tensor(sum, ScalarType.Float32).to(_model.Device));
    }

    /// <summary>
    /// Ends a step: the summed gradient clipped and applied by AdamW at the step's learning rate, the sum cleared.
    /// <paramref name="sums"/> are the step's micro-batches' sums added in micro-batch order.
    /// </summary>
    public StepMetrics Apply(int step, double[] sums) => Apply(step, sums, inPlace: false);

    /// <summary>
    /// Ends a step of one micro-batch trained alone with the gradient <see cref="Backward"/> left in place: the same bits as
    /// <see cref="AddOwn"/> then <see cref="Apply(int, double[])"/> (0 + g is g, and g is the weights' dtype already).
    /// </summary>
    public StepMetrics ApplyInPlace(int step, double[] sums) => Apply(step, sums, inPlace: true);

    private StepMetrics Apply(int step, double[] sums, bool inPlace)
    {
        using var scope = NewDisposeScope();
        int pairsInStep = _steps[step].Sum(m => m.Count);
        _adam.LearningRate = _s.Optimizer.LearningRateAt(step, _steps.Count);
        double meanLoss = sums[0] / pairsInStep;
        if (!double.IsFinite(meanLoss)) throw new NonFiniteLossException(step, meanLoss);
        if (!inPlace)
        {
            _adam.SetGradients(SumBuffer);
            SumBuffer.zero_();
        }
        double gradNorm = _adam.ClipGradients().item<float>();
        _adam.StepOnce();
        return new StepMetrics(step, meanLoss, sums[1] / pairsInStep, sums[2] / pairsInStep, sums[3] / pairsInStep,
            (sums[1] - sums[2]) / pairsInStep, sums[4] / pairsInStep, sums[5] / pairsInStep, gradNorm, _adam.LearningRate);
    }

    /// <summary>
    /// A flat float32 tensor's values on the host, copied in blocks (an element-wise copy costs ~20 ns a value) of at most
    /// 2^28 values: a tensor's byte span cannot pass 2 GiB, which a model over ~536M trained parameters does.
    /// </summary>
    private static float[] Host(Tensor t)
    {
        const long Block = 1L << 28;
        var values = new float[t.NumberOfElements];
        for (long at = 0; at < values.LongLength; at += Block)
        {
            using var part = t.narrow(0, at, Math.Min(Block, values.LongLength - at)).cpu().contiguous();
            MemoryMarshal.Cast<byte, float>(part.bytes).CopyTo(values.AsSpan((int)at));
        }
        return values;
    }

    /// <summary>After the last step: the optimiser's moments into the state passed in (carried between rounds).</summary>
    public void Finish() => _state?.CaptureFrom(_adam);

    public void Dispose()
    {
        _sumBuffer?.Dispose();
        _adam.Dispose();
    }
}
