using OnlineAlign.Modeling.Lora;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling;

/// <summary>Models that need no download: shapes for the byte-level tokenizer, randomly initialised.</summary>
public static class BuiltinModels
{
    /// <summary>"tiny": a ~0.9M-parameter Llama over bytes that learns the built-in tasks on a CPU in seconds.</summary>
    public static readonly ModelConfig Tiny = new()
    {
        ModelType = "llama", VocabSize = 259, HiddenSize = 128, IntermediateSize = 352, NumLayers = 4, NumHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 32, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositions = 128,
        TieWordEmbeddings = false, PadTokenId = 0, BosTokenId = 1, EosTokenId = 2,
    };

    /// <summary>
    /// "small": ~4.6M parameters (twice tiny's width, 6 layers), the same byte vocabulary and 128 positions, for the tasks whose
    /// judging tiny does not learn (docs/experiments.md: on `reverse` tiny's judge ranks like chance after the warm start).
    /// About five times tiny's compute per token.
    /// </summary>
    public static readonly ModelConfig Small = Tiny with
    {
        HiddenSize = 256, IntermediateSize = 704, NumLayers = 6, NumHeads = 8, NumKeyValueHeads = 4, HeadDim = 32,
    };

    /// <summary>The built-in models' names, as model.builtin takes them.</summary>
    public static readonly IReadOnlyList<string> Names = ["tiny", "small"];

    public static ModelConfig ByName(string name) => name switch
    {
        "tiny" => Tiny,
        "small" => Small,
        _ => throw new ArgumentException($"built-in model '{name}' does not exist (built-in: {string.Join(", ", Names)})"),
    };

    /// <summary>A freshly initialised model; the same seed gives the same weights, whatever other threads draw.</summary>
    public static DecoderLM Create(ModelConfig config, long seed)
    {
        var model = new DecoderLM(config);
        using var generator = new Generator((ulong)seed);
        return model.InitializeLikeTorch(generator);
    }

    /// <summary>A deep copy of a model's weights (used for reference models and snapshots); adapters are merged into it.</summary>
    public static DecoderLM Clone(DecoderLM model)
    {
        var copy = new DecoderLM(model.Config, model.Device, model.DType);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var source = model.MergedState();
        foreach (var (name, p) in copy.state_dict()) p.copy_(source[name]);
        return copy;
    }
}
