using OnlineAlign.Specs;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

public class LoraTests
{
    private static readonly LoraSpec AllLayers = new() { Rank = 4, Alpha = 8, TargetModules = LoraSpec.AdaptableModules };
    private static readonly Tensor Ids = tensor(new long[] { 3, 4, 5, 6, 7, 8, 9 }).unsqueeze(0);

    private static DecoderLM Base() => AdaptedLlamaTiny.Base();

    private static DecoderLM Adapted(LoraSpec settings, ulong seed = 7) => AdaptedLlamaTiny.Adapted(settings, seed);

    private static float MaxDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Fact]
    public void WithBAtZeroTheAdaptedModelIsTheBaseExactly()
    {
        using var plain = Base();
        using var adapted = Base();
        using (var generator = new Generator(1)) adapted.AddAdapters(AllLayers, generator);
        Assert.Equal(7 * 2, adapted.Adapted().Count()); // 7 projections x 2 layers
        Assert.True(plain.forward(Ids).equal(adapted.forward(Ids)).all().item<bool>());
    }

    [Fact]
    public void AdapterForwardEqualsTheMergedModelsAndSwitchingOffGivesTheBase()
    {
        using var plain = Base();
        using var adapted = Adapted(AllLayers);
        string merged = RepositoryPaths.NewTempFolder("lora-merged");
        HfCheckpoint.Save(adapted, merged);
        using var mergedModel = HfCheckpoint.Load(merged);
        Assert.DoesNotContain(SafeTensors.Read(Path.Combine(merged, HfCheckpoint.WeightsFile)).Keys, LoraAdapters.IsAdapterKey);
        var logits = adapted.forward(Ids);
        Assert.True(MaxDifference(logits, mergedModel.forward(Ids)) < 1e-5f, $"merged differs by {MaxDifference(logits, mergedModel.forward(Ids))}");
        Assert.True(MaxDifference(logits, plain.forward(Ids)) > 1e-3f, "the adapter changed nothing: the test would prove nothing");
        using (adapted.AdaptersOff())
            Assert.True(plain.forward(Ids).equal(adapted.forward(Ids)).all().item<bool>());
        Assert.True(logits.equal(adapted.forward(Ids)).all().item<bool>()); // switched back on
    }

    [Fact]
    public void PeftFolderHasPeftsNamesAndRoundTripsToIdenticalLogits()
    {
        var settings = AllLayers with { UseRslora = true, Dropout = 0.1, TargetModules = ["q_proj", "v_proj", "down_proj"] };
        using var adapted = Adapted(settings);
        string folder = RepositoryPaths.NewTempFolder("peft");
        PeftAdapter.Save(adapted, folder, "llama-tiny");

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, PeftAdapter.ConfigFile)))!.AsObject();
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal("CAUSAL_LM", config["task_type"]!.GetValue<string>());
        Assert.Equal(4, config["r"]!.GetValue<int>());
        Assert.Equal(8.0, config["lora_alpha"]!.GetValue<double>());
        Assert.True(config["use_rslora"]!.GetValue<bool>());
        var tensors = SafeTensors.Read(Path.Combine(folder, PeftAdapter.WeightsFile));
        Assert.Equal(2 * 3 * 2, tensors.Count); // layers x targets x (A, B)
        Assert.Equal([4L, 64], tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape);
        Assert.Equal([32L, 4], tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"].shape);
        Assert.Equal([64L, 4], tensors["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"].shape);
        Assert.All(tensors.Values, t => Assert.Equal(ScalarType.Float32, t.dtype));

        using var imported = PeftAdapter.Load(Base(), folder);
        Assert.Equal(settings.Scaling, 8 / Math.Sqrt(4));
        Assert.Equal(settings with { TargetModules = imported.Lora!.TargetModules }, imported.Lora);
        Assert.True(adapted.forward(Ids).equal(imported.forward(Ids)).all().item<bool>());
    }

    [Fact]
    public void OnlyTheAdaptersTrainAndTheBaseStaysBitForBit()
    {
        using var model = Adapted(AllLayers with { Dropout = 0.2 });
        var baseBefore = model.state_dict().Where(kv => !LoraAdapters.IsAdapterKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var adaptersBefore = model.AdapterTensors().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var optimizer = new FlatAdamW(model, new OptimizerSettings { LearningRate = 1e-2 });
        using var generator = new Generator(3);
        using (model.AdapterDropout(generator))
            for (int step = 0; step < 3; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.ZeroGrad();
                var (lp, mask) = ResponseLogProbs.Forward(model, [new([1, 2, 3], [4, 5, 6])]);
                (-(lp.sum() / mask.sum())).backward();
                optimizer.ClipGradients();
                optimizer.StepOnce();
            }
        foreach (var (name, before) in baseBefore)
            Assert.True(before.equal(model.state_dict()[name]).all().item<bool>(), $"{name} changed");
        Assert.All(model.AdapterTensors(), kv => Assert.False(adaptersBefore[kv.Key].equal(kv.Value).all().item<bool>(), $"{kv.Key} did not train"));
    }

    [Fact]
    public void DropoutMasksComeFromTheGivenGeneratorOnly()
    {
        using var model = Adapted(AllLayers with { Dropout = 0.5 });
        Tensor Draw(ulong seed)
        {
            using var generator = new Generator(seed);
            using var dropout = model.AdapterDropout(generator);
            return model.forward(Ids).detach();
        }
        Assert.True(Draw(5).equal(Draw(5)).all().item<bool>());
        Assert.False(Draw(5).equal(Draw(6)).all().item<bool>());
        using (no_grad()) Assert.True(model.forward(Ids).equal(model.forward(Ids)).all().item<bool>()); // no dropout without gradients
    }

    [Theory]
    [InlineData("\"use_dora\": true", "use_dora")]
    [InlineData("\"bias\": \"all\"", "bias")]
    [InlineData("\"rank_pattern\": {\"q_proj\": 8}", "rank_pattern")]
    [InlineData("\"target_modules\": \"all-linear\"", "target_modules")]
    [InlineData("\"target_modules\": [\"c_attn\"]", "c_attn")]
    [InlineData("\"r\": 0", "r must be")]
    public void UnsupportedPeftConfigsAreRefusedByField(string field, string expected)
    {
        string folder = RepositoryPaths.NewTempFolder("peft-bad");
        var fields = new Dictionary<string, string>
        {
            ["peft_type"] = "\"LORA\"", ["r"] = "4", ["lora_alpha"] = "8", ["target_modules"] = "[\"q_proj\"]", ["bias"] = "\"none\"",
        };
        var (name, value) = (field[1..field.IndexOf('"', 1)], field[(field.IndexOf(':') + 1)..].Trim());
        fields[name] = value;
        File.WriteAllText(Path.Combine(folder, PeftAdapter.ConfigFile), "{" + string.Join(",", fields.Select(kv => $"\"{kv.Key}\": {kv.Value}")) + "}");
        var error = Assert.ThrowsAny<Exception>(() => PeftAdapter.ReadSettings(folder));
        Assert.Contains(expected, error.Message);
        Assert.Contains(PeftAdapter.ConfigFile, error.Message);
    }
}
