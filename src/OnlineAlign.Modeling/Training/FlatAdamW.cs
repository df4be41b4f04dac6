using TorchSharp.Modules;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Training;

/// <summary>
/// AdamW (decoupled weight decay, PyTorch's update rule) over flat buffers: each parameter group's
/// weights, gradients and moments live in one contiguous tensor and every parameter is a view into it.
/// An update, a zeroing and a global-norm clip are then a handful of kernels instead of ~10 per
/// parameter, which matters on GPUs where each launch costs ~10 us. It also makes the optimiser state
/// three tensors per group to checkpoint. Create it after the model is on its final device and dtype.
/// With bf16 or fp16 weights the update runs on a float32 master copy and float32 moments, and the model's
/// weights are rounded from it after each step: a step of lr = 3e-5 is below half a bf16 ulp of most
/// weights, so updating the bf16 weights directly would drop most updates. The master copy lives as long
/// as the optimiser (a round): checkpoints hold the model's own weights.
/// </summary>
public sealed class FlatAdamW : IDisposable
{
    private sealed class Group
    {
        public required Tensor Weights, Grads, ExpAvg, ExpAvgSq;
        /// <summary>Float32 weights the update runs on when Weights are bf16/fp16; null for float32 models.</summary>
        public Tensor? Master;
        public required double WeightDecay;
    }

    private readonly List<Group> _groups = [];
    private readonly OptimizerSettings _settings;
    public long Step { get; private set; }
    public double LearningRate { get; set; }

    public FlatAdamW(DecoderLM model, OptimizerSettings settings)
    {
        _settings = settings;
        LearningRate = settings.LearningRate;
        var (decay, noDecay) = model.ParameterGroupsForDecay();
        using var noGrad = no_grad();
        foreach (var (parameters, wd) in new[] { (decay, settings.WeightDecay), (noDecay, 0.0) })
        {
            if (parameters.Count == 0) continue;
            var first = parameters[0];
            long total = parameters.Sum(p => p.NumberOfElements);
            var weights = empty(total, first.dtype, first.device).DetachFromDisposeScope();
            var grads = zeros(total, first.dtype, first.device).DetachFromDisposeScope();
            long offset = 0;
            foreach (var p in parameters)
            {
                if (p.dtype != first.dtype || p.device_type != first.device_type)
                    throw new InvalidOperationException("FlatAdamW needs one dtype and device per parameter group");
                long n = p.NumberOfElements;
                var slot = weights.narrow(0, offset, n);
                slot.copy_(p.flatten());
                p.set_(slot.view(p.shape));
                p.grad = grads.narrow(0, offset, n).view(p.shape);   // backward accumulates into these in place
                offset += n;
            }
            bool lowPrecision = first.dtype is ScalarType.BFloat16 or ScalarType.Float16;
            var stateType = lowPrecision ? ScalarType.Float32 : first.dtype;
            _groups.Add(new Group
            {
                Weights = weights, Grads = grads, WeightDecay = wd,
                Master = lowPrecision ? weights.to(ScalarType.Float32).DetachFromDisposeScope() : null,
                ExpAvg = zeros(total, stateType, first.device).DetachFromDisposeScope(),
                ExpAvgSq = zeros(total, stateType, first.device).DetachFromDisposeScope(),
            });
        }
    }

    public void ZeroGrad()
    {
        foreach (var g in _groups) g.Grads.zero_();
    }

    /// <summary>How many gradient values the groups hold together (the length of a flat gradient, group after group).</summary>
    public long GradientLength => _groups.Sum(g => g.Grads.NumberOfElements);

    /// <summary>Adds the gradients, group after group, into a flat (float32) accumulator of <see cref="GradientLength"/> values.</summary>
    public void AddGradientsTo(Tensor sum)
    {
        using var noGrad = no_grad();
        long offset = 0;
        foreach (var g in _groups)
        {
            long n = g.Grads.NumberOfElements;
            sum.narrow(0, offset, n).add_(g.Grads);
            offset += n;
        }
    }

    /// <summary>Sets the gradients from a flat accumulator (rounded to the weights' dtype), before clipping and a step.</summary>
    public void SetGradients(Tensor sum)
    {
        using var noGrad = no_grad();
        long offset = 0;
        foreach (var g in _groups)
        {
            long n = g.Grads.NumberOfElements;
            g.Grads.copy_(sum.narrow(0, offset, n));
            offset += n;
        }
    }

    /// <summary>Clips the global gradient norm to MaxGradNorm (0 = off) without a host sync; returns the norm before clipping.</summary>
    public Tensor ClipGradients()
    {
        using var scope = NewDisposeScope();
        var norm = _groups.Select(g => g.Grads.to(ScalarType.Float32).pow(2).sum()).Aggregate((a, b) => a + b).sqrt();
        if (_settings.MaxGradNorm > 0)
        {
            var scale = (_settings.MaxGradNorm / (norm + 1e-6)).clamp_max(1.0);
            foreach (var g in _groups) g.Grads.mul_(scale.to(g.Grads.dtype));
        }
        return norm.MoveToOuterDisposeScope();
    }

    public void StepOnce()
    {
        Step++;
        double b1 = _settings.Beta1, b2 = _settings.Beta2;
        double bias1 = 1 - Math.Pow(b1, Step), bias2 = 1 - Math.Pow(b2, Step);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var g in _groups)
        {
            var weights = g.Master ?? g.Weights;
            var grads = g.Master is null ? g.Grads : g.Grads.to(ScalarType.Float32);
            if (g.WeightDecay != 0) weights.mul_(1 - LearningRate * g.WeightDecay);
            g.ExpAvg.lerp_(grads, 1 - b1);
            g.ExpAvgSq.mul_(b2).addcmul_(grads, grads, 1 - b2);
            var denom = (g.ExpAvgSq.sqrt() / Math.Sqrt(bias2)).add_(_settings.Epsilon);
            weights.addcdiv_(g.ExpAvg, denom, -LearningRate / bias1);
            if (g.Master is not null) g.Weights.copy_(g.Master);
        }
    }

    /// <summary>The moments per group, in a fixed order, for checkpoints.</summary>
    public IReadOnlyDictionary<string, Tensor> State() => _groups
        .SelectMany((g, i) => new[] { ($"group{i}.exp_avg", g.ExpAvg), ($"group{i}.exp_avg_sq", g.ExpAvgSq) })
        .ToDictionary(x => x.Item1, x => x.Item2);

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long step)
    {
        using var noGrad = no_grad();
        foreach (var (name, t) in State())
        {
            if (!state.TryGetValue(name, out var saved)) throw new InvalidDataException($"optimizer state has no '{name}'");
            if (saved.NumberOfElements != t.NumberOfElements)
                throw new InvalidDataException($"optimizer state '{name}' has {saved.NumberOfElements} values, expected {t.NumberOfElements}");
            t.copy_(saved);
        }
        Step = step;
    }

    public void Dispose()
    {
        foreach (var g in _groups) { g.Grads.Dispose(); g.ExpAvg.Dispose(); g.ExpAvgSq.Dispose(); g.Master?.Dispose(); }
    }
}
