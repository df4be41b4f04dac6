using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Specs;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>fixtures/hf/llama-tiny with LoRA adapters as a trained round holds them.</summary>
internal static class AdaptedLlamaTiny
{
    /// <summary>Rank 4 on the query and value projections: PEFT's default targets for Llama.</summary>
    public static readonly LoraSpec QueryValue = new() { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] };

    public static DecoderLM Base() => HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));

    /// <summary>B drawn too (PEFT starts it at zero, which would make every comparison with the base trivial).</summary>
    public static DecoderLM Adapted(LoraSpec settings, ulong seed)
    {
        var model = Base();
        using var generator = new Generator(seed);
        model.AddAdapters(settings, generator);
        using var noGrad = no_grad();
        foreach (var (_, layer) in model.Adapted()) layer.AdapterB.normal_(0, 0.05, generator);
        return model;
    }
}
