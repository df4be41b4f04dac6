using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>The Qwen2 family's differences from Llama: q/k/v bias, tied embeddings, rope_theta at the top level.</summary>
/// <remarks>Models come from BuiltinModels.Create, which seeds torch's global generator under a lock: test
/// classes run in parallel, and a bare manual_seed here would interleave with another test's draws.</remarks>
public class Qwen2ShapeTests
{
    /// <summary>A Qwen2 shape small enough for unit tests: GQA 7/1, q/k/v bias, tied embeddings.</summary>
    internal static readonly ModelConfig SmallQwen2 = new()
    {
        ModelType = "qwen2", VocabSize = 97, HiddenSize = 56, IntermediateSize = 80, NumLayers = 2, NumHeads = 7,
        NumKeyValueHeads = 1, HeadDim = 8, RopeTheta = 1_000_000, MaxPositions = 128, AttentionBias = true,
        TieWordEmbeddings = true, EosTokenId = 96, PadTokenId = 96,
    };

    [Fact]
    public void TiedQwen2SavesWithoutLmHeadAndReloadsIdentically()
    {
        using var model = BuiltinModels.Create(SmallQwen2, 5);
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
    public void FusedProjectionsWithCachedDecodingMatchTheFullForward()
    {
        using var model = BuiltinModels.Create(SmallQwen2, 7);
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 5, 17, 90, 3, 25, 41, 7, 8, 12, 64 }).unsqueeze(0);
        var full = model.forward(ids);
        using (model.FusedProjections())
        {
            // Prefill (4 tokens, causal), then one token at a time (GQA with a broadcast one-row mask).
            using var cache = new KvCache(model.Config, 1, 10, model.DType, model.Device);
            var steps = new List<Tensor> { model.Logits(model.Hidden(ids.narrow(1, 0, 4), cache: cache)) };
            for (int t = 4; t < 10; t++)
                steps.Add(model.Logits(model.Hidden(ids.narrow(1, t, 1), cache: cache)));
            // Float32 rounding differs between one stacked matmul and three: compare relative to the logits.
            float maxDiff = (full - cat(steps, 1)).abs().max().item<float>();
            float scale = full.abs().max().item<float>();
            Assert.True(maxDiff <= 1e-6f * scale, $"max difference {maxDiff} at logit scale {scale}");
        }
    }

    [Fact]
    public void ForwardsWithGradientsNeverUseTheFusedCopy()
    {
        using var model = BuiltinModels.Create(SmallQwen2, 8);
        var ids = tensor(new long[] { 1, 2, 3, 4 }).unsqueeze(0);
        using var fused = model.FusedProjections();
        // Change a q weight after the copy was taken: a forward with gradients must see the change.
        using (no_grad()) model.get_parameter("model.layers.0.self_attn.q_proj.weight")!.add_(0.5);
        var withGrad = model.forward(ids);
        Tensor stale;
        using (no_grad()) stale = model.forward(ids);
        Assert.True(withGrad.requires_grad);
        Assert.True((withGrad.detach() - stale).abs().max().item<float>() > 1e-3f, "the gradient path used the fused copy");
    }

    [Fact]
    public void TransformersStyleInitKeepsATiedRandomModelFromParrotingItsInput()
    {
        using var parrot = BuiltinModels.Create(SmallQwen2, 9);
        using var generator = new Generator(9);
        using var model = BuiltinModels.Create(SmallQwen2, 9).InitializeLikeTransformers(generator);
        var weights = model.state_dict();
        Assert.Equal(1f, weights["model.norm.weight"].min().item<float>());
        Assert.Equal(0f, weights["model.layers.0.self_attn.q_proj.bias"].abs().max().item<float>());
        Assert.InRange(weights["model.embed_tokens.weight"].std().item<float>(), 0.018f, 0.022f);
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 11, 22, 33, 44, 55 }).unsqueeze(0);
        // N(0, 1) tied embeddings make the input token's own logit dominate; transformers' init does not.
        Assert.True(parrot.forward(ids).softmax(-1).max().item<float>() > 0.9f);
        Assert.True(model.forward(ids).softmax(-1).max().item<float>() < 0.5f);
    }

    [Fact]
    public void Bf16CheckpointLoadsAndKeepsItsDtype()
    {
        using var model = BuiltinModels.Create(SmallQwen2, 6).Place(dtype: ScalarType.BFloat16);
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
