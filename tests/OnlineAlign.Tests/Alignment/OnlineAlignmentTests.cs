using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Tests.Alignment;

public class OnlineAlignmentTests
{
    [Fact]
    public void VerifierJudgedRoundsRaiseHeldOutAccuracy()
    {
        var tokenizer = new ByteTokenizer();
        var task = new SortDigitsTask();
        const int seed = 1;
        using var warm = WarmStart.Train(BuiltinModels.Tiny, tokenizer, task, new WarmStart.Settings(Steps: 150, Noise: 0.3), seed, out _);
        var eval = task.Prompts(100, seed, "eval");
        double before = RoundPhases.Evaluate(warm, warm, warm, tokenizer, task, eval, 16, seed, new RoundSettings().GenerationBatchSize)["eval/accuracy"];
        Assert.InRange(before, 0.3, 0.9); // the warm start is clearly imperfect

        var settings = new RoundSettings
        {
            SamplesPerPrompt = 8, Judge = "verifier", Consistency = "none",
            Loss = new LossSettings { Kind = "dpo", Beta = 0.1 },
            Optimizer = new OptimizerSettings { LearningRate = 3e-5, WeightDecay = 0 }, BatchSize = 16,
        };
        using var models = new RunModels { Policy = BuiltinModels.Clone(warm), Initial = BuiltinModels.Clone(warm) };
        var all = task.Prompts(3 * 512, seed + 1000, "train");
        var reports = new List<RoundReport>();
        for (int round = 1; round <= 3; round++)
        {
            var indices = Enumerable.Range((round - 1) * 512, 512).ToList();
            reports.Add(OnlineRound.Run(models, new OnlineRound.Inputs(settings, tokenizer, task, indices.Select(i => all[i]).ToList(),
                indices, eval, "previous_round", seed, round, reports)));
        }
        double after = reports[^1].Metrics["eval/accuracy"];
        Assert.True(after > before, $"held-out accuracy {before:P1} before the rounds, {after:P1} after");
        Assert.All(reports, r => Assert.True(r.Metrics["pairs/kept"] > 0));
    }
}
