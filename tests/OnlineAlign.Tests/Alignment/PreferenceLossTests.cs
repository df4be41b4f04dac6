using OnlineAlign.Specs;
using OnlineAlign.Alignment.Losses;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Alignment;

/// <summary>Each loss against a value computed by hand (Python, float64) for one pair:
/// log pi(y_w) = -10, log pi(y_l) = -12, log ref(y_w) = -11, log ref(y_l) = -11.5, |y_w| = 4, |y_l| = 5,
/// so the log-ratios are 1 and -0.5 and h = 1.5; beta = 0.1, label smoothing 0.2, C = 0.7.</summary>
public class PreferenceLossTests
{
    private static PairLogProbs Pair() => new(
        tensor(new[] { -10.0 }), tensor(new[] { -12.0 }), tensor(new[] { -11.0 }), tensor(new[] { -11.5 }),
        tensor(new[] { 4.0 }), tensor(new[] { 5.0 }), tensor(new[] { 0.7 }));

    [Theory]
    [InlineData("dpo", 0.0, 0.0, 0.6209570477895321)]
    [InlineData("cdpo", 0.2, 0.0, 0.6509570477895321)]
    [InlineData("robust", 0.2, 0.0, 0.570957047789532)]
    [InlineData("hinge", 0.0, 0.0, 0.85)]
    [InlineData("ipo", 0.0, 0.0, 21.6225)]
    [InlineData("sppo_hard", 0.0, 0.0, 36.25)]
    [InlineData("sppo", 0.0, 0.0, 18.125)]   // no win rates: P_w = 1, P_l = 0, so half of SPPO-hard
    [InlineData("cream", 0.0, 0.0, 0.6659570477895321)]
    [InlineData("dpo", 0.0, 0.5, 1.870957047789532)]
    [InlineData("rft", 0.0, 0.0, 2.5)]       // the chosen response's NLL per token: 10 / 4; the rejected one plays no part
    public void LossMatchesHandComputedValue(string kind, double smoothing, double rpoAlpha, double expected)
    {
        var settings = new LossSpec { Kind = kind, Beta = 0.1, LabelSmoothing = smoothing, RpoAlpha = rpoAlpha };
        double actual = PreferenceLoss.PerPair(settings, Pair()).item<double>();
        Assert.Equal(expected, actual, 1e-9);
    }

    /// <summary>SELM by hand: DPO plus alpha beta [log pi(y) - log pi_ref(y)] = 0.6209570477895321 + 0.5 * 0.1 * (-9 + 10).</summary>
    [Fact]
    public void SelmAddsItsOptimismTermToDpo()
    {
        var pair = Pair() with { PolicyExplore = tensor(new[] { -9.0 }), ReferenceExplore = tensor(new[] { -10.0 }) };
        var selm = new LossSpec { Kind = "dpo", Beta = 0.1, SelmAlpha = 0.5 };
        Assert.Equal(0.6709570477895321, PreferenceLoss.PerPair(selm, pair).item<double>(), 1e-12);
        Assert.Throws<ArgumentException>(() => PreferenceLoss.PerPair(selm, Pair()));
    }

    /// <summary>SPPO's soft target by hand: P_w = 0.8, P_l = 0.3, beta 0.1: ((1 - 3)^2 + (-0.5 + 2)^2) / 2 = 3.125.</summary>
    [Fact]
    public void SppoRegressesLogRatiosOnWinRates()
    {
        var pair = Pair() with { WinChosen = tensor(new[] { 0.8 }), WinRejected = tensor(new[] { 0.3 }) };
        Assert.Equal(3.125, PreferenceLoss.PerPair(new LossSpec { Kind = "sppo", Beta = 0.1 }, pair).item<double>(), 1e-12);
    }

    [Fact]
    public void CreamWithFullConsistencyIsDpoAndWithHalfIgnoresTheLabel()
    {
        var pair = Pair() with { Consistency = tensor(new[] { 1.0 }) };
        var cream = new LossSpec { Kind = "cream", Beta = 0.1 };
        Assert.Equal(PreferenceLoss.PerPair(cream with { Kind = "dpo" }, pair).item<double>(), PreferenceLoss.PerPair(cream, pair).item<double>(), 12);
        // C = 0.5: the label says nothing, so swapping chosen and rejected changes nothing.
        var half = pair with { Consistency = tensor(new[] { 0.5 }) };
        var swapped = half with
        {
            PolicyChosen = half.PolicyRejected, PolicyRejected = half.PolicyChosen,
            ReferenceChosen = half.ReferenceRejected, ReferenceRejected = half.ReferenceChosen,
        };
        Assert.Equal(PreferenceLoss.PerPair(cream, half).item<double>(), PreferenceLoss.PerPair(cream, swapped).item<double>(), 12);
    }

    [Theory]
    [InlineData("beta", 0.0)]
    [InlineData("label_smoothing", 0.5)]
    public void OutOfRangeSettingsAreRefusedByName(string field, double value)
    {
        var settings = field == "beta" ? new LossSpec { Beta = value } : new LossSpec { LabelSmoothing = value };
        Assert.Contains(settings.Problems(SpecLimits.Default), p => p.StartsWith($"loss.{field} must be", StringComparison.Ordinal));
    }
}
