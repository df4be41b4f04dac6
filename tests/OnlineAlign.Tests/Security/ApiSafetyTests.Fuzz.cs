using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// One control + GPU cluster (<see cref="SafetyCluster"/>) shared by the API safety tests, one file per concern.
/// This part: seeded random specs from an outside client's point of view: whatever a request carries, the API answers OK
/// or INVALID_ARGUMENT (never UNKNOWN or a crash), the silos' memory stays bounded, every accepted run can be
/// cancelled, and the run list pages through everything that was started.
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public partial class ApiSafetyTests(SafetyCluster safety, ITestOutputHelper output) : IClassFixture<SafetyCluster>
{
    public const int Specs = 1000;
    /// <summary>
    /// Peak resident memory either silo may reach during the test (its peak is reset when the test starts, after the
    /// class's other tests ran real runs on the same silos). Measured: control 0.35 GB, GPU silo 1.08 GB. Before a
    /// cancelled warm start disposed its model the GPU silo grew by ~10 MB per cancelled run (1.8 GB here), and a
    /// loaded CI run reached 1.6 GB before phases took turns on the device (Silo:MaxConcurrentComputations).
    /// </summary>
    public const long MemoryBound = 2_000_000_000;

    /// <remarks>A failure prints the end of each silo's log (an unmapped exception is logged there with its stack).</remarks>
    [Fact]
    public Task ThousandSeededRandomSpecsAreOkOrInvalidArgumentAndEveryAcceptedRunCancels() =>
        SiloLogTail.OnFailureAsync(safety.Cluster, output, RandomSpecsAsync);

    private async Task RandomSpecsAsync()
    {
        var client = safety.Cluster.Client();
        var random = new Random(20261127);
        var answers = new Dictionary<StatusCode, int>();
        var accepted = new List<string>();
        // The peak is this test's, whatever the other tests on this cluster ran before it.
        foreach (var silo in safety.Cluster.Silos) silo.ResetPeakMemory();
        for (int i = 0; i < Specs; i++)
        {
            var (spec, requestId) = RandomSpec(random, i);
            StatusCode code;
            try
            {
                var run = await client.StartRunAsync(new StartRunRequest { Spec = spec, RequestId = requestId });
                code = StatusCode.OK;
                accepted.Add(run.Id);
                Assert.Equal("cancelled", (await client.CancelRunAsync(new RunRef { RunId = run.Id })).Status);
            }
            catch (RpcException e)
            {
                code = e.StatusCode;
                Assert.True(code == StatusCode.InvalidArgument, $"spec {i} answered {code}: {e.Status.Detail}\n{spec}");
                Assert.False(string.IsNullOrWhiteSpace(e.Status.Detail));
            }
            answers[code] = answers.GetValueOrDefault(code) + 1;
        }
        long control = safety.Cluster.Silos[0].PeakMemoryBytes(), gpu = safety.Cluster.Silos[1].PeakMemoryBytes();
        output.WriteLine($"{Specs} specs: {string.Join(", ", answers.OrderBy(a => a.Key).Select(a => $"{a.Key} {a.Value}"))}; " +
                         $"peak memory: control silo {control / 1e6:F0} MB, GPU silo {gpu / 1e6:F0} MB");
        Assert.True(answers.GetValueOrDefault(StatusCode.OK) >= 50, "the generator should produce valid specs too");
        Assert.True(answers.GetValueOrDefault(StatusCode.InvalidArgument) >= 300);
        Assert.True(control < MemoryBound && gpu < MemoryBound, $"peak memory control {control}, gpu {gpu}");

        // Paging: every run once, in start order, pages within their size, a token that is not ours refused.
        var listed = new List<string>();
        int total = -1;
        for (string token = ""; ;)
        {
            var page = await client.ListRunsAsync(new ListRunsRequest { PageSize = 100, PageToken = token });
            Assert.InRange(page.Runs.Count, 1, 100);
            listed.AddRange(page.Runs.Select(r => r.Id));
            total = page.TotalRuns;
            if ((token = page.NextPageToken) == "") break;
        }
        Assert.Equal(total, listed.Count);
        Assert.Equal(listed.Count, listed.Distinct().Count());
        Assert.Equal(accepted, listed.Where(accepted.Contains));
        Assert.Equal(100, (await client.ListRunsAsync(new ListRunsRequest())).Runs.Count); // the default page
        foreach (var bad in new[] { new ListRunsRequest { PageSize = 1001 }, new ListRunsRequest { PageSize = -1 }, new ListRunsRequest { PageToken = "abc" },
                     new ListRunsRequest { PageToken = "-5" }, new ListRunsRequest { PageToken = new string('9', 40) } })
            Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => client.ListRunsAsync(bad).ResponseAsync)).StatusCode);
        Assert.Empty((await client.ListRunsAsync(new ListRunsRequest { PageToken = "99999999" })).Runs);
    }

    private static readonly string[] Texts =
    [
        "", " ", "ñandú 中文 🙂", "../../etc/passwd", "/etc/passwd", "/dev/zero", "/proc/self/environ", "relative/path", "a\0b",
        "sort", "tiny", "dpo", "sppo", "implicit", "llm", "verifier", "reward_model", "cpu", "cuda:99", "initial", "previous_round",
        "{prompt}{response}", "compact", "rubric",
    ];

    private static string Text(Random random) => random.Next(12) switch
    {
        0 => new string('x', random.Next(1, 100_000)),
        1 => string.Concat(Enumerable.Range(0, random.Next(1, 300)).Select(_ => char.ConvertFromUtf32(random.Next(0x20, 0x2FFFF) is var c && c is >= 0xD800 and <= 0xDFFF ? 0x41 : c))),
        _ => Texts[random.Next(Texts.Length)],
    };

    private static readonly int[] Integers = [int.MinValue, -1_000_000, -1, 0, 1, 2, 3, 8, 16, 64, 65, 4096, 4097, 100_000, 100_001, 1 << 30, int.MaxValue];

    private static int Integer(Random random) => random.Next(4) == 0 ? random.Next(int.MinValue, int.MaxValue) : Integers[random.Next(Integers.Length)];

    private static readonly double[] Reals = [double.NaN, double.PositiveInfinity, double.NegativeInfinity, -1, -0.0, 0, 1e-300, 1e-5, 0.1, 0.5, 0.99, 1, 2, 999, 1001, 1e300];

    private static double Real(Random random) => random.Next(4) == 0 ? random.NextDouble() * Math.Pow(10, random.Next(-10, 10)) : Reals[random.Next(Reals.Length)];

    /// <summary>A valid small spec with 1 to 3 fields (or whole sections) replaced by extremes; sometimes a request id.</summary>
    private static (RunSpec Spec, string RequestId) RandomSpec(Random random, int index)
    {
        var s = LocalTestCluster.SmallSpec(rounds: 1);
        s.Model = new ModelSpec { Builtin = "tiny" };
        s.Judge = new JudgeSpec();
        s.Loss = new LossSpec();
        s.Optimizer = new OptimizerSpec();
        int mutations = random.Next(1, 4);
        for (int m = 0; m < mutations; m++)
        {
            switch (random.Next(47))
            {
                case 0: s.Rounds = Integer(random); break;
                case 1: s.PromptsPerRound = Integer(random); break;
                case 2: s.SamplesPerPrompt = Integer(random); break;
                case 3: s.Sampling.MaxNewTokens = Integer(random); break;
                case 4: s.Sampling.BatchSize = Integer(random); break;
                case 5: s.Sampling.TopK = Integer(random); break;
                case 6: s.Judge.Judgements = Integer(random); break;
                case 7: s.SftSteps = Integer(random); break;
                case 8: s.EftExamples = Integer(random); break;
                case 9: s.Optimizer.Epochs = Integer(random); break;
                case 10: s.Optimizer.BatchSize = Integer(random); break;
                case 11: s.Optimizer.WarmupSteps = Integer(random); break;
                case 12: s.GenerationReplicas = Integer(random); break;
                case 13: (s.Prompts ??= new PromptSpec()).EvalPrompts = Integer(random); break;
                case 14: s.MaxPhaseAttempts = Integer(random); break;
                case 15: s.Sampling.Temperature = Real(random); break;
                case 16: s.Sampling.TopP = Real(random); break;
                case 17: s.MinScoreGap = Real(random); break;
                case 18: s.Loss.Beta = Real(random); break;
                case 19: s.Loss.LabelSmoothing = Real(random); break;
                case 20: s.Loss.RpoAlpha = Real(random); break;
                case 21: s.Loss.SelmAlpha = Real(random); break;
                case 22: s.Optimizer.LearningRate = Real(random); break;
                case 23: s.Optimizer.WeightDecay = Real(random); break;
                case 24: s.Optimizer.MaxGradNorm = Real(random); break;
                case 25: s.Name = Text(random); break;
                case 26: (s.Model ??= new ModelSpec()).Builtin = Text(random); break;
                case 27: (s.Model ??= new ModelSpec()).HfFolder = Text(random); break;
                case 28: (s.Prompts ??= new PromptSpec()).Task = Text(random); break;
                case 29: (s.Prompts ??= new PromptSpec()).JsonlPath = Text(random); break;
                case 30: s.Judge.Kind = Text(random); break;
                case 31: s.Judge.Template = Text(random); break;
                case 32: s.Judge.Model = Text(random); break;
                case 33: s.Judge.RewardModelFolder = Text(random); break;
                case 34: s.Loss.Kind = Text(random); break;
                case 35: s.Reference = Text(random); break;
                case 36: s.Device = Text(random); break;
                case 37: s.Seed = random.Next(2) == 0 ? 0 : ulong.MaxValue; break;
                case 38:
                    switch (random.Next(6))
                    {
                        case 0: s.Model = null; break;
                        case 1: s.Prompts = null; break;
                        case 2: s.Sampling = null; break;
                        case 3: s.Judge = null; break;
                        case 4: s.Loss = null; break;
                        default: s.Optimizer = null; break;
                    }
                    break;
                case 39: s.SftLearningRate = Real(random); break;
                case 40: (s.Guard ??= new GuardSpec()).PairwisePairs = Integer(random); break;
                case 41: (s.Guard ??= new GuardSpec()).PairwiseJsonl = Text(random); break;
                case 42: (s.Guard ??= new GuardSpec()).MaxKlInitialPerToken = Real(random); break;
                case 44: (s.Guard ??= new GuardSpec()).MaxScoreEntropy = Real(random); break;
                case 45: (s.Guard ??= new GuardSpec()).MinMajorityAgreement = Real(random); break;
                case 46: (s.Guard ??= new GuardSpec()).MaxScoreEntropyRise = Real(random); break;
                default: s.Consistency = Text(random); break;
            }
            // Sections may be gone after case 38: later mutations of their fields recreate them.
            s.Model ??= random.Next(2) == 0 ? null : new ModelSpec();
            s.Prompts ??= random.Next(2) == 0 ? null : new PromptSpec();
            s.Sampling ??= new SamplingSpec();
            s.Judge ??= new JudgeSpec();
            s.Loss ??= new LossSpec();
            s.Optimizer ??= new OptimizerSpec();
        }
        // Request ids: mostly none, some unique valid ones, some invalid.
        string requestId = random.Next(10) switch
        {
            0 => $"fuzz-{index}",
            1 => random.Next(2) == 0 ? "has/slash" : new string('r', 65),
            _ => "",
        };
        return (s, requestId);
    }
}
