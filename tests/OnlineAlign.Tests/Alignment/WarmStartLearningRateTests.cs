using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Alignment;

/// <summary>sft_learning_rate: the warm start's peak rate (M0's pretraining and IFT + EFT), 3e-3 unless the spec says otherwise.</summary>
public class WarmStartLearningRateTests
{
    private static readonly ByteTokenizer Tokenizer = new();
    private static readonly ReverseWordTask Task = new();
    private static readonly RunSpec Short = new() { SftSteps = 6, EftExamples = 16, Model = new() { PretrainSteps = 3 }, Prompts = new() { Task = "reverse" } };

    /// <summary>What RunSpecMapping.WarmStartSettings built before the field existed: no rate given, so the record's 3e-3.</summary>
    private static WarmStart.Settings BeforeTheField(RunSpec s) =>
        new(Steps: s.SftSteps, Noise: s.SftNoise, JudgeExamples: s.EftExamples, JudgeTemplate: RunSpecMapping.JudgeTemplate(s),
            EftSource: s.EftSource, SampleTokens: s.Sampling.MaxNewTokens, PretrainSteps: s.Model.PretrainSteps);

    [Fact]
    public void TheDefaultRateReproducesTheWarmStartBeforeTheFieldExactly()
    {
        var settings = RunSpecMapping.WarmStartSettings(Short);
        Assert.Equal(3e-3, settings.LearningRate);
        Assert.Equal(BeforeTheField(Short), settings);
        // The M0 cache key is unchanged too: entries built before the field are still found.
        Assert.Equal(PretrainedBaseCache.Key(BuiltinModels.Tiny, "tiny", Task, BeforeTheField(Short), 3),
            PretrainedBaseCache.Key(BuiltinModels.Tiny, "tiny", Task, settings, 3));
        using var now = WarmStart.Train(BuiltinModels.Tiny, Tokenizer, Task, settings, 3, out var nowLosses);
        using var before = WarmStart.Train(BuiltinModels.Tiny, Tokenizer, Task, BeforeTheField(Short), 3, out var beforeLosses);
        Assert.Equal(beforeLosses, nowLosses);
        Assert.True(SameWeights(before, now));
    }

    [Fact]
    public void TheSpecsRateTrainsBothM0AndTheWarmStart()
    {
        var spec = Short with { SftLearningRate = 1e-3 };
        var settings = RunSpecMapping.WarmStartSettings(spec);
        Assert.Equal(1e-3, settings.LearningRate);
        Assert.Equal(BeforeTheField(spec) with { LearningRate = 1e-3 }, settings);
        Assert.NotEqual(PretrainedBaseCache.Key(BuiltinModels.Tiny, "tiny", Task, RunSpecMapping.WarmStartSettings(Short), 3),
            PretrainedBaseCache.Key(BuiltinModels.Tiny, "tiny", Task, settings, 3));
        using (var m0 = WarmStart.Pretrained(BuiltinModels.Tiny, Tokenizer, Task, settings, 3))
        using (var defaultM0 = WarmStart.Pretrained(BuiltinModels.Tiny, Tokenizer, Task, RunSpecMapping.WarmStartSettings(Short), 3))
            Assert.False(SameWeights(defaultM0, m0));
        using var slower = WarmStart.Train(BuiltinModels.Tiny, Tokenizer, Task, settings, 3, out var slowerLosses);
        using var atDefault = WarmStart.Train(BuiltinModels.Tiny, Tokenizer, Task, RunSpecMapping.WarmStartSettings(Short), 3, out var defaultLosses);
        Assert.NotEqual(defaultLosses, slowerLosses);
        Assert.False(SameWeights(atDefault, slower));
    }

    [Theory]
    [InlineData(0, "sft_learning_rate must be > 0, got 0")]
    [InlineData(-1e-3, "sft_learning_rate must be > 0, got -0.001")]
    [InlineData(double.NaN, "sft_learning_rate must be a finite number, got NaN")]
    [InlineData(2, "sft_learning_rate must be at most 1, got 2")]
    public void ABadRateIsRefusedNamingTheField(double rate, string expected) =>
        Assert.Contains(expected, RunSpecMapping.Problems(new RunSpec { SftLearningRate = rate }, countsOnly: true));

    private static bool SameWeights(DecoderLM a, DecoderLM b)
    {
        var other = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        return a.named_parameters().All(p => p.parameter.equal(other[p.name]).all().item<bool>());
    }
}
