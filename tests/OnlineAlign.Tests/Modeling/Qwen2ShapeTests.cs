using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>The Qwen2 family's differences from Llama: q/k/v bias, tied embeddings, rope_theta at the top level.</summary>
public class Qwen2ShapeTests
{
    private static readonly ModelConfig SmallQwen2 = new()
    {
        ModelType = "qwen2", VocabSize = 97, HiddenSize = 56, IntermediateSize = 80, NumLayers = 2, NumHeads = 7,
        NumKeyValueHeads = 1, HeadDim = 8, RopeTheta = 1_000_000, MaxPositions = 128, AttentionBias = true,
        TieWordEmbeddings = true, EosTokenId = 96, PadTokenId = 96,
    };

    [Fact]
    public void TiedQwen2SavesWithoutLmHeadAndReloadsIdentically()
    {
        manual_seed(5);
        using var model = new DecoderLM(SmallQwen2);
        var names = model.state_dict().Keys.ToList();
        Assert.Contains("model.layers.0.self_attn.q_proj.bias", names);
        Assert.DoesNotContain("lm_head.weight", names);

        string folder = RepositoryPaths.NewTempFolder("qwen2");
        HfCheckpoint.Save(model, folder);
        var config = ModelConfig.Load(Path.Combine(folder, "config.json"));
        Assert.Equal(SmallQwen2 with { TorchDtype = "float32" }, config);

        using var reloaded = HfCheckpoint.Load(folder);
        int[][] prompts = [[1, 2, 3, 4], [9, 8]];
        var options = new SamplingOptions { MaxNewTokens = 10, Temperature = 0, PadTokenId = 96 };
        Assert.Equal(TextGenerator.Generate(model, prompts, options).Select(c => c.Tokens),
                     TextGenerator.Generate(reloaded, prompts, options).Select(c => c.Tokens));
    }

    [Fact]
    public void Bf16CheckpointLoadsAndKeepsItsDtype()
    {
        manual_seed(6);
        using var model = new DecoderLM(SmallQwen2).Place(dtype: ScalarType.BFloat16);
        string folder = RepositoryPaths.NewTempFolder("qwen2-bf16");
        HfCheckpoint.Save(model, folder);
        Assert.All(SafeTensors.ReadIndex(Path.Combine(folder, "model.safetensors")).Values, v => Assert.Equal("BF16", v.DType));
        using var reloaded = HfCheckpoint.Load(folder);
        Assert.Equal(ScalarType.BFloat16, reloaded.DType);
        using var upcast = HfCheckpoint.Load(folder, dtype: ScalarType.Float32);
        var logits16 = reloaded.forward(tensor(new long[] { 1, 2, 3 }).unsqueeze(0)).to(ScalarType.Float32);
        var logits32 = upcast.forward(tensor(new long[] { 1, 2, 3 }).unsqueeze(0));
        // bf16 keeps ~3 significant digits: compare relative to the logits' scale.
        float error = (logits16 - logits32).abs().max().item<float>();
        float scale = logits32.abs().max().item<float>();
        Assert.True(error < 0.02f * scale, $"max error {error} at logit scale {scale}");
    }
}
