using OnlineAlign.Specs;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

public class RewardModelTests
{
    /// <summary>Synthetic preferences from a task: the right answer over a near miss.</summary>
    public static List<PreferenceItem> Preferences(IVerifiableTask task, int count, int seed)
    {
        var random = new Random(seed);
        return task.Prompts(count, seed, "train").Select(p => new PreferenceItem(p.Prompt, p.Answer!, task.Demonstrate(p, random, noise: 1.0))).ToList();
    }

    [Fact]
    public void BradleyTerryRewardModelRanksHeldOutPairsAndSavesAndLoads()
    {
        var tokenizer = new ByteTokenizer();
        var task = new SortDigitsTask();
        var pairs = Preferences(task, 600, 3);
        using var model = new RewardModel(BuiltinModels.Create(BuiltinModels.Tiny, 3));
        var result = RewardModelTrainer.Train(model, tokenizer, pairs, heldOutFraction: 0.2,
            new OptimizerSettings { LearningRate = 2e-3, WeightDecay = 0 }, steps: 300, batchSize: 16, seed: 3);
        Assert.Equal(120, result.HeldOutPairs);
        Assert.True(result.HeldOutAccuracy > 0.8, $"held-out accuracy {result.HeldOutAccuracy:P1}, train {result.TrainAccuracy:P1}");

        string folder = RepositoryPaths.NewTempFolder("reward-model");
        model.Save(folder, tokenizer.HfFiles());
        using var reloaded = RewardModel.Load(folder);
        Assert.Equal(RewardModelTrainer.Accuracy(model, tokenizer, pairs.Take(50).ToList()), RewardModelTrainer.Accuracy(reloaded, tokenizer, pairs.Take(50).ToList()));

        var item = new PromptItem(pairs[0].Prompt);
        var group = new ResponseGroup(item, Examples.PromptIds(tokenizer, item.Prompt),
            [Examples.ResponseIds(tokenizer, pairs[0].Chosen), Examples.ResponseIds(tokenizer, pairs[0].Rejected)], [pairs[0].Chosen, pairs[0].Rejected]);
        Assert.Equal(2, new RewardModelJudge(reloaded).Score([group]).Scores[0].Length);

        // As a judge, on pairs it never saw (held-out prompts): chosen ranked above rejected in more than 80 % of them,
        // whichever order the two come in a group (the judge scores responses, not positions).
        var corruption = new Random(11);
        var heldOut = task.Prompts(60, 11, "test").Select(p => new PreferenceItem(p.Prompt, p.Answer!, task.Demonstrate(p, corruption, noise: 1.0))).ToList();
        ResponseGroup Group(PreferenceItem p, bool chosenFirst)
        {
            var texts = chosenFirst ? new[] { p.Chosen, p.Rejected } : new[] { p.Rejected, p.Chosen };
            return new ResponseGroup(new PromptItem(p.Prompt), Examples.PromptIds(tokenizer, p.Prompt), [.. texts.Select(t => Examples.ResponseIds(tokenizer, t))], texts);
        }
        var judge = new RewardModelJudge(reloaded);
        var first = judge.Score(heldOut.Select(p => Group(p, chosenFirst: true)).ToList()).Scores;
        var second = judge.Score(heldOut.Select(p => Group(p, chosenFirst: false)).ToList()).Scores;
        double ranked = first.Average(s => s[0] > s[1] ? 1.0 : 0.0);
        Assert.True(ranked > 0.8, $"the judge ranked chosen above rejected in {ranked:P0} of {heldOut.Count} held-out pairs");
        Assert.True(Math.Abs(ranked - second.Average(s => s[1] > s[0] ? 1.0 : 0.0)) <= 1.0 / heldOut.Count, "the order in the group changed the ranking");

        // The reward model as a round's judge: a fixed judge, so no consistency regularisation applies.
        var spec = new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 8 }, SftSteps = 0, Seed = 5, Rounds = 1, PromptsPerRound = 16, SamplesPerPrompt = 3, Consistency = "dyn", Device = "cpu", Judge = new() { Kind = "reward_model", RewardModelFolder = folder }
        };
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("local-run"), pretrainedCache: RepositoryPaths.PretrainedCache);
        var report = run.RunRound();
        Assert.Equal(1.0, report.Metrics["consistency/C"]);
        Assert.True(report.Metrics["judge/score_std"] > 0);
    }

    [Fact]
    public void PreferenceJsonlNamesTheBrokenLine()
    {
        var ok = PreferenceJsonl.Parse(["{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}"], "prefs.jsonl");
        Assert.Equal(new PreferenceItem("p", "a", "b"), ok[0]);
        var error = Assert.Throws<InvalidDataException>(() => PreferenceJsonl.Parse(["{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}", "{\"prompt\": \"p\", \"chosen\": 1}"], "prefs.jsonl"));
        Assert.Contains("prefs.jsonl:2: field 'chosen'", error.Message);
    }
}
