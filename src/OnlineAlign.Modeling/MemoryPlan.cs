using OnlineAlign.Specs;
using OnlineAlign.Modeling.Lora;

namespace OnlineAlign.Modeling;

/// <summary>
/// What a run needs in device memory, estimated from the model's config before anything loads: the models a worker
/// holds, the training step (trained copy, gradients, AdamW moments, float32 master weights, activations) and the
/// generation batch (KV cache, logits). The peak is the held models plus the larger of the step and the batch:
/// phases run one at a time on a device.
/// </summary>
public sealed record MemoryPlan(
    long HeldModels, long TrainedCopy, long Gradients, long OptimizerState, long MasterWeights, long Activations, long KvCache, long Logits)
{
    public long TrainingStep => checked(TrainedCopy + Gradients + OptimizerState + MasterWeights + Activations);
    public long Generation => checked(KvCache + Logits);
    public long Peak => checked(HeldModels + Math.Max(TrainingStep, Generation));

    /// <param name="Config">the model's shape</param>
    /// <param name="DTypeBytes">bytes per weight (2 for bf16 on GPUs, 4 for float32)</param>
    /// <param name="Lora">the adapter trained, or null for full fine-tuning</param>
    /// <param name="HeldModels">read-only models a round holds at once (the judge phase: policy, its predecessor, the initial model...)</param>
    /// <param name="TrainSequences">sequences in one training step (two per pair: chosen and rejected)</param>
    /// <param name="TrainTokens">tokens per training sequence (prompt + response)</param>
    /// <param name="TrainResponseTokens">response tokens per training sequence: only they get logits</param>
    /// <param name="GradientCheckpointing">layers recomputed in the backward pass: one hidden state kept per layer, one layer's activations at a time</param>
    /// <param name="GenerationRows">sequences decoded together</param>
    /// <param name="GenerationTokens">tokens per generated sequence (prompt + new tokens)</param>
    public sealed record Inputs(ModelConfig Config, int DTypeBytes, LoraSpec? Lora, int HeldModels, int TrainSequences, int TrainTokens, int TrainResponseTokens,
        int GenerationRows, int GenerationTokens, bool GradientCheckpointing = false);

    /// <remarks>In checked arithmetic: a config's sizes times a spec's counts can pass 64 bits (OverflowException: cannot fit).</remarks>
    public static MemoryPlan Estimate(Inputs i)
    { checked {
        var c = i.Config;
        long weights = c.ParameterCount() * i.DTypeBytes;
        long adapter = i.Lora is null ? 0 : AdapterParameters(c, i.Lora) * 4L; // adapters train in float32
        long trainable = i.Lora is null ? c.ParameterCount() : AdapterParameters(c, i.Lora);
        int trainableBytes = i.Lora is null ? i.DTypeBytes : 4;
        // A LoRA run's models share one base; each holds only its adapter.
        long held = i.Lora is null ? i.HeldModels * weights : weights + i.HeldModels * adapter;
        long tokens = (long)i.TrainSequences * i.TrainTokens;
        return new MemoryPlan(
            HeldModels: held,
            TrainedCopy: i.Lora is null ? weights : adapter,
            Gradients: trainable * trainableBytes,
            OptimizerState: trainable * 8,                                   // AdamW's two moments, float32
            MasterWeights: trainableBytes < 4 ? trainable * 4 : 0,           // float32 copy the update runs on (FlatAdamW)
            Activations: tokens * (i.GradientCheckpointing ? CheckpointedElementsPerToken(c, i.Lora) : ActivationElementsPerToken(c, i.Lora)) * i.DTypeBytes
                         // Response tokens' logits in float32, their log-softmax, and in the backward pass the gradients
                         // of both (the gather's scattered zeros, the log-softmax's): four [tokens, vocabulary] tensors.
                         + (long)i.TrainSequences * i.TrainResponseTokens * c.VocabSize * 4L * 4,
            KvCache: (long)i.GenerationRows * i.GenerationTokens * c.NumLayers * 2L * c.NumKeyValueHeads * c.HeadDim * i.DTypeBytes,
            Logits: (long)i.GenerationRows * c.VocabSize * 4L * 3);         // the last position's logits, probabilities, sort
    } }

    /// <summary>
    /// Sequences to decode together within <paramref name="budgetBytes"/>: each holds its KV cache for
    /// <paramref name="tokensPerRow"/> positions and its last logits (with the sampler's copies), as the plan counts them.
    /// </summary>
    public static int GenerationRows(ModelConfig c, int dtypeBytes, int tokensPerRow, long budgetBytes, int maxRows)
    {
        long perRow = (long)tokensPerRow * c.NumLayers * 2L * c.NumKeyValueHeads * c.HeadDim * dtypeBytes + c.VocabSize * 4L * 3;
        return (int)Math.Clamp(budgetBytes / perRow, 1, maxRows);
    }

    /// <summary>r x (in + out) per adapted projection.</summary>
    public static long AdapterParameters(ModelConfig c, LoraSpec lora)
    {
        long q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, h = c.HiddenSize, m = c.IntermediateSize;
        long perLayer = lora.TargetModules.Distinct().Sum(name => name switch
        {
            "q_proj" => h + q, "k_proj" or "v_proj" => h + kv, "o_proj" => q + h,
            "gate_proj" or "up_proj" => h + m, "down_proj" => m + h, _ => 0,
        });
        return perLayer * lora.Rank * c.NumLayers;
    }

    /// <summary>
    /// Tensors a decoder layer keeps for its backward pass, per token, counted from this model's forward (DecoderLM.cs)
    /// and the inputs each autograd function saves: the residual stream at both norms, the normalised inputs where a
    /// weight or adapter needs them, the attention kernel's query, keys and values (repeated to every query head under
    /// GQA) and output, the output projection's input, and SwiGLU's gate, silu(gate), up and (for a trained down
    /// projection) product. A frozen base saves only what its adapters and the gradient's path need. Rotary embeddings
    /// save no activation (their cos and sin are constants). Qwen3's and Gemma 3's q/k norms save their inputs (q and k),
    /// Gemma 3's norms of each sub-layer's output save that output. (Soft-capped attention's written-out scores grow with
    /// the square of the sequence and are not counted.)
    /// </summary>
    public static long ActivationElementsPerToken(ModelConfig c, LoraSpec? lora)
    {
        checked {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, m = c.IntermediateSize;
        bool Trained(params string[] modules) => lora is null || modules.Any(lora.TargetModules.Contains);
        long attentionKernel = c.NumHeads == c.NumKeyValueHeads ? 2 * q + 2 * kv : 4 * q;
        long perLayer = 2 * h                                                   // residual stream, saved by each norm
            + (Trained("q_proj", "k_proj", "v_proj") ? h : 0)                  // normalised input of q, k, v
            + (Trained("gate_proj", "up_proj") ? h : 0)                        // normalised input of the MLP
            + attentionKernel + (Trained("o_proj") ? q : 0)
            + 3 * m + (Trained("down_proj") ? m : 0)
            + (c.QkNorm ? q + kv : 0)
            + (c.GemmaNorms ? 2 * h : 0);
        return c.NumLayers * perLayer + 2 * h;
        }
    }

    /// <summary>With checkpointing: each layer's input, plus one layer's activations while it is recomputed.</summary>
    public static long CheckpointedElementsPerToken(ModelConfig c, LoraSpec? lora) => checked(
        c.NumLayers * (long)c.HiddenSize + (ActivationElementsPerToken(c, lora) - 2L * c.HiddenSize) / c.NumLayers + 2L * c.HiddenSize);

    public string Describe(string device, long? deviceBytes = null) =>
        $"peak {Gib(Peak)} on {device}{(deviceBytes is long d ? $" of {Gib(d)}" : "")}: held models {Gib(HeldModels)}; training step {Gib(TrainingStep)} " +
        $"(trained copy {Gib(TrainedCopy)}, gradients {Gib(Gradients)}, AdamW moments {Gib(OptimizerState)}, float32 master weights {Gib(MasterWeights)}, " +
        $"activations {Gib(Activations)}); generation {Gib(Generation)} (KV cache {Gib(KvCache)}, logits {Gib(Logits)})";

    public static string Gib(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F1} GiB" : $"{bytes / (double)(1 << 20):F0} MiB";
}
