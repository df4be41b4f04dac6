using OnlineAlign.Alignment.Consistency;
using OnlineAlign.Alignment.Pairs;

namespace OnlineAlign.Tests.Alignment;

public class RankingAndPairsTests
{
    [Fact]
    public void KendallTauBMatchesHandComputedValueIncludingTies()
    {
        // tau-b from its definition, computed independently in float64 Python: 7 concordant, 2 discordant, 1 tie in y.
        Assert.Equal(0.7378647873726218, RankAgreement.KendallTauB([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 12);
        Assert.Equal(1.0, RankAgreement.KendallTauB([1, 2, 3], [10, 20, 30]), 12);
        Assert.Equal(-1.0, RankAgreement.KendallTauB([1, 2, 3], [3, 2, 1]), 12);
        Assert.Equal(0.0, RankAgreement.KendallTauB([1, 1, 1], [3, 2, 1]));
    }

    [Fact]
    public void SpearmanUsesAverageRanks()
    {
        // Pearson on average ranks, computed independently in float64 Python.
        Assert.Equal(0.8207826816681233, RankAgreement.Spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 12);
        Assert.Equal([1.0, 2.5, 2.5, 4.0], RankAgreement.AverageRanks([1, 5, 5, 9]));
    }

    [Fact]
    public void ConsistencyRateMapsTauToZeroOne()
    {
        Assert.Equal(1.0, RankAgreement.ConsistencyRate(1));
        Assert.Equal(0.5, RankAgreement.ConsistencyRate(0));
        Assert.Equal(0.0, RankAgreement.ConsistencyRate(-1));
        Assert.Equal(1.0, RankAgreement.TopOrder([0.1, 0.9, 0.3], [1, 5, 2]));
    }

    [Fact]
    public void BestVsWorstDropsAndCountsTiesAndSmallGaps()
    {
        IReadOnlyList<double>[] scores = [[0.1, 0.9, 0.4], [1, 1, 1], [0.5, 0.52], [0, 1]];
        var (pairs, stats) = PairBuilder.Build(scores, "best_vs_worst", minimumGap: 0.1, seed: 0);
        Assert.Equal([new PreferencePair(0, 1, 0, 0.9 - 0.1), new PreferencePair(3, 1, 0, 1)], pairs);
        Assert.Equal(new PairStatistics(4, 2, AllEqual: 1, BelowMinimumGap: 1), stats);
    }

    [Fact]
    public void CurriculumPairsTheBestWithEachOtherResponseInStagesFromEasyToHard()
    {
        // Curry-DPO: N-1 pairs per prompt, the best against each other one; stage k holds each prompt's k-th largest gap.
        IReadOnlyList<double>[] scores = [[4, 1, 3, 2], [0, 5, double.NaN, 5]];
        var (pairs, _) = PairBuilder.Build(scores, "curriculum", 0, 0);
        Assert.Equal([(0, 0, 1, 0), (1, 1, 0, 0), (0, 0, 3, 1), (0, 0, 2, 2)], pairs.Select(p => (p.PromptIndex, p.Chosen, p.Rejected, p.Stage)));
        Assert.Equal([3.0, 5.0, 2.0, 1.0], pairs.Select(p => p.ScoreGap));
    }

    [Fact]
    public void BestVsRandomPicksALowerScoredRejection()
    {
        IReadOnlyList<double>[] scores = [[5, 1, 2, 5, 0]];
        var (pairs, _) = PairBuilder.Build(scores, "best_vs_random", 0, seed: 3);
        Assert.Single(pairs);
        Assert.True(scores[0][pairs[0].Chosen] > scores[0][pairs[0].Rejected]);
        Assert.Throws<ArgumentException>(() => PairBuilder.Build(scores, "nope", 0, 0));
    }
}
