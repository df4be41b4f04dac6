using OnlineAlign.Specs;
using System.Diagnostics.CodeAnalysis;
using TorchSharp;
using TorchSharp.Modules;
using OnlineAlign.Modeling.Lora;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace OnlineAlign.Modeling;

// A Llama/Qwen2/Qwen3/Gemma 3 decoder, read top to bottom like the paper's figure:
//   tokens -> embed -> [ x + Attn(RMSNorm(x)) ; x + SwiGLU(RMSNorm(x)) ] x L -> RMSNorm -> lm_head.
// The families differ in small pieces, each switched by the config: Qwen3 and Gemma 3 norm q and k per head before the
// rotary embedding; Gemma 3 scales the embedding by sqrt(hidden), norms by (1 + w), norms each sub-layer's output too
// (DecoderLayer.Sandwich), gates its MLP with tanh-GELU, lets some layers attend only to a sliding window (with their own
// rotary base), and may soft-cap attention scores and logits.
// Field names are the Hugging Face parameter names (model.layers.0.self_attn.q_proj.weight, ...), so
// state_dict() matches a transformers checkpoint key for key.
#pragma warning disable IDE1006 // snake_case fields are the checkpoint's names

/// <summary>Root-mean-square norm, computed in float32 like transformers, then cast back.</summary>
public sealed class RMSNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;
    private readonly bool _unitOffset;

    /// <param name="unitOffset">Gemma's form: scales by (1 + weight), the weight stored as its offset from 1 (so initially 0)</param>
    public RMSNorm(long size, double eps, bool unitOffset = false, Device? device = null, ScalarType? dtype = null) : base(nameof(RMSNorm))
    {
        weight = nn.Parameter(unitOffset ? zeros(size, dtype, device) : ones(size, dtype, device));
        _eps = eps;
        _unitOffset = unitOffset;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * rsqrt(x32.pow(2).mean([-1L], keepdim: true) + _eps);
        // Each as transformers does it: Llama casts back, then scales; Gemma scales in float32, then casts back.
        var result = _unitOffset ? (normed * (weight.to(ScalarType.Float32) + 1)).to(x.dtype) : weight * normed.to(x.dtype);
        return result.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Rotary position embeddings (rotate-half convention), evaluated at explicit positions. Not a module:
/// its frequencies are derived from the config, never saved in a checkpoint.
/// </summary>
public sealed class Rotary
{
    private readonly int _headDim;
    private readonly double _theta;
    private Tensor? _invFreq;

    public Rotary(int headDim, double theta) { _headDim = headDim; _theta = theta; }

    /// <summary>
    /// cos and signed sin (sin with its first half negated) of shape [B, 1, T, headDim] for positions [B, T];
    /// computed once per forward and shared by every layer.
    /// </summary>
    public (Tensor Cos, Tensor SignedSin) At(Tensor positions, ScalarType dtype)
    {
        if (_invFreq is null || _invFreq.device_type != positions.device_type || _invFreq.device_index != positions.device_index)
        {
            var old = _invFreq;
            _invFreq = (1.0 / pow(_theta,
                arange(0, _headDim, 2, dtype: ScalarType.Int64, device: positions.device).to(ScalarType.Float32) / _headDim)).DetachFromDisposeScope();
            old?.Dispose();
        }
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * _invFreq;   // [B, T, hd/2]
        var cos = freqs.cos();
        var sin = freqs.sin();
        return (cat([cos, cos], -1).unsqueeze(1).to(dtype), cat([-sin, sin], -1).unsqueeze(1).to(dtype));
    }

    /// <summary>
    /// x * cos + rotate_half(x) * sin, with rotate_half(x) = [-x2, x1] written as roll(x) * [-1, 1] so the
    /// sign lives in the shared signed sin: three kernels per call instead of five (decoding is launch-bound).
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor signedSin) =>
        (x * cos).addcmul_(x.roll(x.shape[^1] / 2, -1), signedSin, One);

    private static readonly Scalar One = 1;
}

/// <summary>Per-layer key/value cache, preallocated to the longest sequence the generation can reach.</summary>
public sealed class KvCache : IDisposable
{
    public Tensor[] Keys { get; }
    public Tensor[] Values { get; }
    /// <summary>
    /// Each column's token position [B, capacity], kept for sliding-window layers (null without them): a row's window
    /// counts positions, and pads between a shared prefix and a row's own tokens make columns differ from positions.
    /// </summary>
    public Tensor? Positions { get; private set; }
    /// <summary>How many positions are filled.</summary>
    public long Length { get; set; }

    public KvCache(ModelConfig config, long batch, long capacity, ScalarType dtype, Device device)
    {
        Keys = new Tensor[config.NumLayers];
        Values = new Tensor[config.NumLayers];
        for (int i = 0; i < config.NumLayers; i++)
        {
            Keys[i] = zeros([batch, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
            Values[i] = zeros([batch, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
        }
        if (config.HasSlidingLayers) Positions = zeros([batch, capacity], ScalarType.Int64, device).DetachFromDisposeScope();
    }

    public long Capacity => Keys[0].shape[2];

    private KvCache(Tensor[] keys, Tensor[] values, Tensor? positions, long length)
    {
        Keys = keys;
        Values = values;
        Positions = positions;
        Length = length;
    }

    /// <summary>A new cache whose row i is this cache's row rows[i] (rows may repeat: one prompt's cache for its N samples).</summary>
    public KvCache Select(Tensor rows) => new(
        Keys.Select(k => k.index_select(0, rows).DetachFromDisposeScope()).ToArray(),
        Values.Select(v => v.index_select(0, rows).DetachFromDisposeScope()).ToArray(),
        Positions?.index_select(0, rows).DetachFromDisposeScope(), Length);

    /// <summary>Keeps only the given rows, in that order (finished rows leaving a batch).</summary>
    public void Keep(Tensor rows)
    {
        for (int i = 0; i < Keys.Length; i++)
        {
            var (k, v) = (Keys[i].index_select(0, rows).DetachFromDisposeScope(), Values[i].index_select(0, rows).DetachFromDisposeScope());
            Keys[i].Dispose();
            Values[i].Dispose();
            (Keys[i], Values[i]) = (k, v);
        }
        if (Positions is not null)
        {
            var kept = Positions.index_select(0, rows).DetachFromDisposeScope();
            Positions.Dispose();
            Positions = kept;
        }
    }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
        Positions?.Dispose();
    }
}

/// <summary>
/// Grouped-query self-attention with optional q/k/v bias (Qwen2), per-head q/k norms (Qwen3, Gemma 3), its own score
/// scale (Gemma 3's query_pre_attn_scalar) and score soft-capping.
/// </summary>
public sealed class Attention : nn.Module
{
    private readonly LoraLinear q_proj, k_proj, v_proj, o_proj;
    private readonly RMSNorm? q_norm, k_norm;
    private readonly int _heads, _kvHeads, _headDim;
    private readonly double? _queryScale, _softcap;

    public Attention(ModelConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(Attention))
    {
        _heads = c.NumHeads; _kvHeads = c.NumKeyValueHeads; _headDim = c.HeadDim;
        q_proj = new LoraLinear(c.HiddenSize, c.NumHeads * c.HeadDim, hasBias: c.AttentionBias, device, dtype);
        k_proj = new LoraLinear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, hasBias: c.AttentionBias, device, dtype);
        v_proj = new LoraLinear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, hasBias: c.AttentionBias, device, dtype);
        o_proj = new LoraLinear(c.NumHeads * c.HeadDim, c.HiddenSize, hasBias: false, device, dtype);
        if (c.QkNorm)
        {
            q_norm = new RMSNorm(c.HeadDim, c.RmsNormEps, unitOffset: c.GemmaNorms, device, dtype);
            k_norm = new RMSNorm(c.HeadDim, c.RmsNormEps, unitOffset: c.GemmaNorms, device, dtype);
        }
        // The attention kernel scales scores by 1/sqrt(head_dim); Gemma 3 asks 1/sqrt(query_pre_attn_scalar): the
        // queries carry the ratio.
        if (c.QueryPreAttnScalar > 0 && c.QueryPreAttnScalar != c.HeadDim) _queryScale = Math.Sqrt(c.HeadDim / c.QueryPreAttnScalar);
        _softcap = c.AttnLogitSoftcapping;
        RegisterComponents();
    }

    // q, k and v weights (and biases) stacked into one projection while FuseProjections is on.
    private Tensor? _qkvWeight, _qkvBias;

    /// <summary>Stacks q/k/v into one projection for no-grad forwards (true), or drops the copy (false).</summary>
    internal void FuseProjections(bool on)
    {
        _qkvWeight?.Dispose(); _qkvBias?.Dispose();
        _qkvWeight = _qkvBias = null;
        if (!on) return;
        using var noGrad = no_grad();
        _qkvWeight = cat([q_proj.Weight, k_proj.Weight, v_proj.Weight], 0).DetachFromDisposeScope();
        if (q_proj.Bias is not null)
            _qkvBias = cat([q_proj.Bias, k_proj.Bias!, v_proj.Bias!], 0).DetachFromDisposeScope();
    }

    /// <param name="cos">cos from <see cref="Rotary.At"/>.</param>
    /// <param name="signedSin">sin with its first half negated, from <see cref="Rotary.At"/>.</param>
    /// <param name="mask">additive float [B, 1, T, S] (0 = attend, -inf = not), or [B, 1, group*T, S] already tiled for
    /// grouped-query attention; null = plain causal over this call's tokens.</param>
    public Tensor forward(Tensor x, Tensor cos, Tensor signedSin, Tensor? mask, KvCache? cache, int layer)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor q, k, v;
        // The stacked copy holds the base weights only: a layer whose adapter is on takes the plain path.
        if (_qkvWeight is not null && !is_grad_enabled() && !q_proj.AdapterActive && !k_proj.AdapterActive && !v_proj.AdapterActive)
        {
            // Decoding is launch-bound: one matmul for q, k and v, and (without q/k norms) one rotary for q and k together.
            var qkv = F.linear(x, _qkvWeight, _qkvBias).view(b, t, _heads + 2 * _kvHeads, _headDim);
            if (q_norm is null)
            {
                var qk = Rotary.Apply(qkv.narrow(2, 0, _heads + _kvHeads).transpose(1, 2), cos, signedSin);
                q = qk.narrow(1, 0, _heads);
                k = qk.narrow(1, _heads, _kvHeads);
            }
            else (q, k) = NormedAndRotated(qkv.narrow(2, 0, _heads), qkv.narrow(2, _heads, _kvHeads), cos, signedSin);
            v = qkv.narrow(2, _heads + _kvHeads, _kvHeads).transpose(1, 2);
        }
        else
        {
            (q, k) = NormedAndRotated(q_proj.forward(x).view(b, t, _heads, _headDim), k_proj.forward(x).view(b, t, _kvHeads, _headDim), cos, signedSin);
            v = v_proj.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        }
        if (_queryScale is double scale) q = q * scale;

        if (cache is not null)
        {
            long start = cache.Length, end = start + t;
            cache.Keys[layer].narrow(2, start, t).copy_(k);
            cache.Values[layer].narrow(2, start, t).copy_(v);
            k = cache.Keys[layer].narrow(2, 0, end);
            v = cache.Values[layer].narrow(2, 0, end);
        }
        int group = _heads / _kvHeads;
        Tensor y;
        if (mask is null)
        {
            // TorchSharp's SDPA has no enable_gqa: repeat each K/V head for its group of query heads.
            if (group > 1) { k = k.repeat_interleave(group, dim: 1); v = v.repeat_interleave(group, dim: 1); }
            y = Attend(q, k, v, null);
        }
        else if (group > 1)
        {
            // With an explicit mask, fold each group's query heads into the query axis instead of copying
            // the (cached, long) K/V: q [B, kvH, group*T, d] against k/v [B, kvH, S, d], mask repeated per head.
            var grouped = q.reshape(b, _kvHeads, group * t, _headDim);
            // A one-token step's mask broadcasts over the group (a view); a longer call's must be tiled (Hidden tiles it once).
            var groupedMask = t == 1 ? mask.expand(-1, -1, group, -1) : mask.shape[2] == group * t ? mask : mask.repeat(1, 1, group, 1);
            y = Attend(grouped, k, v, groupedMask).reshape(b, _heads, t, _headDim);
        }
        else
        {
            y = Attend(q, k, v, mask);
        }
        return o_proj.forward(y.transpose(1, 2).reshape(b, t, _heads * _headDim));
    }

    /// <summary>q [B, T, H, d] and k [B, T, kvH, d] normed per head (when the family does), rotated, as [B, heads, T, d].</summary>
    private (Tensor Q, Tensor K) NormedAndRotated(Tensor q, Tensor k, Tensor cos, Tensor signedSin)
    {
        if (q_norm is not null) { q = q_norm.forward(q); k = k_norm!.forward(k); }
        return (Rotary.Apply(q.transpose(1, 2), cos, signedSin), Rotary.Apply(k.transpose(1, 2), cos, signedSin));
    }

    /// <summary>softmax(q k^T / sqrt(d) + mask) v; mask null = causal over these tokens.</summary>
    private Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        if (_softcap is not double cap)
            return mask is null ? F.scaled_dot_product_attention(q, k, v, is_casual: true) : F.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        // The fused kernel cannot cap scores: transformers' eager attention, written out (softmax in float32).
        var scores = matmul(q, k.transpose(-2, -1)) * (1.0 / Math.Sqrt(_headDim));
        scores = (scores / cap).tanh() * cap;
        if (mask is null)
        {
            long t = q.shape[2], s = k.shape[2];
            scores = scores.masked_fill(ones([t, s], ScalarType.Bool, q.device).triu(s - t + 1), float.NegativeInfinity);
        }
        else scores = scores + mask;
        return matmul(F.softmax(scores.to(ScalarType.Float32), -1).to(q.dtype), v);
    }
}

/// <summary>Gated feed-forward: down(act(gate(x)) * up(x)), act = silu (SwiGLU) or tanh-approximated GELU (Gemma 3's GeGLU).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly LoraLinear gate_proj, up_proj, down_proj;
    private readonly bool _gelu;

    public Mlp(ModelConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(Mlp))
    {
        gate_proj = new LoraLinear(c.HiddenSize, c.IntermediateSize, hasBias: false, device, dtype);
        up_proj = new LoraLinear(c.HiddenSize, c.IntermediateSize, hasBias: false, device, dtype);
        down_proj = new LoraLinear(c.IntermediateSize, c.HiddenSize, hasBias: false, device, dtype);
        _gelu = c.HiddenAct == "gelu_pytorch_tanh";
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var gate = gate_proj.forward(x);
        return down_proj.forward((_gelu ? F.gelu(gate, GELU.Approximate.tanh) : F.silu(gate)) * up_proj.forward(x));
    }
}

/// <summary>One transformer block: pre-norm (Llama, Qwen), or with Gemma 3's "sandwich" norms.</summary>
public sealed class DecoderLayer : nn.Module
{
    private readonly Attention self_attn;
    private readonly Mlp mlp;
    private readonly RMSNorm input_layernorm, post_attention_layernorm;
    private readonly RMSNorm? pre_feedforward_layernorm, post_feedforward_layernorm;

    public DecoderLayer(ModelConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(DecoderLayer))
    {
        self_attn = new Attention(c, device, dtype);
        mlp = new Mlp(c, device, dtype);
        input_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, c.GemmaNorms, device, dtype);
        post_attention_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, c.GemmaNorms, device, dtype);
        if (c.GemmaNorms)
        {
            pre_feedforward_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, unitOffset: true, device, dtype);
            post_feedforward_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, unitOffset: true, device, dtype);
        }
        RegisterComponents();
    }

    internal void FuseProjections(bool on) => self_attn.FuseProjections(on);

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        // Intermediates are freed as the layer ends, not when the caller's scope does: what the backward pass needs,
        // autograd keeps; the rest would otherwise hold a whole forward's worth of memory.
        using var scope = NewDisposeScope();
        var y = pre_feedforward_layernorm is null ? PreNorm(x, cos, sin, mask, cache, layer) : Sandwich(x, cos, sin, mask, cache, layer);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Llama, Qwen: each sub-layer reads a normed copy of the stream and adds its output to it.</summary>
    private Tensor PreNorm(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        x = x + self_attn.forward(input_layernorm.forward(x), cos, sin, mask, cache, layer);
        return x + mlp.forward(post_attention_layernorm.forward(x));
    }

    /// <summary>Gemma 3: each sub-layer's output is normed too before it joins the stream.</summary>
    private Tensor Sandwich(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        x = x + post_attention_layernorm.forward(self_attn.forward(input_layernorm.forward(x), cos, sin, mask, cache, layer));
        return x + post_feedforward_layernorm!.forward(mlp.forward(pre_feedforward_layernorm!.forward(x)));
    }
}

/// <summary>What a layer's attention takes besides its input: the rotary cos and signed sin, and the additive mask (null = causal).</summary>
public readonly record struct AttentionInputs(Tensor Cos, Tensor Sin, Tensor? Mask);

/// <summary>The decoder stack ("model." in checkpoints).</summary>
public sealed class DecoderBody : nn.Module
{
    // A public field, not a property: TorchSharp registers submodules from fields, and the name is the checkpoint key.
    [SuppressMessage("Design", "CA1051", Justification = "TorchSharp module field; its name is the checkpoint key")]
    public readonly Embedding embed_tokens;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly RMSNorm norm;
    private readonly bool[] _sliding;
    /// <summary>Gemma 3 scales the embedding by sqrt(hidden_size) (a float32 constant, like transformers' buffer); 0 = not.</summary>
    private readonly float _embedScale;

    public DecoderBody(ModelConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(DecoderBody))
    {
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize, device: device, dtype: dtype);
        layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(_ => new DecoderLayer(c, device, dtype)).ToArray());
        norm = new RMSNorm(c.HiddenSize, c.RmsNormEps, c.GemmaNorms, device, dtype);
        _sliding = Enumerable.Range(0, c.NumLayers).Select(c.IsSlidingLayer).ToArray();
        _embedScale = c.GemmaNorms ? MathF.Sqrt(c.HiddenSize) : 0;
        RegisterComponents();
    }

    internal void FuseProjections(bool on)
    {
        foreach (var layer in layers) layer.FuseProjections(on);
    }

    /// <param name="global">what full-attention layers take</param>
    /// <param name="sliding">what sliding-window layers take (their rotary base and banded mask)</param>
    /// <param name="checkpoint">gradient checkpointing per layer (with gradients on, no cache), and the LoRA dropout generator it replays</param>
    public Tensor forward(Tensor ids, AttentionInputs global, AttentionInputs sliding, KvCache? cache, (bool On, Generator? Dropout) checkpoint = default)
    {
        var x = embed_tokens.forward(ids);
        if (_embedScale != 0) x = x * tensor(_embedScale, ScalarType.Float32, x.device).to(x.dtype);
        if (checkpoint.On && cache is null && is_grad_enabled())
        {
            // A frozen embedding (LoRA) gives an input that needs no gradient: the checkpointed layers would then be
            // skipped by the backward pass, so the input is made to need one.
            if (!x.requires_grad) x = x.detach().requires_grad_(true);
            for (int i = 0; i < layers.Count; i++)
            {
                var a = _sliding[i] ? sliding : global;
                x = Training.CheckpointedLayer.Apply(x, new(layers[i], i, a.Cos, a.Sin, a.Mask, checkpoint.Dropout));
            }
            return norm.forward(x);
        }
        for (int i = 0; i < layers.Count; i++)
        {
            var a = _sliding[i] ? sliding : global;
            x = layers[i].forward(x, a.Cos, a.Sin, a.Mask, cache, i);
        }
        return norm.forward(x);
    }
}

/// <summary>A causal language model: decoder body plus the LM head (tied to the embedding when configured).</summary>
public sealed class DecoderLM : nn.Module
{
    public ModelConfig Config { get; }
    private readonly DecoderBody model;
    private readonly Linear? lm_head;
    private readonly Rotary _rotary;
    private readonly Rotary? _localRotary;

    /// <param name="device">where the weights are made (default: the CPU); building a model to be loaded or copied where it
    /// will run skips a float32 copy on the host and its transfer (on a GPU, most of a 0.5B model's load time)</param>
    /// <param name="dtype">the weights' dtype (default: float32)</param>
    public DecoderLM(ModelConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(DecoderLM))
    {
        Config = config;
        model = new DecoderBody(config, device, dtype);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device: device, dtype: dtype);
        if (device is not null) Device = device;
        if (dtype is ScalarType type) DType = type;
        _rotary = new Rotary(config.HeadDim, config.RopeTheta);
        if (config.HasSlidingLayers) _localRotary = new Rotary(config.HeadDim, config.RopeLocalTheta);
        RegisterComponents();
    }

    /// <summary>
    /// Recompute each decoder layer in the backward pass instead of keeping its activations (training only): a layer's
    /// activations cost one hidden state, for one more forward of every layer.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>The LoRA adapters' settings when the model carries adapters (only they train); null for a plain model.</summary>
    public LoraSpec? Lora { get; internal set; }

    // Tracked here because reading them off a parameter allocates a tensor handle on every call.
    public Device Device { get; private set; } = CPU;
    public ScalarType DType { get; private set; } = ScalarType.Float32;

    /// <summary>Moves the weights to a device and/or dtype. Use this rather than to() so Device and DType stay right.</summary>
    public DecoderLM Place(Device? device = null, ScalarType? dtype = null)
    {
        if (dtype is ScalarType type) { this.to(type); DType = type; }
        if (device is not null) { this.to(device); Device = device; }
        return this;
    }

    /// <summary>Records where weights already are (they were placed by sharing another model's tensors).</summary>
    internal DecoderLM Placed(Device device, ScalarType dtype)
    {
        (Device, DType) = (device, dtype);
        return this;
    }

    /// <summary>
    /// While the returned scope lives, no-grad forwards use one stacked q/k/v projection per layer: fewer
    /// kernel launches for launch-bound decoding, for a copy of the q/k/v weights. The copy is taken now, so
    /// end the scope before the weights change (forwards with gradients never use it).
    /// </summary>
    public IDisposable FusedProjections()
    {
        model.FuseProjections(true);
        return new ProjectionScope(model);
    }

    private sealed class ProjectionScope(DecoderBody body) : IDisposable
    {
        public void Dispose() => body.FuseProjections(false);
    }

    /// <summary>Final hidden states [B, T, H].</summary>
    /// <param name="ids">token ids [B, T]</param>
    /// <param name="positions">position of each token [B, T]; null = 0..T-1 after the cache</param>
    /// <param name="mask">bool [B, 1, T, S], true = attend; null = causal, no padding before the tokens</param>
    public Tensor Hidden(Tensor ids, Tensor? positions = null, Tensor? mask = null, KvCache? cache = null)
    {
        long start = cache?.Length ?? 0;
        positions ??= arange(start, start + ids.shape[1], dtype: ScalarType.Int64, device: ids.device).unsqueeze(0).expand(ids.shape[0], -1);
        var (cos, sin) = _rotary.At(positions, DType);
        // With a cache, earlier keys exist: plain causal over this call's tokens would be wrong.
        if (mask is null && cache is not null && start > 0)
            mask = CausalMask(start, ids.shape[1], ids.device).unsqueeze(0).unsqueeze(0);
        var global = new AttentionInputs(cos, sin, Additive(mask, ids.shape[1]));
        var sliding = _localRotary is null ? global : SlidingInputs(positions, mask, cache, start, ids.shape[1]);
        var hidden = model.forward(ids, global, sliding, cache,
            (GradientCheckpointing, GradientCheckpointing ? this.Adapted().Select(l => l.Layer.DropoutGenerator).FirstOrDefault(g => g is not null) : null));
        if (cache is not null) cache.Length = start + ids.shape[1];
        return hidden;
    }

    /// <summary>A bool mask (true = attend) as the additive one attention adds, tiled for grouped-query attention.</summary>
    private Tensor? Additive(Tensor? mask, long t)
    {
        if (mask is null) return null;
        // SDPA turns a bool mask into an additive one on every call: do it once here, not once per layer.
        var additive = where(mask, 0.0f, float.NegativeInfinity).to(DType);
        // Grouped-query attention folds a group's query heads into the query axis (see Attention): a call of several
        // tokens needs the mask tiled to match, once here rather than once per layer.
        int group = Config.NumHeads / Config.NumKeyValueHeads;
        return group > 1 && t > 1 ? additive.repeat(1, 1, group, 1) : additive;
    }

    /// <summary>
    /// Sliding-window layers (Gemma 3): their own rotary base, and the mask narrowed to keys fewer than sliding_window
    /// positions behind the query. Positions, not cache columns, so a padded row sees what it would alone.
    /// </summary>
    private AttentionInputs SlidingInputs(Tensor positions, Tensor? mask, KvCache? cache, long start, long t)
    {
        var (cos, sin) = _localRotary!.At(positions, DType);
        var keyPositions = positions;
        if (cache is not null)
        {
            cache.Positions!.narrow(1, start, t).copy_(positions);
            keyPositions = cache.Positions.narrow(1, 0, start + t);
        }
        // Positions never run ahead of columns: a window at least as long as every column masks nothing more.
        if (start + t <= Config.SlidingWindow) return new(cos, sin, Additive(mask, t));
        var inWindow = (positions.unsqueeze(-1) - keyPositions.unsqueeze(1)) < Config.SlidingWindow;   // [B, T, S]
        var allowed = (mask ?? CausalMask(start, t, positions.device).unsqueeze(0).unsqueeze(0)) & inWindow.unsqueeze(1);
        return new(cos, sin, Additive(allowed, t));
    }

    /// <summary>Logits [.., V] for hidden states (soft-capped when the config says so).</summary>
    public Tensor Logits(Tensor hidden)
    {
        var logits = lm_head is not null ? lm_head.forward(hidden) : F.linear(hidden, model.embed_tokens.weight!);
        return Config.FinalLogitSoftcapping is double cap ? (logits / cap).tanh() * cap : logits;
    }

    public Tensor forward(Tensor ids) => Logits(Hidden(ids));

    /// <summary>bool [T, start+T]: query i (at absolute start+i) attends keys 0..start+i.</summary>
    public static Tensor CausalMask(long start, long t, Device device)
    {
        var q = arange(start, start + t, dtype: ScalarType.Int64, device: device).unsqueeze(1);
        var k = arange(0, start + t, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        return k <= q;
    }

    /// <summary>
    /// Re-draws the weights as transformers initialises a fresh model of these families: matrices and embeddings from
    /// N(0, std), biases 0, norms the identity. Benchmarks on random weights use it: with TorchSharp's defaults the
    /// embedding is N(0, 1), and a model whose LM head is tied to it predicts its input token with
    /// probability ~1, so every sampled response looks the same to an implicit-reward judge.
    /// </summary>
    public DecoderLM InitializeLikeTransformers(Generator generator, double std = 0.02)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(NormIdentity);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else p.normal_(0, std, generator);
        }
        return this;
    }

    /// <summary>
    /// Draws the weights as torch's modules initialise themselves (embeddings N(0, 1); linear weights and
    /// biases U(-b, b) with b = kaiming_uniform(a = sqrt 5)'s bound, 1/sqrt(fan_in); norms the identity), in parameter
    /// order, from the given generator. Module constructors draw from torch's process-wide generator, which
    /// any other thread may be drawing from at the same moment; a model's own generator makes "same seed,
    /// same weights" hold whatever else runs.
    /// </summary>
    public DecoderLM InitializeLikeTorch(Generator generator)
    {
        using var noGrad = no_grad();
        double bound = 0;
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(NormIdentity);
            else if (name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)) p.normal_(0, 1, generator);
            else
            {
                // A bias follows its weight and shares its fan-in, as in torch's Linear.reset_parameters.
                if (!name.EndsWith(".bias", StringComparison.Ordinal)) bound = KaimingUniformBound(p.shape[1]);
                p.uniform_(-bound, bound, generator);
            }
        }
        return this;
    }

    /// <summary>A norm weight that scales by 1: 1, or 0 where norms scale by (1 + weight) (Gemma 3).</summary>
    private double NormIdentity => Config.GemmaNorms ? 0.0 : 1.0;

    private static double KaimingUniformBound(long fanIn)
    {
        double a = Math.Sqrt(5);
        double gain = Math.Sqrt(2.0 / (1 + Math.Pow(a, 2)));
        return Math.Sqrt(3.0) * gain / Math.Sqrt(fanIn);
    }

    /// <summary>Trainable parameters that weight decay applies to (matrices), and those it does not (norms, biases).</summary>
    public (List<Parameter> Decay, List<Parameter> NoDecay) ParameterGroupsForDecay()
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in named_parameters().Where(p => p.parameter.requires_grad))
            (p.dim() >= 2 && !name.EndsWith("norm.weight", StringComparison.Ordinal) ? decay : noDecay).Add(p);
        return (decay, noDecay);
    }
}
