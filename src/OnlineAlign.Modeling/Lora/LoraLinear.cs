using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace OnlineAlign.Modeling.Lora;

#pragma warning disable IDE1006 // snake_case fields are the checkpoint's names

/// <summary>
/// A linear layer y = x W^T + b that may carry a LoRA adapter: y + scaling * B(A(dropout(x))). Its weight and bias keep
/// nn.Linear's names, so a model without adapters has exactly a transformers state dict, and the adapter's are
/// PEFT's (q_proj.lora_A.weight, q_proj.lora_B.weight). The adapter computes in its own dtype (float32 while the base
/// is bf16, as PEFT does) and its result is cast back.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    // Registered once an adapter is added; parameters are read through them because moving a model replaces its parameters.
    private AdapterMatrix? lora_A, lora_B;
    private double _scaling;
    private double _dropout;

    public LoraLinear(long inFeatures, long outFeatures, bool hasBias, Device? device = null, ScalarType? dtype = null) : base(nameof(LoraLinear))
    {
        // Zeros, not torch's default draw: every model is initialised from its own generator or loaded afterwards.
        weight = nn.Parameter(zeros(outFeatures, inFeatures, dtype, device));
        if (hasBias) bias = nn.Parameter(zeros(outFeatures, dtype, device));
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public Parameter? Bias => bias;
    public bool HasAdapter => lora_A is not null;
    /// <summary>False while a caller has switched adapters off (the base model, e.g. as the reference).</summary>
    public bool AdapterEnabled { get; set; } = true;
    public bool AdapterActive => HasAdapter && AdapterEnabled;
    /// <summary>Draws dropout masks while training; null: no dropout (evaluation, generation, or dropout 0).</summary>
    public Generator? DropoutGenerator { get; internal set; }

    /// <summary>
    /// True on this thread while a checkpointed layer runs its forward without gradients: it is still training, so it
    /// draws the dropout masks its recomputation will replay.
    /// </summary>
    [ThreadStatic] internal static bool InCheckpointedForward;

    public Parameter AdapterA => lora_A?.Weight ?? throw new InvalidOperationException("no adapter");
    public Parameter AdapterB => lora_B?.Weight ?? throw new InvalidOperationException("no adapter");
    internal double Scaling => _scaling;

    /// <summary>Adds an adapter: A from kaiming_uniform(a = sqrt 5) drawn from <paramref name="generator"/>, B zeros (PEFT's init), in float32.</summary>
    internal void AddAdapter(int rank, double scaling, double dropout, Generator generator)
    {
        if (HasAdapter) throw new InvalidOperationException("this layer already has an adapter");
        long inFeatures = weight.shape[1], outFeatures = weight.shape[0];
        var device = weight.device;
        double bound = 1.0 / Math.Sqrt(inFeatures); // kaiming_uniform with a = sqrt(5) reduces to 1/sqrt(fan_in)
        var a = empty(rank, inFeatures, ScalarType.Float32).uniform_(-bound, bound, generator).to(device);
        lora_A = new AdapterMatrix(nn.Parameter(a));
        lora_B = new AdapterMatrix(nn.Parameter(zeros(outFeatures, rank, ScalarType.Float32, device)));
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
        _scaling = scaling;
        _dropout = dropout;
    }

    public override Tensor forward(Tensor x)
    {
        var y = F.linear(x, weight, bias);
        if (!AdapterActive) return y;
        using var scope = NewDisposeScope();
        var (a, b) = (AdapterA, AdapterB);
        var h = x.to(a.dtype);
        if (_dropout > 0 && DropoutGenerator is not null && (is_grad_enabled() || InCheckpointedForward))
        {
            // Masks come from the trainer's generator (on the CPU: TorchSharp's generators are CPU ones), so a
            // resumed round draws the same masks; F.dropout would draw from torch's process-wide generator.
            var keep = (rand(h.shape, generator: DropoutGenerator) >= _dropout).to(h.device);
            h = h * keep / (1 - _dropout);
        }
        var delta = F.linear(F.linear(h, a), b) * _scaling;
        return (y + delta.to(y.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>W + scaling * B A, in the base's dtype: the weight a merged model carries.</summary>
    public Tensor MergedWeight()
    {
        using var noGrad = no_grad();
        if (!HasAdapter) return weight.clone();
        using var scope = NewDisposeScope();
        var delta = AdapterB.matmul(AdapterA) * _scaling;
        return (weight.to(ScalarType.Float32) + delta).to(weight.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Holds one adapter matrix under the name "weight", so the state dict reads lora_A.weight as PEFT's does.</summary>
    private sealed class AdapterMatrix : nn.Module
    {
        private readonly Parameter weight;
        public Parameter Weight => weight;

        public AdapterMatrix(Parameter matrix) : base(nameof(AdapterMatrix))
        {
            weight = matrix;
            RegisterComponents();
        }
    }
}
