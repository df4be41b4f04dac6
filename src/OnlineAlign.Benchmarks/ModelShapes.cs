using System.Diagnostics.CodeAnalysis;
using OnlineAlign.Modeling;

namespace OnlineAlign.Benchmarks;

/// <summary>Model shapes the benchmarks use (random weights).</summary>
[SuppressMessage("Naming", "CA1707", Justification = "model names with their version numbers (Qwen2-0.5B)")]
public static class ModelShapes
{
    /// <summary>Qwen2-0.5B: 494M parameters, tied embeddings, GQA 14/2.</summary>
    public static readonly ModelConfig Qwen2_0_5B = new()
    {
        ModelType = "qwen2", VocabSize = 151936, HiddenSize = 896, IntermediateSize = 4864, NumLayers = 24,
        NumHeads = 14, NumKeyValueHeads = 2, HeadDim = 64, RmsNormEps = 1e-6, RopeTheta = 1_000_000,
        MaxPositions = 32768, AttentionBias = true, TieWordEmbeddings = true, EosTokenId = 151643, PadTokenId = 151643,
    };

    /// <summary>Qwen2-1.5B: 1.54B parameters, tied embeddings, GQA 12/2.</summary>
    public static readonly ModelConfig Qwen2_1_5B = Qwen2_0_5B with
    {
        HiddenSize = 1536, IntermediateSize = 8960, NumLayers = 28, NumHeads = 12, NumKeyValueHeads = 2, HeadDim = 128,
    };

    /// <summary>Llama-3-8B: 8.03B parameters, GQA 32/8, a 128k vocabulary, untied embeddings.</summary>
    public static readonly ModelConfig Llama3_8B = new()
    {
        ModelType = "llama", VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumLayers = 32,
        NumHeads = 32, NumKeyValueHeads = 8, HeadDim = 128, RmsNormEps = 1e-5, RopeTheta = 500_000,
        MaxPositions = 8192, TieWordEmbeddings = false, BosTokenId = 128000, EosTokenId = 128001,
    };

    /// <summary>A ~52M-parameter Llama for CPU measurements.</summary>
    public static readonly ModelConfig Llama50M = new()
    {
        ModelType = "llama", VocabSize = 32000, HiddenSize = 512, IntermediateSize = 1408, NumLayers = 6,
        NumHeads = 8, NumKeyValueHeads = 8, HeadDim = 64, RmsNormEps = 1e-5, RopeTheta = 10000,
        MaxPositions = 2048, TieWordEmbeddings = false, EosTokenId = 2, PadTokenId = 0,
    };

    /// <summary>A ~20M-parameter Llama: the middle point of the CPU model-size curve.</summary>
    public static readonly ModelConfig Llama20M = Llama50M with { HiddenSize = 256, IntermediateSize = 704, NumLayers = 4, NumHeads = 4, NumKeyValueHeads = 4 };

    /// <summary>
    /// Qwen2-0.5B's depth, GQA 14/2 and biases at a tiny width: every op is cheap, so a decode step's time is
    /// its per-op overhead. On a CPU this stands in for a GPU's launch-bound decoding.
    /// </summary>
    public static readonly ModelConfig Qwen2Narrow = Qwen2_0_5B with
    {
        VocabSize = 4096, HiddenSize = 112, IntermediateSize = 256, HeadDim = 8, MaxPositions = 1024, EosTokenId = 2, PadTokenId = 0,
    };

    /// <summary>A random-weight model of a shape, initialised as transformers initialises one (seed 0), on the device.</summary>
    public static DecoderLM Random(ModelConfig config, TorchSharp.torch.Device device, TorchSharp.torch.ScalarType dtype)
    {
        using var generator = new TorchSharp.torch.Generator(0);
        return new DecoderLM(config).InitializeLikeTransformers(generator).Place(device, dtype);
    }

    /// <summary>A benchmark's --dtype: bf16, f16, or f32 (anything else).</summary>
    public static TorchSharp.torch.ScalarType DType(string name) => name switch
    {
        "bf16" => TorchSharp.torch.ScalarType.BFloat16,
        "f16" => TorchSharp.torch.ScalarType.Float16,
        _ => TorchSharp.torch.ScalarType.Float32,
    };

    public static ModelConfig ByName(string name) => name switch
    {
        "qwen2-narrow" => Qwen2Narrow,
        "llama-20m" => Llama20M,
        "qwen2-0.5b" => Qwen2_0_5B,
        "llama-50m" => Llama50M,
        "qwen2-1.5b" => Qwen2_1_5B,
        "llama-3-8b" => Llama3_8B,
        _ => throw new ArgumentException($"unknown shape '{name}' (qwen2-0.5b, qwen2-1.5b, llama-3-8b, qwen2-narrow, llama-50m, llama-20m, or a model folder)"),
    };
}
