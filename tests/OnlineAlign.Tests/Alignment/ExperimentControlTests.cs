using OnlineAlign.Alignment.Controls;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Pairs;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Alignment;

/// <summary>The experiment's controls: random pairs, best-of-N reranking and extra SFT (RFT's loss is in PreferenceLossTests).</summary>
public class ExperimentControlTests
{
    private static readonly ByteTokenizer Tokenizer = new();

    [Fact]
    public void RandomPairsComeFromTheSamePromptsAsBestVsWorstButIgnoreTheScores()
    {
        var random = new Random(4);
        IReadOnlyList<double>[] scores = [.. Enumerable.Range(0, 400).Select(p => (IReadOnlyList<double>)(p % 10 == 0
            ? [1.0, 1.0, 1.0, 1.0]                                       // all equal: no pair from either strategy
            : [.. Enumerable.Range(0, 6).Select(i => i == 2 ? double.NaN : random.Next(0, 6) + 0.0)]))];
        var (best, bestStats) = PairBuilder.Build(scores, "best_vs_worst", 0, seed: 9);
        var (pairs, stats) = PairBuilder.Build(scores, "random", 0, seed: 9);
        Assert.Equal(best.Select(p => p.PromptIndex), pairs.Select(p => p.PromptIndex));
        Assert.Equal(bestStats, stats);
        Assert.All(pairs, p =>
        {
            Assert.NotEqual(p.Chosen, p.Rejected);
            Assert.False(double.IsNaN(scores[p.PromptIndex][p.Chosen]) || double.IsNaN(scores[p.PromptIndex][p.Rejected]));
            Assert.Equal(scores[p.PromptIndex][p.Chosen] - scores[p.PromptIndex][p.Rejected], p.ScoreGap);
        });
        // No judge signal: the chosen response scores lower about as often as higher (ties aside).
        int higher = pairs.Count(p => p.ScoreGap > 0), lower = pairs.Count(p => p.ScoreGap < 0);
        Assert.InRange(higher, lower * 0.7, lower * 1.4);
        Assert.Equal(pairs, PairBuilder.Build(scores, "random", 0, seed: 9).Pairs);
        Assert.NotEqual(pairs, PairBuilder.Build(scores, "random", 0, seed: 10).Pairs);
    }

    [Fact]
    public void ShuffledScoresPermuteEachPromptsScoresAndPairTheirBestWithTheirWorst()
    {
        var random = new Random(5);
        double[][] scores = [.. Enumerable.Range(0, 400).Select(p => (double[])(p % 10 == 0
            ? [2.0, 2.0, double.NaN, 2.0]                                 // all equal: no pair, shuffled or not
            : [.. Enumerable.Range(0, 6).Select(i => i == 2 ? double.NaN : random.Next(0, 100) + 0.0)]))];
        var seen = PairBuilder.ScoresSeenBy(PairBuilder.ShuffledScores, scores, seed: 9);
        for (int p = 0; p < scores.Length; p++)
        {
            // The same scores per prompt, unscored responses still unscored, only which response holds which score changes.
            Assert.Equal(scores[p].Order(), seen[p].Order());
            Assert.Equal(scores[p].Select(double.IsNaN), seen[p].Select(double.IsNaN));
        }
        Assert.Same(scores, PairBuilder.ScoresSeenBy("best_vs_worst", scores, seed: 9));
        var rows = scores.Select(r => (IReadOnlyList<double>)r).ToList();
        var (pairs, stats) = PairBuilder.Build(rows, PairBuilder.ShuffledScores, 0, seed: 9);
        var (onSeen, seenStats) = PairBuilder.Build(seen.Select(r => (IReadOnlyList<double>)r).ToList(), "best_vs_worst", 0, seed: 9);
        Assert.Equal(onSeen, pairs);
        Assert.Equal(PairBuilder.Build(rows, "best_vs_worst", 0, seed: 9).Statistics, stats);
        // No judge signal: the chosen response is the prompt's truly best one about once in five (five scored responses).
        double truly = pairs.Average(p => scores[p.PromptIndex][p.Chosen] == scores[p.PromptIndex].Where(double.IsFinite).Max() ? 1.0 : 0.0);
        Assert.InRange(truly, 0.12, 0.3);
        Assert.NotEqual(pairs, PairBuilder.Build(rows, PairBuilder.ShuffledScores, 0, seed: 10).Pairs);
    }

    [Fact]
    public void SppoTargetsOnShuffledScoresAreTheWinRatesOfThePermutedScores()
    {
        var groups = Enumerable.Range(0, 3).Select(p => new ResponseGroup(new PromptItem($"p{p}", null), Tokenizer.Encode($"p{p}"),
            [.. Enumerable.Range(0, 4).Select(i => Tokenizer.Encode($"r{i}"))], [.. Enumerable.Range(0, 4).Select(i => $"r{i}")], p)).ToList();
        double[][] scores = [[3, 1, 2, 0], [0, 5, 1, 2], [2, 4, 1, 3]];
        var settings = new RoundSettings { SamplesPerPrompt = 4, Consistency = "none", PairStrategy = PairBuilder.ShuffledScores, Loss = new() { Kind = "sppo" } };
        var plan = RoundPhases.PlanPairs(groups, scores, [1, 1, 1], settings, seed: 2);
        var seen = PairBuilder.ScoresSeenBy(PairBuilder.ShuffledScores, scores, seed: 2);
        Assert.NotEqual(scores, seen);   // the seed permutes at least one prompt
        var examples = RoundPhases.AssemblePairs(plan, [.. plan.Pairs.Select(_ => new double[] { 0, 0 })]);
        Assert.Equal(plan.Pairs.Count, examples.Count);
        for (int i = 0; i < examples.Count; i++)
        {
            var pair = plan.Pairs[i];
            Assert.Equal(seen[pair.PromptIndex].Max(), seen[pair.PromptIndex][pair.Chosen]);
            Assert.Equal(RoundPhases.WinRate(seen[pair.PromptIndex], pair.Chosen), examples[i].WinChosen, 12);
            Assert.Equal(RoundPhases.WinRate(seen[pair.PromptIndex], pair.Rejected), examples[i].WinRejected, 12);
        }
    }

    [Fact]
    public void TheImplicitRewardBesideAnLlmJudgeIsMeasuredAndDropsNoPairWhereSelfConsistentFiltersOnIt()
    {
        var groups = Enumerable.Range(0, 3).Select(p => new ResponseGroup(new PromptItem($"p{p}", null), Tokenizer.Encode($"p{p}"),
            [.. Enumerable.Range(0, 4).Select(i => Tokenizer.Encode($"r{i}"))], [.. Enumerable.Range(0, 4).Select(i => $"r{i}")], p)).ToList();
        double[][] scores = [[3, 1, 2, 0], [0, 5, 1, 2], [2, 4, 1, 3]];
        // The implicit reward agrees with prompt 0's best-vs-worst pair and orders prompts 1 and 2's the other way round.
        double[][] implicitReward = [[0.9, 0.1, 0.5, -0.2], [0.8, -0.3, 0.1, 0.2], [0.0, -1.0, 0.3, 0.1]];
        var llm = new RoundSettings { SamplesPerPrompt = 4, Consistency = "none", Judge = new() { Kind = "llm", ImplicitAgreement = true } };
        var unmeasured = RoundPhases.PlanPairs(groups, scores, [1, 1, 1], llm with { Judge = new() { Kind = "llm" } }, seed: 2);
        var measured = RoundPhases.PlanPairs(groups, scores, [1, 1, 1], llm, seed: 2, implicitReward);
        Assert.Equal(3, unmeasured.Pairs.Count);
        Assert.Equal(unmeasured.Pairs, measured.Pairs);
        Assert.Equal(unmeasured.Statistics, measured.Statistics);
        var filtered = RoundPhases.PlanPairs(groups, scores, [1, 1, 1], llm with { Judge = new() { Kind = "self_consistent" } }, seed: 2, implicitReward);
        Assert.Equal([0], filtered.Pairs.Select(p => p.PromptIndex));
        Assert.Equal(2, filtered.Statistics.Disagreements);
    }

    [Fact]
    public void BestOfNKeepsTheHighestScoredResponseAndNaNNeverWins()
    {
        Assert.Equal(2, ExperimentControls.Pick([0.1, double.NaN, 0.9, 0.9]));
        Assert.Equal(1, ExperimentControls.Pick([double.NaN, 0.0, double.NaN]));
        Assert.Equal(0, ExperimentControls.Pick([double.NaN, double.NaN]));
        Assert.Equal(0, ExperimentControls.Pick([3.0, 3.0]));
    }

    /// <summary>A task whose answer is any response of even length: an untrained model gets some right, some wrong.</summary>
    private sealed class EvenLength : IVerifiableTask
    {
        public string Name => "sort";
        public IReadOnlyList<PromptItem> Prompts(int count, int seed, string split) => new SortDigitsTask().Prompts(count, seed, split);
        public bool Verify(PromptItem item, string response) => response.Length % 2 == 0;
        public string Demonstrate(PromptItem item, Random random, double noise) => item.Answer!;
    }

    private sealed class ScoreBy(Func<string, double> score) : IJudge
    {
        public string Kind => "test";
        public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default) =>
            new([.. groups.Select(g => g.ResponseTexts.Select(score).ToArray())]);
    }

    [Fact]
    public void BestOfNIsRightExactlyWhereTheJudgesPickIsRight()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var task = new EvenLength();
        var prompts = task.Prompts(12, 2, "test");
        var settings = new RoundSettings { SamplesPerPrompt = 4, Sampling = new() { MaxNewTokens = 9, Temperature = 1.0, BatchSize = 16 } };
        var groups = RoundPhases.Generate(model, Tokenizer, prompts, Enumerable.Range(0, prompts.Count).ToList(), settings, 5, ExperimentControls.BestOfNRound);
        double anyRight = groups.Average(g => g.ResponseTexts.Any(t => t.Length % 2 == 0) ? 1.0 : 0.0);
        double firstRight = groups.Average(g => g.ResponseTexts[0].Length % 2 == 0 ? 1.0 : 0.0);
        Assert.NotEqual(anyRight, firstRight); // the seeds give a case where reranking matters

        // A judge that knows the checker picks a right sample wherever there is one; one that scores nothing keeps the first sample.
        var (oracle, unscored) = ExperimentControls.BestOfN(model, Tokenizer, task, prompts, settings, new ScoreBy(t => t.Length % 2 == 0 ? 1 : 0), 5);
        Assert.Equal(anyRight, oracle, 1e-12);
        Assert.Equal(0, unscored);
        var (blind, allUnscored) = ExperimentControls.BestOfN(model, Tokenizer, task, prompts, settings, new ScoreBy(_ => double.NaN), 5);
        Assert.Equal(firstRight, blind, 1e-12);
        Assert.Equal(1, allUnscored);
    }

    [Fact]
    public void TheFrozenJudgesScoreIsItsMeanScoreOfTheGreedyAnswersLeavingOutWhatItCouldNotScore()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        static bool Even(string answer) => answer.Sum(c => (int)c) % 2 == 0;
        var task = new CheckedBy(Even);
        var prompts = task.Prompts(24, 2, "validation");
        double accuracy = ExperimentControls.GreedyAccuracy(model, Tokenizer, task, prompts, 9, 8);
        Assert.InRange(accuracy, 0.01, 0.99);   // the untrained model's greedy answers fall on both sides of the check here
        // A judge that scores exactly what the checker checks gives the accuracy, with no label in sight.
        Assert.Equal(accuracy, ExperimentControls.FrozenJudgeScore(model, Tokenizer, new ScoreBy(t => Even(t) ? 1 : 0), prompts, 9, 8), 12);
        // Unscored answers are left out, not counted as 0: scoring only the right ones gives 1; scoring none gives NaN.
        Assert.Equal(1.0, ExperimentControls.FrozenJudgeScore(model, Tokenizer, new ScoreBy(t => Even(t) ? 1 : double.NaN), prompts, 9, 8));
        Assert.True(double.IsNaN(ExperimentControls.FrozenJudgeScore(model, Tokenizer, new ScoreBy(_ => double.NaN), prompts, 9, 8)));
    }

    /// <summary>A task whose checker is any function of the response (sort's prompts).</summary>
    private sealed class CheckedBy(Func<string, bool> check) : IVerifiableTask
    {
        public string Name => "sort";
        public IReadOnlyList<PromptItem> Prompts(int count, int seed, string split) => new SortDigitsTask().Prompts(count, seed, split);
        public bool Verify(PromptItem item, string response) => check(response);
        public string Demonstrate(PromptItem item, Random random, double noise) => item.Answer!;
    }

    [Fact]
    public void ExtraSftTakesTheStepsARoundTakesAndLearnsTheDemonstrations()
    {
        Assert.Equal(32, ExperimentControls.RoundSteps(pairs: 512, batchSize: 16, epochs: 1));
        Assert.Equal(66, ExperimentControls.RoundSteps(pairs: 513, batchSize: 16, epochs: 2));
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var losses = ExperimentControls.ExtraSft(model, Tokenizer, new SortDigitsTask(), steps: 30, batchSize: 8, learningRate: 3e-3, noise: 0,
            seed: 1, round: 1);
        Assert.Equal(30, losses.Count);
        Assert.True(losses.TakeLast(5).Average() < losses.Take(5).Average() - 0.5, $"loss {losses[0]:F2} -> {losses[^1]:F2}");
        Assert.Empty(ExperimentControls.ExtraSft(model, Tokenizer, new SortDigitsTask(), 0, 8, 3e-3, 0, 1, 1));
    }
}
