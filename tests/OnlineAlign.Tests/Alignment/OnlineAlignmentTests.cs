using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Alignment.Pairs;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// Learning tests: whole runs in one process through the cluster's own phase functions (InProcessRun). Each pins torch's
/// thread count to 1 (the experiment's count, align_sweep.sh --threads 1), so its result does not depend on the machine's cores.
/// </summary>
[Collection(PinnedTorchThreads.Name)]
public class OnlineAlignmentTests(OnlineAlignmentTests.Runs runs, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<OnlineAlignmentTests.Runs>
{
    /// <summary>The torch thread count the learning tests' results were measured with.</summary>
    private const int Threads = 1;

    /// <summary>
    /// The runs the tests assert on, started together when the class starts, one torch thread each (a run's result does not
    /// depend on what other threads compute), each test awaiting its own: on two cores the verifier-judged run shares the
    /// cores with the three label-free seeds (each the default run, then its shuffled-score control from the same round 0)
    /// instead of running alone beside an idle core.
    /// </summary>
    public sealed class Runs : IDisposable
    {
        private readonly TorchThreadScope _threads = new(Threads);
        public Task<IReadOnlyList<RoundReport>> VerifierJudged { get; } = Start(VerifierJudgedRounds);
        public Task<LabelFree[]> LabelFreeSeeds { get; } = Task.WhenAll(FreshSeeds.Select(seed => Start(() => LabelFreeRound(seed))));

        private static Task<T> Start<T>(Func<T> run) =>
            Task.Factory.StartNew(run, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        public void Dispose()
        {
            // The thread count stays pinned until every run has ended, whether or not its test awaited it.
            try { Task.WaitAll(VerifierJudged, LabelFreeSeeds); }
            catch (AggregateException) { } // a run's failure is its test's
            _threads.Dispose();
        }
    }

    private static RunSpec VerifierSpec() => new()
    {
        Prompts = new() { Task = "sort", EvalPrompts = 100 }, SftSteps = 150, SftNoise = 0.3, EftExamples = 0, Rounds = 3, PromptsPerRound = 512, SamplesPerPrompt = 8, Consistency = "none", Seed = 1, Device = "cpu", Judge = new() { Kind = "verifier" }, Loss = new() { Kind = "dpo", Beta = 0.1 }, Optimizer = new() { LearningRate = 3e-5, BatchSize = 16 }
    };

    /// <summary>Round 0 (the warm start, evaluated) and the verifier-judged rounds after it.</summary>
    private static IReadOnlyList<RoundReport> VerifierJudgedRounds()
    {
        var spec = VerifierSpec();
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("local-run"), pretrainedCache: RepositoryPaths.PretrainedCache);
        run.Prepare();
        for (int round = 1; round <= spec.Rounds; round++) run.RunRound();
        return [.. run.Reports];
    }

    /// <summary>
    /// The loop learns from correct labels: after two verifier-judged updates the policy samples right answers more often
    /// than the warm-started policy did, each measured on its round's 4,096 samples (512 prompts the policy had not been
    /// trained on, 8 samples each). Greedy accuracy on 100 held-out prompts is too coarse for this run's small steps:
    /// on seeds 1-4 it changed by +0, +1, +9 and -1 points over the three rounds (2026-12-05, a Xeon with AVX-512 and
    /// AMX), and seed 1's +0 there was a gain on the machine the test was written on, so it is reported, not asserted;
    /// the sampled accuracy rose by 3.4 to 5.4 points on each of those seeds (61.0-62.0 % -> 65.2-66.4 %).
    /// </summary>
    [Fact]
    public async Task VerifierJudgedRoundsRaiseSampledAccuracyOnPromptsNotYetTrainedOn()
    {
        var reports = await runs.VerifierJudged;
        double before = reports[0].Metrics["eval/accuracy"];
        Assert.InRange(before, 0.3, 0.9); // the warm start is clearly imperfect
        Assert.All(reports.Skip(1), r => Assert.True(r.Metrics["pairs/kept"] > 0));
        double first = reports[1].Metrics["generation/accuracy"], last = reports[^1].Metrics["generation/accuracy"];
        output.WriteLine($"greedy held-out accuracy {before:P1} -> {reports[^1].Metrics["eval/accuracy"]:P1}; sampled {first:P1} -> {last:P1}");
        Assert.True(last > first, $"sampled accuracy {first:P1} in round 1 (the warm-started policy), {last:P1} in round {reports.Count - 1}");
    }

    /// <summary>
    /// Seeds the default recipe was not chosen on: it was chosen on the validation stream of seeds 6-15 (this machine) and
    /// 6-16 (the H200 machine's CPUs), so by rule the first three after those. They belong to the confirmation sweep of
    /// seeds 16-25 (docs/experiments.md), which had run before the test took them.
    /// </summary>
    private static readonly ulong[] FreshSeeds = [17, 18, 19];

    /// <summary>The lowest mean change (accuracy, 0-1) of three seeds that does not reject "the round does not hurt" (see below).</summary>
    private const double NoHarmBound = -0.027;

    /// <summary>
    /// The default run (RunSpec's defaults, what `local` runs): the warm start teaches the task and how to judge it (IFT + EFT,
    /// the only labels), then one online round judged by the model itself (its compact LLM judge) and trained with SPPO's
    /// loss. On seeds not used for choosing the recipe, the judge must rank like the verifier (mean tau above 0.3) and the
    /// round must not lower mean test-stream accuracy: a gain in greedy accuracy is not asserted, because on these seeds its
    /// sign follows the CPU's floating-point rounding (the next test asserts the gain where it can be read: sampled accuracy). Measured with this spec (docs/experiments.md, "SPPO becomes the default"): +6.5, -2.5
    /// and +2.0 points (mean +2.0, tau 0.45) on the machine the recipe was chosen on; 0.0, -2.5 and -0.5 (mean -1.0, tau
    /// 0.39) on a Xeon with AVX-512 and AMX, whose kernels round differently; -1.5, +2.0, -1.0 (mean -0.2) there with
    /// MKL and ATen pinned to AVX2. The bound is what three seeds can tell from no effect: over seeds 16-25 the round's
    /// change had a standard deviation of about 2.8 points per seed, so a three-seed mean below -1.645 x 2.8 / sqrt(3)
    /// = -2.7 rejects "the round does not hurt" at the one-sided 5 % level.
    /// The three runs go side by side (one torch thread each, with the verifier-judged run: <see cref="Runs"/>).
    /// </summary>
    [Fact]
    public async Task TheDefaultRunsSelfJudgeRanksLikeTheVerifierAndItsRoundDoesNotLowerMeanTestAccuracyOnFreshSeeds()
    {
        var seeds = await runs.LabelFreeSeeds;
        string each = string.Join("; ", seeds.Select(r => $"seed {r.Seed}: {r.Before:P1} -> {r.After:P1}, tau {r.Tau:F2}, {r.Pairs} pairs"));
        output.WriteLine(each); // docs/experiments.md's per-seed figures, which the benchmark's align command reproduces
        // SPPO trains on every prompt whose samples the judge does not score alike (no agreement filter drops pairs).
        Assert.All(seeds, r => Assert.True(r.Pairs > 256, $"seed {r.Seed}: only {r.Pairs} of 512 prompts gave a pair"));
        Assert.True(seeds.Average(r => r.Tau) > 0.3, $"the self-judge ranks like the verifier only with mean tau {seeds.Average(r => r.Tau):F2} ({each})");
        double change = seeds.Average(r => r.After - r.Before);
        Assert.True(change > NoHarmBound, $"mean change {100 * change:+0.0;-0.0} points over round 0 on fresh seeds, below {100 * NoHarmBound:0.0} ({each})");
    }

    /// <summary>
    /// The gain, and that it is the judge's: after the default round the policy samples right answers more often than after
    /// the same round with each prompt's scores shuffled among its samples (SPPO's loss, pairs, steps and score distribution
    /// kept, which sample earned which score lost), on prompts neither was trained on, the same prompts and sampling seeds
    /// for both. Chosen on seeds 6-15 (this difference +4.1 ± 1.4 points, every seed above +2.2; greedy test accuracy, the
    /// previous assertion's measure, +1.5 ± 1.1 there), fixed before seeds 16-25 ran, and confirmed there: +2.1 ± 1.3, 9 of
    /// 10 seeds above zero; the test's seeds 17-19 gave +0.6, +4.9 and +2.3 (docs/experiments.md, "The gain in sampled
    /// accuracy"). Sampled accuracy reads 4,096 answers per policy where greedy accuracy reads 200, and pairing with the
    /// control on the same samples takes out the prompts' difficulty: the judge's signal shows above the rounding noise that
    /// hides it in three seeds' greedy accuracy (the test above).
    /// </summary>
    [Fact]
    public async Task AfterTheDefaultRoundThePolicySamplesRightAnswersMoreOftenThanAfterTheSameRoundOnShuffledScores()
    {
        var seeds = await runs.LabelFreeSeeds;
        string each = string.Join("; ", seeds.Select(r =>
            $"seed {r.Seed}: sampled {r.SampledBefore:P1} -> {r.SampledAfter:P1}, shuffled-score control -> {r.ShuffledSampledAfter:P1}"));
        output.WriteLine(each);
        // Paired: both rounds began from the same policy and drew the same samples (the generation is the judge's input).
        Assert.All(seeds, r => Assert.Equal(r.SampledBefore, r.ControlSampledBefore));
        double gain = seeds.Average(r => r.SampledAfter - r.ShuffledSampledAfter);
        Assert.True(gain > 0, $"mean sampled accuracy {100 * gain:+0.0;-0.0} points against the shuffled-score control ({each})");
    }

    /// <summary>The default run's spec but for its seed, the CPU and the test stream it is evaluated on.</summary>
    internal static RunSpec DefaultRun(ulong seed) => new() { Prompts = new() { EvalStream = "test" }, Seed = seed, Device = "cpu" };

    [Fact]
    public void TheLearningTestRunsTheDefaultRecipe()
    {
        // The recipe the README and `local` promise is the one measured here: the spec defaults, one round, SPPO on the LLM judge.
        var spec = DefaultRun(6);
        Assert.Equal(("sort", 1, "llm", "sppo", "none"), (spec.Prompts.Task, spec.Rounds, spec.Judge.Kind, spec.Loss.Kind, spec.Consistency));
        Assert.Equal((400, 2000, 200, 512, 8), (spec.SftSteps, spec.EftExamples, spec.Model.PretrainSteps, spec.PromptsPerRound, spec.SamplesPerPrompt));
    }

    /// <param name="Before">round 0's greedy test accuracy; <paramref name="After"/>: the round's</param>
    /// <param name="SampledBefore">the warm-started policy's sampled accuracy (the round's generation: 512 prompts x 8 samples)</param>
    /// <param name="SampledAfter">the trained policy's, on the next 512 prompts; <paramref name="ShuffledSampledAfter"/>: the
    /// shuffled-score control's policy's, on the same prompts with the same sampling seeds</param>
    public sealed record LabelFree(ulong Seed, double Before, double After, double Tau, double Pairs,
        double SampledBefore, double SampledAfter, double ControlSampledBefore, double ShuffledSampledAfter);

    /// <summary>
    /// The default run on one seed: its warm start and one label-free round, evaluated on the test stream (greedy, 200 prompts);
    /// beside it SPPO's own control, the same round with each prompt's scores shuffled (pair_strategy shuffled_scores), from
    /// the same round 0. Each runs a second round only for its generation: it samples the policy the first round trained,
    /// on 512 prompts neither has been trained on (a second round leaves the first as it is: its prompts come first).
    /// </summary>
    private static LabelFree LabelFreeRound(ulong seed)
    {
        var spec = DefaultRun(seed) with { Rounds = 2 };
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder($"label-free-{seed}"), pretrainedCache: RepositoryPaths.PretrainedCache);
        var initial = run.Prepare().Metrics;
        var round = run.RunRound().Metrics;
        var next = run.RunRound().Metrics;
        using var control = new InProcessRun(spec with { PairStrategy = PairBuilder.ShuffledScores },
            RepositoryPaths.NewTempFolder($"label-free-shuffled-{seed}"), pretrainedCache: RepositoryPaths.PretrainedCache);
        control.PrepareFrom(run);
        var controlRound = control.RunRound().Metrics;
        var controlNext = control.RunRound().Metrics;
        return new(seed, initial["eval/test/accuracy"], round["eval/test/accuracy"], round["judge/tau_vs_verifier"], round["pairs/kept"],
            round[Sampled], next[Sampled], controlRound[Sampled], controlNext[Sampled]);
    }

    /// <summary>A round's share of correct samples in its generation phase, by the task's checker (no label reaches training).</summary>
    private const string Sampled = "generation/accuracy";
}
