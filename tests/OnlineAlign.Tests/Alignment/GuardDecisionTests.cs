using OnlineAlign.Alignment.Health;
using OnlineAlign.Specs;

namespace OnlineAlign.Tests.Alignment;

/// <summary>The guard's stop and best-round decision over rounds' metrics: thresholds, NaN signals, no rounds, the first round tripping.</summary>
public class GuardDecisionTests
{
    private static readonly GuardSpec On = new() { Enabled = true };

    private static (int, IReadOnlyDictionary<string, double>) R(int round, double tau = 0.9, double kl = 0.1, double drift = 0, double unscored = 0,
        double entropy = 0.8) => (round, new Dictionary<string, double>
    {
        [HealthSignals.JudgeDriftTau] = tau, [HealthSignals.KlInitial] = kl, [HealthSignals.LengthDrift] = drift,
        [HealthSignals.UnscoredRate] = unscored, [HealthSignals.ScoreEntropy] = entropy,
    });

    [Fact]
    public void OffItDecidesNothing()
    {
        var verdict = GuardDecision.Decide(new GuardSpec(), [R(0), R(1, tau: -1)]);
        Assert.Null(verdict.BestRound);
        Assert.False(verdict.Stop);
    }

    [Fact]
    public void WithoutACrossingTheLastRoundIsBestAndTheRunGoesOn()
    {
        var verdict = GuardDecision.Decide(On, [R(0), R(1), R(2)]);
        Assert.Equal(2, verdict.BestRound);
        Assert.False(verdict.Stop);
        Assert.Null(verdict.StopReason);
        Assert.Contains("no health signal crossed", verdict.BestReason);
        // Round 0 alone (evaluated, no round committed yet): the initial policy is the best so far.
        Assert.Equal(0, GuardDecision.Decide(On, [R(0)]).BestRound);
        // Nothing evaluated yet: no best round.
        Assert.Null(GuardDecision.Decide(On, []).BestRound);
    }

    [Fact]
    public void TheFirstRoundThatCrossesStopsTheRunAndTheRoundBeforeItIsBest()
    {
        var verdict = GuardDecision.Decide(On, [R(0), R(1), R(2, tau: 0.2), R(3, kl: 100)]);
        Assert.True(verdict.Stop);
        Assert.Equal(2, verdict.TrippedRound);
        Assert.Equal(1, verdict.BestRound);
        Assert.Equal("the guard stopped the run after round 2: health/judge_drift_tau 0.2 below guard.min_judge_tau 0.5; best round 1", verdict.StopReason);
        Assert.Contains("round 2's health signals crossed", verdict.BestReason);
    }

    [Fact]
    public void RoundOneCrossingMakesTheInitialPolicyBest()
    {
        var verdict = GuardDecision.Decide(On, [R(0), R(1, unscored: 1)]);
        Assert.Equal(1, verdict.TrippedRound);
        Assert.Equal(0, verdict.BestRound);
        Assert.Contains("health/unscored_rate 1 above guard.max_unscored_rate 0.5", verdict.StopReason);
        // Round 0 not evaluated (not in the list): the best is still round 0, the initial policy.
        Assert.Equal(0, GuardDecision.Decide(On, [R(1, unscored: 1)]).BestRound);
    }

    [Fact]
    public void EachThresholdIsNamedAndLengthDriftCountsBothWays()
    {
        var g = On with { MinScoreEntropy = 0.3, MinImplicitAgreement = 0, MinMajorityAgreement = 0.1 };
        var m = new Dictionary<string, double>
        {
            [HealthSignals.JudgeDriftTau] = 0.1, [HealthSignals.KlInitial] = 6, [HealthSignals.LengthDrift] = -0.6,
            [HealthSignals.UnscoredRate] = 0.7, [HealthSignals.ScoreEntropy] = 0.1, [HealthSignals.ImplicitAgreement] = -0.2,
            [HealthSignals.MajorityAgreement] = 0.05,
        };
        var crossed = GuardDecision.Crossings(g, m);
        foreach (var field in new[] { "min_judge_tau", "max_kl_initial", "max_length_drift", "max_unscored_rate", "min_score_entropy", "min_implicit_agreement",
                     "min_majority_agreement" })
            Assert.Contains(crossed, c => c.Contains("guard." + field + " "));
        Assert.Contains("|health/length_drift| 0.6 above guard.max_length_drift 0.5", crossed);
        // At the bounds nothing trips: "below" and "above" are strict.
        Assert.Empty(GuardDecision.Crossings(g, new Dictionary<string, double>
        {
            [HealthSignals.JudgeDriftTau] = 0.5, [HealthSignals.KlInitial] = 5, [HealthSignals.LengthDrift] = 0.5,
            [HealthSignals.UnscoredRate] = 0.5, [HealthSignals.ScoreEntropy] = 0.3, [HealthSignals.ImplicitAgreement] = 0,
            [HealthSignals.MajorityAgreement] = 0.1,
        }));
    }

    [Fact]
    public void ThePerTokenKlBoundTripsAboveItNotAtOrBelowItAndNeverWhenZero()
    {
        static Dictionary<string, double> M(double perToken) => new(R(1).Item2) { [HealthSignals.KlInitialPerToken] = perToken };
        Assert.Equal(0, new GuardSpec().MaxKlInitialPerToken); // off by default: not calibrated on a real model yet
        Assert.Empty(GuardDecision.Crossings(On, M(1e6)));
        var bounded = On with { MaxKlInitialPerToken = 0.05 };
        Assert.Equal(["health/kl_initial_per_token 0.051 above guard.max_kl_initial_per_token 0.05"], GuardDecision.Crossings(bounded, M(0.051)));
        Assert.Empty(GuardDecision.Crossings(bounded, M(0.05)));
        Assert.Empty(GuardDecision.Crossings(bounded, M(0.01)));
        Assert.Empty(GuardDecision.Crossings(bounded, M(double.NaN)));
        Assert.Empty(GuardDecision.Crossings(bounded, R(1).Item2)); // not recorded (a run from before the signal): never trips

        // In the decision: round 2 crosses the per-token bound alone (its per-sequence KL is well within max_kl_initial).
        var verdict = GuardDecision.Decide(bounded, [R(0), (1, M(0.02)), (2, M(0.2))]);
        Assert.Equal(2, verdict.TrippedRound);
        Assert.Equal(1, verdict.BestRound);
        Assert.Equal("the guard stopped the run after round 2: health/kl_initial_per_token 0.2 above guard.max_kl_initial_per_token 0.05; best round 1",
            verdict.StopReason);
        Assert.False(GuardDecision.Decide(On, [R(0), (1, M(0.02)), (2, M(0.2))]).Stop);
    }

    [Fact]
    public void TheScoreEntropyUpperBoundTripsAboveItAndNeverAtItsDefault()
    {
        static Dictionary<string, double> M(double entropy) => new(R(1).Item2) { [HealthSignals.ScoreEntropy] = entropy };
        Assert.Equal(1, new GuardSpec().MaxScoreEntropy); // the normalised entropy is at most 1: the default never trips
        Assert.Empty(GuardDecision.Crossings(On, M(1)));
        var bounded = On with { MaxScoreEntropy = 0.35 };
        Assert.Equal(["health/score_entropy 0.49 above guard.max_score_entropy 0.35"], GuardDecision.Crossings(bounded, M(0.49)));
        Assert.Empty(GuardDecision.Crossings(bounded, M(0.35)));
        Assert.Empty(GuardDecision.Crossings(bounded, M(double.NaN)));

        // Round 1 trips: the run keeps round 0, the initial policy.
        var verdict = GuardDecision.Decide(bounded, [R(0), (1, M(0.49)), (2, M(0.3))]);
        Assert.Equal(1, verdict.TrippedRound);
        Assert.Equal(0, verdict.BestRound);
    }

    [Fact]
    public void AScoreEntropyRiseOverTheRoundBeforeTripsAndTheBestRoundIsTheOneBeforeThatRoundsPolicy()
    {
        Assert.Equal(1, new GuardSpec().MaxScoreEntropyRise); // the entropy is in [0, 1]: a rise is at most 1, so the default never trips
        Assert.False(GuardDecision.Decide(On, [R(0), R(1, entropy: 0), R(2, entropy: 1)]).Stop);
        var rising = On with { MaxScoreEntropyRise = 0 };

        // Falling round after round (a gaining policy's samples agree more): nothing trips, the last round is best.
        var falling = GuardDecision.Decide(rising, [R(0), R(1, entropy: 0.33), R(2, entropy: 0.19), R(3, entropy: 0.16), R(4, entropy: 0.11)]);
        Assert.False(falling.Stop);
        Assert.Equal(4, falling.BestRound);

        // Round 3's samples (drawn by P2) scatter more than round 2's (drawn by P1): the run stops after round 3 and keeps P1.
        var verdict = GuardDecision.Decide(rising, [R(0), R(1, entropy: 0.33), R(2, entropy: 0.317), R(3, entropy: 0.347), R(4, entropy: 0.355)]);
        Assert.Equal(3, verdict.TrippedRound);
        Assert.Equal(1, verdict.BestRound);
        Assert.Equal("the guard stopped the run after round 3: health/score_entropy rose 0.03 (from 0.317 to 0.347) above " +
                     "guard.max_score_entropy_rise 0; best round 1", verdict.StopReason);
        Assert.Contains("and before round 2, whose policy sampled round 3", verdict.BestReason);

        // A rise in round 2 (P1 scatters more than P0): the initial policy is best.
        Assert.Equal(0, GuardDecision.Decide(rising, [R(0), R(1, entropy: 0.27), R(2, entropy: 0.30)]).BestRound);
        // A margin: a rise up to it does not trip, one above it does (strictly; values exact in binary).
        var margin = On with { MaxScoreEntropyRise = 0.125 };
        Assert.False(GuardDecision.Decide(margin, [R(0), R(1, entropy: 0.25), R(2, entropy: 0.375)]).Stop);
        Assert.True(GuardDecision.Decide(margin, [R(0), R(1, entropy: 0.25), R(2, entropy: 0.5)]).Stop);
        // Round 1 has no round before it to rise from; a NaN or missing entropy on either side never trips.
        Assert.False(GuardDecision.Decide(rising, [R(0, entropy: 0), R(1, entropy: 0.9)]).Stop);
        Assert.False(GuardDecision.Decide(rising, [R(0), R(1, entropy: double.NaN), R(2, entropy: 0.9)]).Stop);
        Assert.False(GuardDecision.Decide(rising, [R(0), R(1, entropy: 0.1), R(2, entropy: double.NaN), R(3, entropy: 0.9)]).Stop);
        Assert.False(GuardDecision.Decide(rising, [R(0), (1, new Dictionary<string, double>()), R(2, entropy: 0.9)]).Stop);

        // With an absolute bound crossed in the same round, the rise still sends the best round two back.
        var both = GuardDecision.Decide(rising with { MaxKlInitial = 1 }, [R(0), R(1, entropy: 0.2), R(2, entropy: 0.19), R(3, entropy: 0.3, kl: 2)]);
        Assert.Equal(3, both.TrippedRound);
        Assert.Equal(1, both.BestRound);
        Assert.Contains("health/kl_initial 2 above guard.max_kl_initial 1; health/score_entropy rose", both.StopReason);
    }

    [Fact]
    public void NaNOrMissingSignalsNeverTrip()
    {
        var nan = new Dictionary<string, double>
        {
            [HealthSignals.JudgeDriftTau] = double.NaN, [HealthSignals.KlInitial] = double.NaN, [HealthSignals.LengthDrift] = double.NaN,
            [HealthSignals.UnscoredRate] = double.NaN, [HealthSignals.ScoreEntropy] = double.NaN,
        };
        var strict = On with { MinScoreEntropy = 1, MinImplicitAgreement = 1 };
        Assert.Empty(GuardDecision.Crossings(strict, nan));
        Assert.Empty(GuardDecision.Crossings(strict, new Dictionary<string, double>()));
        // An all-unscored round: entropy and drift are NaN, but the unscored rate (1) trips.
        var verdict = GuardDecision.Decide(strict, [R(0), (1, new Dictionary<string, double>(nan) { [HealthSignals.UnscoredRate] = 1 })]);
        Assert.Equal(1, verdict.TrippedRound);
        Assert.Equal(0, verdict.BestRound);
        Assert.Equal("the guard stopped the run after round 1: health/unscored_rate 1 above guard.max_unscored_rate 0.5; best round 0", verdict.StopReason);
    }

    [Fact]
    public void RetentionKeepsTheGuardsBestRound()
    {
        // Four rounds with keep_last 1, the run over; round 4 tripped the guard, so round 3 is what export takes.
        var rounds = Enumerable.Range(1, 4).Select(k => new OnlineAlign.Contracts.RoundRecord
        {
            Round = k, ManifestPath = $"m{k}", Metrics = new(R(k, tau: k == 4 ? 0 : 0.9).Item2) { ["eval/accuracy"] = k == 1 ? 0.9 : 0.1 },
        }).ToList();
        var spec = new OnlineAlign.Contracts.RunSpec { Rounds = 4, Retention = new() { KeepLast = 1 }, Guard = On };
        Assert.Equal([0, 1, 3, 4], OnlineAlign.Execution.Retention.CheckpointRetention.Kept(spec, rounds));
        Assert.Equal([0, 1, 4], OnlineAlign.Execution.Retention.CheckpointRetention.Kept(spec with { Guard = new() }, rounds));
    }
}
