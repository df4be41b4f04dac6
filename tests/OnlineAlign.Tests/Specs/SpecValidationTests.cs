using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Tests.Specs;

public class SpecValidationTests
{
    [Fact]
    public void CountsOutOfRangeAreNamedWithTheirValueAndLimitBeforeAnythingIsAllocated()
    {
        var huge = new RunSpec { Rounds = 1_000_000, PromptsPerRound = 2_000_000_000, SamplesPerPrompt = 100_000 };
        var problems = RunSpecMapping.Problems(huge);
        Assert.Contains("rounds must be between 1 and 10000, got 1000000", problems);
        Assert.Contains("prompts_per_round must be between 1 and 100000, got 2000000000", problems);
        Assert.Contains("samples_per_prompt must be between 2 and 64, got 100000", problems);
        // Products are computed in 64-bit: 2e9 x 1e5 x 16 does not wrap around to a small number.
        Assert.Contains(problems, p => p.StartsWith("prompts_per_round x samples_per_prompt x sampling.max_new_tokens is 3200000000000000 tokens", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("rounds x prompts_per_round is 2000000000000000", StringComparison.Ordinal));

        Assert.Contains("rounds must be between 1 and 10000, got -1", RunSpecMapping.Problems(new RunSpec { Rounds = -1 }));
        // generation_replicas: 0 is one per GPU silo; below it, or past the limit, is refused.
        Assert.DoesNotContain(RunSpecMapping.Problems(new RunSpec { GenerationReplicas = 0 }), p => p.Contains("generation_replicas"));
        Assert.Contains("generation_replicas must be between 0 and 64, got -1", RunSpecMapping.Problems(new RunSpec { GenerationReplicas = -1 }));
        Assert.Contains("generation_replicas must be between 0 and 64, got 65", RunSpecMapping.Problems(new RunSpec { GenerationReplicas = 65 }));
        // Each count within its limit, their product not.
        Assert.Contains(RunSpecMapping.Problems(new RunSpec { Rounds = 10_000, PromptsPerRound = 100_000 }),
            p => p.StartsWith("rounds x prompts_per_round is 1000000000; the limit is 2000000", StringComparison.Ordinal));
    }

    [Fact]
    public void TheGrainsCheapReCheckRefusesWhatTheLimitsRefuseWithoutReadingAnything()
    {
        // What a grain re-checks when a cluster member calls it directly: counts, names and numbers against the limits.
        var huge = new RunSpec { Rounds = 1_000_000, Loss = new() { Beta = double.NaN, Kind = "nonsense" } };
        var problems = RunSpecMapping.Problems(huge, countsOnly: true);
        Assert.Contains("rounds must be between 1 and 10000, got 1000000", problems);
        Assert.Contains(problems, p => p.StartsWith("loss.beta must be a finite number", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("loss.kind", StringComparison.Ordinal));
        // No file is read: a model folder that does not exist is the full check's business.
        Assert.Empty(RunSpecMapping.Problems(new RunSpec { Model = new() { HfFolder = "/no/such/model" }}, countsOnly: true));
        Assert.NotEmpty(RunSpecMapping.Problems(new RunSpec { Model = new() { HfFolder = "/no/such/model" }}));
    }

    [Theory]
    [InlineData("test-20261201-101010-abc123", true)]
    [InlineData("r.0_A-9", true)]
    [InlineData("", false)]
    [InlineData("..", false)]
    [InlineData(".hidden", false)]
    [InlineData("../../etc", false)]
    [InlineData("a/b", false)]
    [InlineData("a\\b", false)]
    [InlineData("run#gen1", false)]
    [InlineData("caf\u00e9", false)]
    public void RunIdsThatBecomePathsAreCheckedCharacterByCharacter(string id, bool valid)
    {
        Assert.Equal(valid, RunIds.IsValid(id));
        if (!valid) Assert.Contains("is not valid", Assert.Throws<ArgumentException>(() => RunIds.Require(id)).Message);
        Assert.False(RunIds.IsValid(new string('a', RunIds.MaxLength + 1)));
    }

    [Fact]
    public void ValidationNeverThrowsOnAThousandSeededRandomSpecs()
    {
        var random = new Random(15);
        int[] ints = [int.MinValue, -1, 0, 1, 2, 3, 7, 64, 1000, 100_000, int.MaxValue];
        double[] doubles = [double.NaN, double.NegativeInfinity, -1, 0, 1e-300, 0.1, 0.5, 1, 2, 1e308, double.PositiveInfinity];
        string[] strings = ["", "sort", "add", "implicit", "llm", "dpo", "cream", "sppo", "dyn", "avg", "initial", "cuda:0", "\u0000", "é\u202e", new string('x', 10_000)];
        int I() => random.Next(3) == 0 ? random.Next(-5, 300) : ints[random.Next(ints.Length)];
        double D() => doubles[random.Next(doubles.Length)];
        string S() => strings[random.Next(strings.Length)];
        for (int i = 0; i < 1000; i++)
        {
            var spec = new RunSpec
            {
                Name = S(), Prompts = new() { Task = random.Next(2) == 0 ? "sort" : S(), EvalPrompts = I(), JsonlPath = random.Next(4) == 0 ? S() : null }, Rounds = I(), PromptsPerRound = I(), SamplesPerPrompt = I(), Consistency = S(),
                PairStrategy = S(), MinScoreGap = D(), Reference = S(), Seed = (ulong)random.NextInt64(), Device = S(), SftSteps = I(), GenerationReplicas = I(), MaxPhaseAttempts = I(), Model = new() { HfFolder = random.Next(4) == 0 ? S() : null }, Sampling = new() { Temperature = D(), TopP = D(), TopK = I(), MaxNewTokens = I(), BatchSize = I() }, Judge = new() { Kind = S(), Judgements = I() }, Loss = new() { Kind = S(), Beta = D(), LabelSmoothing = D(), RpoAlpha = D() }, Optimizer = new() { LearningRate = D(), WeightDecay = D(), Epochs = I(), BatchSize = I(), MaxGradNorm = D(), WarmupSteps = I() }
            };
            var problems = RunSpecMapping.Problems(spec);
            Assert.DoesNotContain(problems, p => p.StartsWith("spec: could not be checked", StringComparison.Ordinal));
            if (problems.Count == 0)
            {
                Assert.InRange(spec.Rounds, 1, SpecLimits.Default.Rounds);
                Assert.True((long)spec.PromptsPerRound * spec.SamplesPerPrompt * spec.Sampling.MaxNewTokens <= SpecLimits.Default.TokensPerRound);
            }
        }
    }
}

public class RunTransitionTests
{
    [Fact]
    public void OnlyTheTableDecidesAndStoppedRunsStayStoppedUnlessResumed()
    {
        Assert.True(RunTransitions.TryNext(RunLifecycle.Running, RunTrigger.Pause, out var paused));
        Assert.Equal(RunLifecycle.Paused, paused);
        Assert.True(RunTransitions.TryNext(RunLifecycle.Failed, RunTrigger.Resume, out var running));
        Assert.Equal(RunLifecycle.Running, running);
        foreach (var trigger in Enum.GetValues<RunTrigger>())
        {
            Assert.False(RunTransitions.TryNext(RunLifecycle.Completed, trigger, out _), $"completed --{trigger}-->");
            Assert.False(RunTransitions.TryNext(RunLifecycle.Cancelled, trigger, out _), $"cancelled --{trigger}-->");
        }
        Assert.False(RunTransitions.TryNext(RunLifecycle.Paused, RunTrigger.Pause, out _));
        Assert.False(RunTransitions.TryNext(RunLifecycle.Paused, RunTrigger.Complete, out _)); // a paused run is never completed by its driver
        // Only driving states keep a driver (and its reminder).
        Assert.All(RunTransitions.All.Where(t => t.To is RunLifecycle.Paused or RunLifecycle.Failed or RunLifecycle.Cancelled or RunLifecycle.Completed),
            t => Assert.False(t.To.IsDriving()));
        Assert.Equal("waiting_for_gpu", RunLifecycle.WaitingForGpu.WireName());
        Assert.Equal("running", RunLifecycle.Running.WireName());
    }
}
