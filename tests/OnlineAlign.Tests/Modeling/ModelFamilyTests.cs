using OnlineAlign.Specs;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// Qwen3 and Gemma 3 against an independent reference: fixtures/hf/make_family_fixtures.py, a float64 PyTorch
/// implementation written from transformers' modeling code, made the random-init checkpoints (Hugging Face format) and
/// recorded their logits, greedy tokens and response log-probs, as llama-tiny's reference.json does for transformers.
/// qwen3-tiny: head_dim 32 with hidden 64 / 4 heads, tied head. gemma3-tiny: layer_types, sliding window 4 on 12-token
/// inputs, query_pre_attn_scalar 24. gemma3-softcap-tiny: sliding_window_pattern and both soft-caps.
/// </summary>
public class ModelFamilyTests
{
    public static readonly TheoryData<string> Fixtures = new() { "qwen3-tiny", "gemma3-tiny", "gemma3-softcap-tiny" };

    private static string Folder(string name) => ReferenceOutputs.Folder(name);
    private static JsonObject ConfigJson(string name) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder(name), "config.json")))!;

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void LogitsMatchTheReferenceWithin1e4(string fixture) => ReferenceOutputs.AssertLogits(fixture);

    /// <summary>23 tokens through the KV cache and the fused projections: the sliding window (4) is passed many times over.</summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void GreedyContinuationIsIdenticalToTheReference(string fixture) => ReferenceOutputs.AssertGreedy(fixture);

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ResponseLogProbsMatchTheReferenceWithin1e4(string fixture) => ReferenceOutputs.AssertResponseLogProbs(fixture);

    /// <summary>
    /// A batch pads its rows (left pads, pads after a shared prefix, prompts computed once for several responses): each
    /// row must still compute what it does alone. Sliding windows count positions, not cache columns, for this.
    /// </summary>
    [Fact]
    public void PaddedAndSharedPrefixBatchesComputeWhatEachRowDoesAlone()
    {
        using var model = HfCheckpoint.Load(Folder("gemma3-tiny"));
        int[][] prompts = [[5, 6, 7, 8, 9, 10, 11], [5, 6, 7, 20], [5, 6, 7, 30, 31, 32, 33, 34, 35, 36]];
        var options = new SamplingOptions { MaxNewTokens = 10, Temperature = 0 };
        var together = TextGenerator.Generate(model, prompts, options);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(TextGenerator.Generate(model, [prompts[i]], options)[0].Tokens, together[i].Tokens);

        // Two responses per prompt: the shared-prompt scorer (cache copied per row) against the plain padded pass.
        var rows = prompts.SelectMany(p => new[] { new PromptResponse(p, [40, 41, 42, 43, 44, 45]), new PromptResponse(p, [50, 51, 52]) }).ToList();
        var shared = ResponseLogProbs.Score(model, rows);
        var plain = ResponseLogProbs.Score(model, rows, sharePrompts: false);
        for (int r = 0; r < rows.Count; r++)
            for (int t = 0; t < rows[r].Response.Length; t++)
                Assert.True(Math.Abs(shared[r].TokenLogProbs[t] - plain[r].TokenLogProbs[t]) < 1e-4, $"row {r} token {t}: {shared[r].TokenLogProbs[t]} vs {plain[r].TokenLogProbs[t]}");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void SaveThenLoadGivesTheSameConfigTensorsAndLogits(string fixture)
    {
        using var model = HfCheckpoint.Load(Folder(fixture));
        string output = RepositoryPaths.NewTempFolder("family-roundtrip");
        HfCheckpoint.Save(model, output);
        using var reloaded = HfCheckpoint.Load(output);
        var (a, b) = (model.Config, reloaded.Config);
        Assert.Equal(a with { LayerTypes = null }, b with { LayerTypes = null });
        Assert.Equal(a.LayerTypes ?? [], b.LayerTypes ?? []);
        // The saved file holds exactly the original tensors, under the same Hugging Face names.
        var original = SafeTensors.Read(Path.Combine(Folder(fixture), HfCheckpoint.WeightsFile));
        var saved = SafeTensors.Read(Path.Combine(output, HfCheckpoint.WeightsFile));
        Assert.Equal(original.Keys.Order(), saved.Keys.Order());
        foreach (var (name, t) in original)
            Assert.Equal(t.bytes.ToArray(), saved[name].bytes.ToArray());
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 3, 14, 15, 92, 65, 35, 89, 79, 32, 38 }).unsqueeze(0);
        Assert.True(model.forward(ids).equal(reloaded.forward(ids)).all().item<bool>());
    }

    /// <summary>
    /// LoRA on every projection: an untrained adapter is the base exactly, a backward pass reaches every adapter and no
    /// base weight, and gradient checkpointing (which replays each layer with its own mask and rotary) gives the same gradients.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void LoraForwardAndBackwardWork(string fixture)
    {
        var settings = new LoraSpec { Rank = 4, Alpha = 8, TargetModules = LoraSpec.AdaptableModules };
        PromptResponse[] rows = [new([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11]), new([12, 13], [14, 15, 16, 17, 18, 19, 20])];
        var ids = tensor(new long[] { 3, 4, 5, 6, 7, 8, 9, 10 }).unsqueeze(0);
        Dictionary<string, Tensor> Gradients(bool checkpointing)
        {
            using var model = HfCheckpoint.Load(Folder(fixture));
            using var plainLogits = model.forward(ids).detach();
            using (var init = new Generator(7)) model.AddAdapters(settings, init);
            Assert.True(plainLogits.equal(model.forward(ids)).all().item<bool>(), "B = 0: the adapted model is the base");
            using (var init = new Generator(8))
            using (no_grad())
                foreach (var (_, layer) in model.Adapted()) layer.AdapterB.normal_(0, 0.05, init);
            model.GradientCheckpointing = checkpointing;
            var (logProbs, mask) = ResponseLogProbs.Forward(model, rows);
            (-(logProbs.sum() / mask.sum())).backward();
            Assert.All(model.named_parameters().Where(p => !LoraAdapters.IsAdapterKey(p.name)), p => Assert.Null(p.parameter.grad));
            return model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }
        var plain = Gradients(checkpointing: false);
        var checkpointed = Gradients(checkpointing: true);
        var config = ModelConfig.Load(Path.Combine(Folder(fixture), "config.json"));
        Assert.Equal(2 * 7 * config.NumLayers, plain.Count);
        foreach (var (name, grad) in plain)
        {
            float scale = grad.abs().max().item<float>();
            Assert.True(scale > 0, $"{name} has no gradient");
            float difference = (grad - checkpointed[name]).abs().max().item<float>();
            Assert.True(difference <= 1e-5f * Math.Max(1, scale), $"{name}: checkpointed gradient differs by {difference}");
        }
    }

    /// <summary>GPUs run bf16: every family piece (scaled embedding, (1 + w) norms, masks, soft-caps) runs in it and stays near float32.</summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Bfloat16RunsAndStaysCloseToFloat32(string fixture)
    {
        using var scope = NewDisposeScope();
        using var full = HfCheckpoint.Load(Folder(fixture));
        using var half = HfCheckpoint.Load(Folder(fixture), dtype: ScalarType.BFloat16);
        var ids = tensor(new long[] { 3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38 }).unsqueeze(0);
        using var noGrad = no_grad();
        var expected = full.forward(ids);
        var logits = half.forward(ids).to(ScalarType.Float32);
        float difference = (logits - expected).abs().max().item<float>(), scale = expected.abs().max().item<float>();
        Assert.True(difference < 0.05f * scale, $"{fixture}: bf16 logits differ by {difference} (largest logit {scale})");
        var greedy = TextGenerator.Generate(half, [[3, 14, 15, 92, 65]], new SamplingOptions { MaxNewTokens = 8, Temperature = 0 });
        Assert.Equal(8, greedy[0].Tokens.Length);
    }

    /// <summary>The memory plan counts what the model holds: its parameters (the extra norms included), and the adapters'.</summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ParameterCountsAndCheckpointShapesAreTheModelsOwn(string fixture)
    {
        using var model = HfCheckpoint.Load(Folder(fixture));
        Assert.Equal(model.parameters().Sum(p => p.NumberOfElements), model.Config.ParameterCount());
        var expected = CheckpointShapes.Expected(model.Config);
        var actual = model.state_dict();
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in expected) Assert.Equal(shape, actual[name].shape);
        var lora = new LoraSpec { Rank = 4, Alpha = 8, TargetModules = LoraSpec.AdaptableModules };
        using (var generator = new Generator(1)) model.AddAdapters(lora, generator);
        Assert.Equal(model.AdapterTensors().Values.Sum(t => t.NumberOfElements), MemoryPlan.AdapterParameters(model.Config, lora));
        var plan = MemoryPlan.Estimate(new MemoryPlan.Inputs(model.Config, 4, lora, 2, 4, 64, 32, 8, 96));
        Assert.Equal(model.Config.ParameterCount() * 4 + 2 * MemoryPlan.AdapterParameters(model.Config, lora) * 4, plan.HeldModels);
    }

    [Fact]
    public void ConfigsAreReadAsTransformersReadsThem()
    {
        var qwen = ModelConfig.Load(Path.Combine(Folder("qwen3-tiny"), "config.json"));
        Assert.True(qwen is { QkNorm: true, GemmaNorms: false, HeadDim: 32, HiddenSize: 64, NumHeads: 4, TieWordEmbeddings: true, AttentionBias: false, LayerTypes: null });
        var noHeadDim = ConfigJson("qwen3-tiny");
        noHeadDim.Remove("head_dim");
        noHeadDim["attention_bias"] = true;
        Assert.True(ModelConfig.FromJson(noHeadDim) is { HeadDim: 128, AttentionBias: true }); // Qwen3Config's default head_dim

        var gemma = ModelConfig.Load(Path.Combine(Folder("gemma3-tiny"), "config.json"));
        Assert.Equal(new[] { true, false, true }, Enumerable.Range(0, 3).Select(gemma.IsSlidingLayer));
        Assert.True(gemma is { GemmaNorms: true, QkNorm: true, SlidingWindow: 4, QueryPreAttnScalar: 24, RopeTheta: 1e6, RopeLocalTheta: 1e4, FinalLogitSoftcapping: null, HiddenAct: "gelu_pytorch_tanh" });
        // The older sliding_window_pattern: every pattern-th layer is global (default 6).
        var pattern = ConfigJson("gemma3-softcap-tiny");
        Assert.Equal(new[] { true, true, false }, Enumerable.Range(0, 3).Select(ModelConfig.FromJson(pattern).IsSlidingLayer));
        pattern.Remove("sliding_window_pattern");
        pattern["num_hidden_layers"] = 7;
        Assert.Equal(new[] { true, true, true, true, true, false, true }, Enumerable.Range(0, 7).Select(ModelConfig.FromJson(pattern).IsSlidingLayer));
        // transformers 5's rope_parameters, one per layer type.
        var v5 = ConfigJson("gemma3-tiny");
        v5.Remove("rope_theta");
        v5.Remove("rope_local_base_freq");
        v5["rope_parameters"] = JsonNode.Parse("""{"full_attention": {"rope_type": "default", "rope_theta": 500000.0}, "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}}""");
        Assert.True(ModelConfig.FromJson(v5) is { RopeTheta: 5e5, RopeLocalTheta: 2e4 });
    }

    [Theory]
    [InlineData("gemma3-tiny", "hidden_activation", "\"gelu\"", "hidden_activation 'gelu'")]
    [InlineData("qwen3-tiny", "hidden_act", "\"gelu_pytorch_tanh\"", "hidden_act 'gelu_pytorch_tanh'")]
    [InlineData("gemma3-tiny", "layer_types", """["sliding_attention", "chunked_attention", "full_attention"]""", "layer_types[1] 'chunked_attention'")]
    [InlineData("qwen3-tiny", "layer_types", """["full_attention", "sliding_attention"]""", "layer_types[1] 'sliding_attention'")]
    [InlineData("qwen3-tiny", "use_sliding_window", "true", "use_sliding_window true")]
    [InlineData("gemma3-tiny", "use_bidirectional_attention", "true", "use_bidirectional_attention true")]
    [InlineData("gemma3-tiny", "rope_scaling", """{"rope_type": "linear", "factor": 8.0}""", "rope_scaling type 'linear'")]
    [InlineData("gemma3-tiny", "rope_parameters", """{"full_attention": {"rope_type": "yarn"}}""", "rope_parameters.full_attention.rope_type 'yarn'")]
    [InlineData("gemma3-tiny", "model_type", "\"gemma3\"", "model_type 'gemma3'")]
    [InlineData("qwen3-tiny", "model_type", "\"qwen3_moe\"", "model_type 'qwen3_moe'")]
    public void UnsupportedSettingsAreRefusedByName(string fixture, string field, string value, string expected)
    {
        var json = ConfigJson(fixture);
        json[field] = JsonNode.Parse(value);
        var error = Assert.Throws<NotSupportedException>(() => ModelConfig.FromJson(json, "config.json"));
        Assert.Contains(expected, error.Message);
        Assert.StartsWith("config.json: ", error.Message);
    }

    [Theory]
    [InlineData("sliding_window", "0", "sliding_window must be at least 1")]
    [InlineData("query_pre_attn_scalar", "-1", "query_pre_attn_scalar must be a positive number")]
    [InlineData("final_logit_softcapping", "0", "final_logit_softcapping must be a positive number")]
    [InlineData("layer_types", """["full_attention"]""", "layer_types has 1 entries for num_hidden_layers 3")]
    public void BadGemmaSizesAreRefusedByName(string field, string value, string expected)
    {
        var json = ConfigJson("gemma3-tiny");
        json[field] = JsonNode.Parse(value);
        Assert.Contains(expected, Assert.Throws<InvalidDataException>(() => ModelConfig.FromJson(json)).Message);
    }
}
