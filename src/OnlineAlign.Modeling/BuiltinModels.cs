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

    public static ModelConfig ByName(string name) => name switch
    {
        "tiny" => Tiny,
        _ => throw new ArgumentException($"built-in model '{name}' does not exist (built-in: tiny)"),
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
        var copy = new DecoderLM(model.Config).Place(model.Device, model.DType);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var source = model.MergedState();
        foreach (var (name, p) in copy.state_dict()) p.copy_(source[name]);
        return copy;
    }
}
