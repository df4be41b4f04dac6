using OnlineAlign.Alignment.Health;

namespace OnlineAlign.Tests.Alignment;

/// <summary>The label-free health signals' arithmetic, with the edge cases a round can produce: nothing scored, NaN, ties, no round 0.</summary>
public class HealthSignalTests
{
    // Returns the interface type on purpose: the signals take it, and the helper exists to convert.
#pragma warning disable CA1859
    private static IReadOnlyList<IReadOnlyList<double>> S(params double[][] rows) => rows;
#pragma warning restore CA1859

    [Fact]
    public void KlIsTheMeanPerSequenceLogRatioAndNaNWithoutSamples()
    {
        Assert.Equal(((-1.0 - -3.0) + (-2.0 - -1.5)) / 2, HealthSignals.Kl([-1.0, -2.0], [-3.0, -1.5]), 12);
        Assert.Equal(0, HealthSignals.Kl([-4.0, -5.0], [-4.0, -5.0]));
        Assert.True(double.IsNaN(HealthSignals.Kl([], [])));
        Assert.Throws<ArgumentException>(() => HealthSignals.Kl([-1.0], []));
    }

    [Fact]
    public void KlPerTokenIsTheSummedLogRatioOverAllResponseTokens()
    {
        // Two samples of 2 and 6 tokens: log-ratios 2 and 0.4 nats, so 2.4 nats over 8 tokens = 0.3 per token. Per sequence
        // (health/kl_initial) the same samples give 1.2; the mean of the per-sample rates (1 and 0.0667) would be 0.533.
        double[] own = [-1.0, -2.0], initial = [-3.0, -2.4];
        Assert.Equal(0.3, HealthSignals.KlPerToken(own, initial, [2, 6]), 12);
        Assert.Equal(1.2, HealthSignals.Kl(own, initial), 12);
        // Equal to the per-sequence KL's sum divided by the tokens in all: it does not grow with the answers' length.
        Assert.Equal(HealthSignals.Kl(own, initial) * own.Length / 8, HealthSignals.KlPerToken(own, initial, [2, 6]), 12);
        Assert.Equal(0.3, HealthSignals.KlPerToken([-10.0, -20.0], [-30.0, -24.0], [20, 60]), 12);
        Assert.True(double.IsNaN(HealthSignals.KlPerToken([], [], [])));
        Assert.True(double.IsNaN(HealthSignals.KlPerToken([0.0], [0.0], [0])));
        Assert.Throws<ArgumentException>(() => HealthSignals.KlPerToken([-1.0], [-1.0], []));
    }

    [Fact]
    public void TheEvaluationRecordsBothKlSignalsFromTheSameSamples()
    {
        // Three evaluation prompts' samples (1, 3 and 4 tokens): the per-token KL is the per-sequence one's sum over their 8 tokens.
        var shard = new OnlineAlign.Alignment.Rounds.EvalShard([0, 1, 2], [1, 0, 1], [1, 1, 1], [true, true, true],
            [-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0], [-2.0, -2.5, -5.5], [1, 3, 4]);
        var metrics = OnlineAlign.Alignment.Rounds.RoundPhases.SummarizeEvaluation(shard, hasTask: true);
        Assert.Equal((1 + 0.5 + 2.5) / 3, metrics[HealthSignals.KlInitial], 12);
        Assert.Equal((1 + 0.5 + 2.5) / 8, metrics[HealthSignals.KlInitialPerToken], 12);
        Assert.Equal(metrics[HealthSignals.KlInitial] * 3 / 8, metrics[HealthSignals.KlInitialPerToken], 12);
    }

    [Fact]
    public void LengthDriftIsRelativeToRoundZeroAndNaNWithoutIt()
    {
        Assert.Equal(0.5, HealthSignals.RelativeLengthDrift(6, 4), 12);
        Assert.Equal(-0.25, HealthSignals.RelativeLengthDrift(3, 4), 12);
        Assert.True(double.IsNaN(HealthSignals.RelativeLengthDrift(3, 0)));
        Assert.True(double.IsNaN(HealthSignals.RelativeLengthDrift(double.NaN, 4)));

        var metrics = new Dictionary<string, double> { [HealthSignals.SampleLength] = 10 };
        HealthSignals.AddLengthDrift(metrics, new Dictionary<string, double> { [HealthSignals.SampleLength] = 8 });
        Assert.Equal(0.25, metrics[HealthSignals.LengthDrift], 12);
        HealthSignals.AddLengthDrift(metrics, null); // no round 0 (not evaluated): unknown, never 0
        Assert.True(double.IsNaN(metrics[HealthSignals.LengthDrift]));
    }

    [Fact]
    public void ScoreEntropyIsZeroForCollapsedScoresOneForDistinctOnesAndSkipsUnscoredPrompts()
    {
        Assert.Equal(0, HealthSignals.NormalisedScoreEntropy(S([3, 3, 3, 3])));
        Assert.Equal(1, HealthSignals.NormalisedScoreEntropy(S([1, 2, 3, 4])), 12);
        // Two values, two each, over 4 responses: log 2 / log 4 = 0.5; an unscored response leaves its prompt's count.
        Assert.Equal(0.5, HealthSignals.NormalisedScoreEntropy(S([1, 1, 5, 5])), 12);
        Assert.Equal(1, HealthSignals.NormalisedScoreEntropy(S([1, double.NaN, 2], [double.NaN, double.NaN, 7])), 12);
        // All unscored: there is no entropy to measure, not 0 (which would read as a collapse).
        Assert.True(double.IsNaN(HealthSignals.NormalisedScoreEntropy(S([double.NaN, double.NaN], [double.NaN, 4]))));
    }

    [Fact]
    public void UnscoredRateCountsNaNAndInfinityOverEveryResponse()
    {
        Assert.Equal(0.5, HealthSignals.Unscored(S([1, double.NaN], [double.PositiveInfinity, 2])));
        Assert.Equal(1, HealthSignals.Unscored(S([double.NaN, double.NaN])));
        Assert.True(double.IsNaN(HealthSignals.Unscored(S())));
    }

    [Fact]
    public void ImplicitAgreementIsTheMeanTauOverPromptsBothRank()
    {
        // Prompt 0 agrees (tau 1), prompt 1 is reversed (tau -1), prompt 2 has one scored response and is left out.
        var llm = S([1, 2, 3], [1, 2, 3], [1, double.NaN, double.NaN]);
        var @implicit = S([0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [5, 6, 7]);
        Assert.Equal(0, HealthSignals.Agreement(llm, @implicit), 12);
        Assert.Equal(1, HealthSignals.Agreement(S([1, 2, 3]), S([0.1, 0.2, 0.3])), 12);
        Assert.True(double.IsNaN(HealthSignals.Agreement(S([double.NaN, double.NaN]), S([1, 2]))));
    }

    [Fact]
    public void MajorityAgreementLeavesOutPromptsWhereTheVoteRanksNothing()
    {
        // Prompt 0: the judge prefers the majority answer (tau 1); prompt 1: it prefers the lone answer (tau -1, ties
        // among the majority's samples); prompt 2: every sample gives the same answer, prompt 3 all different ones:
        // the vote ranks nothing there and they are left out rather than counted as tau 0.
        var judge = S([9, 9, 1], [1, 1, 9], [1, 2, 3], [3, 2, 1]);
        var votes = S([2.0 / 3, 2.0 / 3, 1.0 / 3], [2.0 / 3, 2.0 / 3, 1.0 / 3], [1, 1, 1], [1.0 / 3, 1.0 / 3, 1.0 / 3]);
        Assert.Equal(0, HealthSignals.VoteAgreement(judge, votes), 12);
        Assert.Equal(1, HealthSignals.VoteAgreement(S([9, 9, 1]), S([2.0 / 3, 2.0 / 3, 1.0 / 3])), 12);
        Assert.True(double.IsNaN(HealthSignals.VoteAgreement(S([1, 2, 3]), S([1, 1, 1]))));
        // The vote's ranking counts over the samples the judge scored: one unscored sample can leave a single vote value.
        Assert.True(double.IsNaN(HealthSignals.VoteAgreement(S([1, 2, double.NaN]), S([2.0 / 3, 2.0 / 3, 1.0 / 3]))));
    }

    [Fact]
    public void JudgeDriftIsOneForTheSameJudgeAndLeavesOutPromptsRoundZeroDoesNotRank()
    {
        var round0 = S([1, 2, 3, 4], [2, 2, 2, 2], [1, double.NaN, 3, 2]);
        Assert.Equal(1, HealthSignals.JudgeDrift(round0, round0), 12);
        // Prompt 0 reversed (tau -1); prompt 1's round-0 scores all tie (left out, whatever the current judge says);
        // prompt 2: the responses both scored are 0, 2, 3, ranked alike (tau 1).
        var current = S([4, 3, 2, 1], [1, 2, 3, 4], [0, 9, 5, 4]);
        Assert.Equal(0, HealthSignals.JudgeDrift(current, round0), 12);
        // A current judge that collapses to one score where round 0 ranked: tau 0, a drift the guard can see.
        Assert.Equal(0, HealthSignals.JudgeDrift(S([3, 3, 3, 3]), S([1, 2, 3, 4])));
        Assert.True(double.IsNaN(HealthSignals.JudgeDrift(S([double.NaN, double.NaN]), S([1, 2]))));
        Assert.True(double.IsNaN(HealthSignals.JudgeDrift(S(), S())));
    }
}
