using OnlineAlign.Specs;
using OnlineAlign.Tests.Infrastructure;
using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Alignment;

public class TrainingTests
{
    private static readonly ByteTokenizer Tokenizer = new();

    private static List<PromptResponse> Demos(int n) =>
        new SortDigitsTask().Prompts(n, 1, "train").Select(p => Examples.Pair(Tokenizer, p.Prompt, p.Answer!)).ToList();

    [Fact]
    public void SftIsSeededAndLowersTheLoss()
    {
        var settings = new OptimizerSettings { LearningRate = 3e-3, WeightDecay = 0 };
        using var a = BuiltinModels.Create(BuiltinModels.Tiny, 5);
        using var b = BuiltinModels.Create(BuiltinModels.Tiny, 5);
        var lossA = SftTrainer.Train(a, Demos(64), settings, steps: 30, batchSize: 8, seed: 9);
        var lossB = SftTrainer.Train(b, Demos(64), settings, steps: 30, batchSize: 8, seed: 9);
        Assert.Equal(lossA, lossB);
        Assert.True(lossA.Skip(25).Average() < lossA.Take(5).Average() * 0.7, $"{lossA[0]} -> {lossA[^1]}");
        var sb = b.state_dict();
        foreach (var (name, t) in a.state_dict()) Assert.True(t.equal(sb[name]).all().item<bool>(), name);
    }

    [Fact]
    public void PreferenceTrainingWidensTheMarginAndReportsTrlMetrics()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 2);
        int[] prompt = Examples.PromptIds(Tokenizer, "sort 21=");
        int[] chosen = Examples.ResponseIds(Tokenizer, "12"), rejected = Examples.ResponseIds(Tokenizer, "21");
        var before = ResponseLogProbs.Score(model, [new PromptResponse(prompt, chosen), new PromptResponse(prompt, rejected)]);
        var pairs = Enumerable.Repeat(new PairExample(prompt, chosen, rejected, before[0].Sum, before[1].Sum), 8).ToList();
        var steps = PreferenceTrainer.Train(model, pairs, new PreferenceTrainer.Settings(
            new LossSpec { Kind = "dpo", Beta = 0.1 }, new OptimizerSettings { LearningRate = 1e-3, WeightDecay = 0 }, Epochs: 5, BatchSize: 4, Seed: 1));
        Assert.Equal(10, steps.Count);
        Assert.True(steps[^1].RewardsMargin > steps[0].RewardsMargin);
        Assert.Equal(1.0, steps[^1].RewardsAccuracy);
        Assert.Equal(["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "grad_norm", "lr"],
            steps[0].Named().Keys);
    }

    [Fact]
    public void OptimizerStateCarriedThroughAFileContinuesExactlyAsInMemory()
    {
        int[] prompt = Examples.PromptIds(Tokenizer, "sort 21=");
        var pairs = Enumerable.Repeat(new PairExample(prompt, Examples.ResponseIds(Tokenizer, "12"), Examples.ResponseIds(Tokenizer, "21"), -3.0, -2.5), 8).ToList();
        var settings = new PreferenceTrainer.Settings(new LossSpec { Kind = "dpo" }, new OptimizerSettings { LearningRate = 1e-3, WeightDecay = 0.01 }, 1, 4, 3);
        string file = Path.Combine(RepositoryPaths.NewTempFolder("optimizer"), OptimizerState.FileName);

        // Two rounds with the optimiser kept in memory...
        using var a = BuiltinModels.Create(BuiltinModels.Tiny, 4);
        using var kept = new OptimizerState();
        PreferenceTrainer.Train(a, pairs, settings, optimizerState: kept);
        Assert.Equal(2, kept.Step);
        PreferenceTrainer.Train(a, pairs, settings, optimizerState: kept);
        Assert.Equal(4, kept.Step);

        // ...and with it saved after the first round and loaded for the second, as a resumed run does.
        using var b = BuiltinModels.Create(BuiltinModels.Tiny, 4);
        using (var first = new OptimizerState())
        {
            PreferenceTrainer.Train(b, pairs, settings, optimizerState: first);
            first.Save(file);
        }
        using var loaded = OptimizerState.Load(file);
        Assert.Equal(2, loaded.Step);
        PreferenceTrainer.Train(b, pairs, settings, optimizerState: loaded);

        var sb = b.state_dict();
        foreach (var (name, t) in a.state_dict()) Assert.True(t.equal(sb[name]).all().item<bool>(), name);

        // A fresh optimiser in the second round gives different weights: the state matters.
        using var c = BuiltinModels.Create(BuiltinModels.Tiny, 4);
        PreferenceTrainer.Train(c, pairs, settings);
        PreferenceTrainer.Train(c, pairs, settings);
        Assert.Contains(c.state_dict(), kv => !kv.Value.equal(sb[kv.Key]).all().item<bool>());
    }

    [Fact]
    public void NonFiniteLossNamesTheStepAndLeavesWeightsUntouched()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 2);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        int[] prompt = Examples.PromptIds(Tokenizer, "sort 21=");
        var pairs = new List<PairExample> { new(prompt, [5, 2], [6, 2], double.NaN, 0) };
        var error = Assert.Throws<NonFiniteLossException>(() => PreferenceTrainer.Train(model, pairs,
            new PreferenceTrainer.Settings(new LossSpec { Kind = "dpo" }, new OptimizerSettings(), 1, 1, 1)));
        Assert.Equal(0, error.Step);
        Assert.Contains("step 0", error.Message);
        foreach (var (name, t) in model.state_dict()) Assert.True(t.equal(before[name]).all().item<bool>(), name);
    }

    [Fact]
    public void WarningsFlagSaturatedAccuraciesCollapsedJudgeAndLengthDrift()
    {
        var first = new Dictionary<string, double> { ["generation/length_mean"] = 5 };
        var previous = new Dictionary<string, double> { ["rewards/accuracies"] = 1.0, ["rewards/margins"] = 2.0 };
        var current = new Dictionary<string, double>
        {
            ["rewards/accuracies"] = 1.0, ["rewards/margins"] = 3.5, ["judge/score_std"] = 0, ["judge/score_mean"] = 4, ["generation/length_mean"] = 12,
        };
        var warnings = RoundWarnings.For(current, previous, first);
        Assert.Equal(3, warnings.Count);
        Assert.Contains(warnings, w => w.Contains("margins keep growing"));
        Assert.Contains(warnings, w => w.Contains("collapsed"));
        Assert.Contains(warnings, w => w.Contains("drifted from 5.0 to 12.0"));
        Assert.Empty(RoundWarnings.For(first, null, null));
    }

    [Fact]
    public void RoundSettingsNameEveryBadField()
    {
        var problems = new RoundSettings
        {
            SamplesPerPrompt = 1, Sampling = new() { Temperature = -1, BatchSize = -1 }, Loss = new LossSpec { Beta = 0 }, Judge = new() { Kind = "oracle", Template = "compact" }
        }.Problems(SpecLimits.Default);
        Assert.Contains("sampling.batch_size must be between 0 and 4096, got -1", problems);
        Assert.Contains(problems, p => p.StartsWith("samples_per_prompt", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("sampling.temperature", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("loss.beta", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("judge.kind 'oracle'", StringComparison.Ordinal));
    }
}
