using System.Globalization;
using OnlineAlign.Specs;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Losses;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;

using static OnlineAlign.Tests.Alignment.JudgeTestData;

namespace OnlineAlign.Tests.Alignment;

/// <summary>Self-Rewarding's EFT warm start and compact judge, SPPO's win rates, and self-consistency of internal rewards.</summary>
public class SelfRewardingMethodsTests
{


    /// <summary>By hand: scores {1, 0, 3} (NaN left out): (sigmoid(0) + sigmoid(1) + sigmoid(-2)) / 3 = 0.4500871669.</summary>
    [Fact]
    public void SppoWinRateIsTheMeanSigmoidOfScoreDifferencesOverScoredResponses()
    {
        double[] scores = [1, 0, double.NaN, 3];
        Assert.Equal(0.4500871669, RoundPhases.WinRate(scores, 0), 9);
        Assert.Equal((0.5 + 1 / (1 + Math.Exp(-3)) + 1 / (1 + Math.Exp(-2))) / 3, RoundPhases.WinRate(scores, 3), 12);
    }

    [Fact]
    public void PairsCarryTheirWinRatesAndOnlyPairsBothJudgesOrderAlikeAreKept()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var groups = Groups(3, 3);
        var judge = new AgreementJudge(new FixedJudge([3, 1, 2], [0, 5, 1], [2, 2, 4]), new FixedJudge([0.5, -1, 0], [1, 0, 2], [0, 1, 3]));
        var settings = new RoundSettings { SamplesPerPrompt = 3, Consistency = "none", Judge = new() { Kind = "self_consistent", Template = "compact" } };
        var judged = RoundPhases.Judge(groups, judge, null, settings, null, Tokenizer.EosId);
        var outcome = RoundPhases.Pairs(groups, judged, settings, model, 1, 1, 0);
        // Prompt 0: best 0 over worst 1, and the implicit reward agrees (0.5 > -1): kept. Prompt 1: best 1 over
        // worst 0, the implicit reward says 0 < 1: dropped. Prompt 2: best 2 over worst 0 (first of the tie), 3 > 0: kept.
        Assert.Equal(2, outcome.Metrics["pairs/kept"]);
        Assert.Equal(1, outcome.Metrics["pairs/dropped_disagreement"]);
        var first = outcome.Examples[0];
        Assert.Equal(RoundPhases.WinRate([3, 1, 2], 0), first.WinChosen, 12);
        Assert.Equal(RoundPhases.WinRate([3, 1, 2], 1), first.WinRejected, 12);
    }

    [Fact]
    public void EftExamplesAreTheCheckersVerdictsOnRightAndNearMissResponsesToTrainingPromptsOnly()
    {
        var task = new SortDigitsTask();
        var settings = new WarmStart.Settings(JudgeExamples: 400);
        var examples = WarmStart.JudgeExamples(task, settings, seed: 7);
        Assert.Equal(400, examples.Count);
        int right = examples.Count(e => e.Target == "Score: 5");
        Assert.InRange(right, 150, 250);
        Assert.All(examples, e => Assert.True(e.Target is "Score: 5" or "Score: 0"));
        foreach (var (prompt, target) in examples)
        {
            // "judge sort 4213=1234\n": the prompt and response, and the verdict matches the task's checker.
            var line = prompt["judge ".Length..^1];
            int eq = line.IndexOf('=');
            var item = new PromptItem(line[..(eq + 1)], new string(line[5..eq].Order().ToArray()));
            Assert.Equal(PromptStreams.Train, PromptStreams.Of(item.Prompt));
            Assert.Equal(task.Verify(item, line[(eq + 1)..]), target == "Score: 5");
        }
    }

    /// <summary>
    /// The compact judge's expected score equals sum_d p(d) d over the digits 0-5, computed here from a plain
    /// forward pass, and rows judged together give what each gives alone.
    /// </summary>
    [Fact]
    public void ExpectedScoreIsTheDigitDistributionsMeanAndDoesNotDependOnTheBatch()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 11);
        var groups = Groups(2, 3);
        var judge = new LlmJudge(model, Tokenizer, 1, new SamplingOptions(), "compact", LlmJudgeScoring.Expected);
        var all = judge.Score(groups).Scores;
        var alone = judge.Score([groups[1]]).Scores[0];
        // Alone, the group's rows share a longer prefix (the prompt too), computed once: equal up to float rounding (~1e-6).
        for (int i = 0; i < 3; i++) Assert.Equal(alone[i], all[1][i], 4);

        var ids = Examples.PromptIds(Tokenizer, JudgePrompts.Format("compact", groups[0].Item.Prompt, groups[0].ResponseTexts[2]) + JudgePrompts.ScorePrefix);
        using var noGrad = TorchSharp.torch.no_grad();
        using var hidden = model.Hidden(TorchSharp.torch.tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length]));
        using var logits = model.Logits(hidden[0, ids.Length - 1]);
        var p = logits.softmax(-1).data<float>().ToArray();
        double mass = 0, sum = 0;
        for (int d = 0; d <= 5; d++) { double pd = p[Tokenizer.Encode(d.ToString(CultureInfo.InvariantCulture))[0]]; mass += pd; sum += pd * d; }
        Assert.Equal(sum / mass, all[0][2], 4);
        Assert.InRange(all[0][2], 0, 5);
    }

    /// <summary>
    /// A judge template's fixed text before the prompt is computed once and shared by every row (its keys and
    /// values reused): each expected score still equals a plain forward pass over that row's whole judge prompt.
    /// </summary>
    [Fact]
    public void ASharedRubricPrefixIsComputedOnceAndEveryScoreEqualsTheRowsOwnForwardPass()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 12);
        var groups = Groups(2, 3);
        const string template = "Judge it, fairly, 0 to 5: {prompt}{response}\n";
        var judge = new LlmJudge(model, Tokenizer, 1, new SamplingOptions(), template, LlmJudgeScoring.Expected);
        var scores = judge.Score(groups).Scores;
        using var noGrad = TorchSharp.torch.no_grad();
        for (int g = 0; g < groups.Count; g++)
            for (int i = 0; i < 3; i++)
            {
                var ids = Examples.PromptIds(Tokenizer, JudgePrompts.Format(template, groups[g].Item.Prompt, groups[g].ResponseTexts[i]) + JudgePrompts.ScorePrefix);
                using var hidden = model.Hidden(TorchSharp.torch.tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length]));
                using var logits = model.Logits(hidden[0, ids.Length - 1]);
                var p = logits.softmax(-1).data<float>().ToArray();
                double mass = 0, sum = 0;
                for (int d = 0; d <= 5; d++) { double pd = p[Tokenizer.Encode(d.ToString(CultureInfo.InvariantCulture))[0]]; mass += pd; sum += pd * d; }
                Assert.Equal(sum / mass, scores[g][i], 4);
            }
    }

    /// <summary>
    /// SELM: each pair carries its prompt's first sample with that sample's log-prob under the reference, and the
    /// update uses it. Before the first step the policy is the reference, so both DPO's log-ratio and SELM's
    /// term vanish and the loss is exactly ln 2; a wrong reference log-prob for the sample would show here.
    /// </summary>
    [Fact]
    public void SelmPairsCarryTheFirstSampleWithItsReferenceLogProbIntoTraining()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var groups = Groups(2, 3);
        var settings = new RoundSettings { SamplesPerPrompt = 3, Consistency = "none", Loss = new LossSpec { Kind = "dpo", Beta = 0.1, SelmAlpha = 0.5 } };
        var (examples, _, _) = RoundPhases.BuildPairs(groups, [[3, 1, 2], [0, 5, 1]], [1.0, 1.0], settings, model, 1, 0);
        Assert.Equal(groups[0].ResponseIds[0], examples[0].Explore);
        double expected = ResponseLogProbs.Score(model, [new PromptResponse(groups[0].PromptIds, groups[0].ResponseIds[0])])[0].Sum;
        Assert.Equal(expected, examples[0].ReferenceExplore, 4);
        var steps = PreferenceTrainer.Train(model, examples, new PreferenceTrainer.Settings(settings.Loss, RoundPhases.Optimizer(settings.Optimizer), 1, 4, 1));
        Assert.Equal(Math.Log(2), steps[0].Loss, 4);
    }
}
