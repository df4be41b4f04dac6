using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Specs;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Judging;

/// <summary>
/// The RewardBench-style pairwise set behind judge/pairwise_accuracy: a built-in task's pairs (validation prompts, labels by
/// the checker, several kinds of wrong answer), a user's JSONL file, and the accuracy a judge gets on them.
/// </summary>
public class PairwiseSetTests
{
    private static readonly ByteTokenizer Tokenizer = new();

    [Theory]
    [InlineData("sort")]
    [InlineData("add")]
    [InlineData("reverse")]
    public void ABuiltinSetIsLabelledByTheCheckerOnValidationPromptsNeverTrainingOnes(string name)
    {
        var task = BuiltinTasks.ByName(name);
        var pairs = PairwiseSet.Builtin(task, 64, 3);
        Assert.Equal(64, pairs.Count);
        foreach (var p in pairs)
        {
            Assert.Equal(PromptStreams.Validation, PromptStreams.Of(p.Item.Prompt));
            Assert.True(task.Verify(p.Item, p.Chosen), $"{p.Item.Prompt}: chosen '{p.Chosen}' fails the checker");
            Assert.False(task.Verify(p.Item, p.Rejected), $"{p.Item.Prompt}: rejected '{p.Rejected}' ({p.Kind}) passes the checker");
        }
        // Disjoint from the run's training prompts (and from the warm start's, which come from the same part of the space).
        var spec = new RunSpec { Prompts = new() { Task = name }, Seed = 3, Rounds = 10, PromptsPerRound = 64 };
        var training = RunSpecMapping.TrainingPrompts(spec).Prompts.Select(p => p.Prompt).ToHashSet();
        Assert.DoesNotContain(pairs, p => training.Contains(p.Item.Prompt));
        // Not only the warm start's near misses: every kind that applies, near misses a sixth or so.
        var kinds = pairs.GroupBy(p => p.Kind).ToDictionary(g => g.Key, g => g.Count());
        Assert.True(kinds.Count >= 5, $"kinds: {string.Join(", ", kinds.Keys)}");
        Assert.True(kinds.GetValueOrDefault("near_miss") <= 16, $"{kinds.GetValueOrDefault("near_miss")} near misses of 64");
        // Deterministic from the seed; another seed, another set; the run's set is this one.
        Assert.Equal(pairs, PairwiseSet.Builtin(task, 64, 3));
        Assert.NotEqual(pairs.Select(p => p.Item.Prompt), PairwiseSet.Builtin(task, 64, 4).Select(p => p.Item.Prompt));
        Assert.Equal(pairs.Take(8), JudgePairwise.Set(spec with { Guard = new() { PairwisePairs = 8 } }, Tokenizer, 128));
        Assert.Empty(JudgePairwise.Set(spec with { Guard = new() { PairwisePairs = 0 } }, Tokenizer, 128));
    }

    [Fact]
    public void APerfectJudgeScoresOneAReversedJudgeZeroAndTiesOrUnscoredPairsCountHalf()
    {
        var task = BuiltinTasks.ByName("sort");
        var pairs = PairwiseSet.Builtin(task, 24, 1);
        var verifier = new VerifierJudge(task);
        var perfect = PairwiseJudging.Measure(pairs, Tokenizer, verifier);
        Assert.Equal(1.0, perfect[PairwiseSet.Accuracy]);
        Assert.Equal(24, perfect[PairwiseSet.Count]);
        Assert.Equal(0.0, PairwiseJudging.Measure(pairs, Tokenizer, new Mapped(verifier, v => -v))[PairwiseSet.Accuracy]);
        Assert.Equal(0.5, PairwiseJudging.Measure(pairs, Tokenizer, new Mapped(verifier, _ => 3))[PairwiseSet.Accuracy]);
        Assert.Equal(0.5, PairwiseJudging.Measure(pairs, Tokenizer, new Mapped(verifier, _ => double.NaN))[PairwiseSet.Accuracy]);
        Assert.Empty(PairwiseJudging.Measure([], Tokenizer, verifier));
        Assert.Equal(0.5, PairwiseSet.AccuracyOf([[1, 0], [0, 1], [2, 2], [double.NaN, 0]]));
    }

    [Fact]
    public void AJsonlSetIsReadWithinItsLimitsAndABadLineIsRefusedNamingTheFileAndTheLine()
    {
        string folder = RepositoryPaths.NewTempFolder("pairwise-jsonl");
        string good = Path.Combine(folder, "good.jsonl");
        File.WriteAllLines(good, ["{\"prompt\": \"sort 31=\", \"chosen\": \"13\", \"rejected\": \"31\"}", "",
            "{\"prompt\": \"sort 21=\", \"chosen\": \"12\", \"rejected\": \"21\", \"subset\": \"mine\"}"]);
        var spec = new RunSpec { Prompts = new() { Task = "sort" }, Guard = new() { PairwisePairs = 8, PairwiseJsonl = good } };
        var read = JudgePairwise.Set(spec, Tokenizer, 128);
        Assert.Equal([1, 3], read.Select(p => p.Item.Line));
        Assert.All(read, p => Assert.Equal("jsonl", p.Kind));
        Assert.Equal("12", read[1].Chosen);
        Assert.Single(JudgePairwise.Set(spec with { Guard = spec.Guard with { PairwisePairs = 1 } }, Tokenizer, 128));
        Assert.DoesNotContain(RunSpecMapping.Problems(spec), p => p.Contains("pairwise", StringComparison.Ordinal));

        string Refused(string name, params string[] lines)
        {
            string path = Path.Combine(folder, name);
            File.WriteAllLines(path, lines);
            var problems = RunSpecMapping.Problems(spec with { Guard = spec.Guard with { PairwiseJsonl = path } });
            return Assert.Single(problems, p => p.StartsWith("guard.pairwise_jsonl", StringComparison.Ordinal));
        }
        const string Ok = "{\"prompt\": \"sort 31=\", \"chosen\": \"13\", \"rejected\": \"31\"}";
        string bad = Path.Combine(folder, "missing.jsonl");
        Assert.Equal($"guard.pairwise_jsonl: {bad}:2: field 'rejected' must be a string",
            Refused("missing.jsonl", Ok, "{\"prompt\": \"sort 21=\", \"chosen\": \"12\"}"));
        Assert.StartsWith($"guard.pairwise_jsonl: {Path.Combine(folder, "broken.jsonl")}:3: not valid JSON", Refused("broken.jsonl", Ok, Ok, "{\"prompt\": "));
        Assert.Equal($"guard.pairwise_jsonl: {Path.Combine(folder, "same.jsonl")}:1: 'chosen' and 'rejected' are the same text",
            Refused("same.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"a\"}"));
        string huge = new('x', JudgePairwise.FieldBytes + 1);
        Assert.Equal($"guard.pairwise_jsonl: {Path.Combine(folder, "huge.jsonl")}:1: field 'chosen' is {JudgePairwise.FieldBytes + 1} bytes; " +
            $"the limit is {JudgePairwise.FieldBytes}", Refused("huge.jsonl", $"{{\"prompt\": \"p\", \"chosen\": \"{huge}\", \"rejected\": \"b\"}}"));
        // Longer than a round's sample can be (sampling.max_new_tokens 16 by default): the judge never sees such a row in a round.
        Assert.StartsWith($"guard.pairwise_jsonl: {Path.Combine(folder, "long.jsonl")}:2: 'rejected' is 41 tokens with its end of turn",
            Refused("long.jsonl", Ok, $"{{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"{new string('b', 40)}\"}}"));
        Assert.StartsWith($"guard.pairwise_jsonl: {Path.Combine(folder, "rows.jsonl")}:{GuardSpec.PairwisePairsLimit + 1}: more than {GuardSpec.PairwisePairsLimit}",
            Refused("rows.jsonl", [.. Enumerable.Repeat(Ok, GuardSpec.PairwisePairsLimit + 1)]));
        Assert.Contains($"guard.pairwise_jsonl '{Path.Combine(folder, "none.jsonl")}' does not exist",
            RunSpecMapping.Problems(spec with { Guard = spec.Guard with { PairwiseJsonl = Path.Combine(folder, "none.jsonl") } }));
    }

    [Fact]
    public void AJsonlSetOutsideTheDataRootsIsRefusedLikeEverySpecFile()
    {
        string root = RepositoryPaths.NewTempFolder("pairwise-root"), outside = RepositoryPaths.NewTempFolder("pairwise-outside");
        string inside = Path.Combine(root, "pairs.jsonl"), away = Path.Combine(outside, "pairs.jsonl");
        foreach (var file in new[] { inside, away }) File.WriteAllText(file, "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        var roots = new DataRoots([root]);
        Assert.Empty(SpecFiles.Problems(new RunSpec { Guard = new() { PairwiseJsonl = inside } }, roots, SpecLimits.Default));
        Assert.Contains($"guard.pairwise_jsonl '{away}' is not under this silo's data roots",
            Assert.Single(SpecFiles.Problems(new RunSpec { Guard = new() { PairwiseJsonl = away } }, roots, SpecLimits.Default)));
        // Read inside a worker's phase, the opened file itself must be under the roots.
        using (ModelFile.ConfineTo(roots.Roots))
            Assert.Contains("is not under this silo's data roots", Assert.Throws<InvalidDataException>(() => SpecFiles.ReadLines(away, 1000).ToList()).Message);
    }

    [Fact]
    public void BadPairwiseValuesAreRefusedNamingTheField()
    {
        var problems = RunSpecMapping.Problems(new RunSpec { Guard = new() { PairwisePairs = -1, PairwiseJsonl = new string('p', 5000) } }, countsOnly: true);
        Assert.Contains($"guard.pairwise_pairs must be between 0 and {GuardSpec.PairwisePairsLimit}, got -1", problems);
        Assert.Contains("guard.pairwise_jsonl is 5000 characters long; the limit is 4096", problems);
        Assert.Contains($"guard.pairwise_pairs must be between 0 and {GuardSpec.PairwisePairsLimit}, got {GuardSpec.PairwisePairsLimit + 1}",
            RunSpecMapping.Problems(new RunSpec { Guard = new() { PairwisePairs = GuardSpec.PairwisePairsLimit + 1 } }, countsOnly: true));
    }

    /// <summary>
    /// A short run in one process: round 0 (the round-0 judge) and round 1 (the round's own judge, through the judge phase)
    /// both carry the metrics; the judge sharded in two gives round 1's value again (shard 0 carries it to the merge).
    /// </summary>
    [Fact]
    public void EveryRoundOfAShortRunReportsItsJudgesPairwiseAccuracyShardedOrNot()
    {
        var spec = new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 4 }, SftSteps = 30, Rounds = 1, PromptsPerRound = 8, SamplesPerPrompt = 2, Seed = 2,
            Device = "cpu", Sampling = new() { MaxNewTokens = 8 }, Optimizer = new() { BatchSize = 8 }, Guard = new() { PairwisePairs = 12 },
        };
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("pairwise-run"));
        var round0 = run.Prepare().Metrics;
        var round1 = run.RunRound().Metrics;
        foreach (var metrics in new[] { round0, round1 })
        {
            Assert.Equal(12, metrics[PairwiseSet.Count]);
            Assert.InRange(metrics[PairwiseSet.Accuracy], 0, 1);
        }
        // Round 1's judge is the initial policy judging, as round 0's is: the same pairs, the same seed, the same number.
        Assert.Equal(round0[PairwiseSet.Accuracy], round1[PairwiseSet.Accuracy]);

        // The judge phase sharded: shard 0 measures, the merge carries it.
        using var models = new ModelCache(RepositoryPaths.NewTempFolder("pairwise-m0"));
        var (context, responses) = RoundOne(run, spec, models);
        var shards = Enumerable.Range(0, 2).Select(k => RoundJob.JudgeShard(context, responses, k, 2)).ToList();
        Assert.NotNull(shards[0].Pairwise);
        Assert.Null(shards[1].Pairwise);
        var merged = RoundJob.Judge(context, responses, shards);
        Assert.Equal(round1[PairwiseSet.Accuracy], merged.Metrics[PairwiseSet.Accuracy]);
        Assert.Equal(12, merged.Metrics[PairwiseSet.Count]);
        // Off: no metric.
        using var off = new InProcessRun(spec with { Guard = new() { PairwisePairs = 0 }, SftSteps = 0 }, RepositoryPaths.NewTempFolder("pairwise-off"));
        Assert.DoesNotContain(PairwiseSet.Accuracy, off.Prepare().Metrics.Keys);
    }

    private static (RoundJob.Context, List<IReadOnlyList<int[]>>) RoundOne(InProcessRun run, RunSpec spec, ModelCache models)
    {
        string folder = run.CheckpointFolder(0);
        var initial = new BlobRef { Path = folder, Sha256 = run.CheckpointKey(0) };
        var request = new PhaseRequest { RunId = "local", Spec = spec, Round = 1, Policy = initial, Initial = initial };
        var context = new RoundJob.Context(request, new Dictionary<string, string> { [initial.Sha256] = folder }, TorchSharp.torch.CPU, models,
            (_, _, _) => { }, CancellationToken.None);
        var responses = RoundJob.Generate(new GenerationRequest
        {
            RunId = "local", Spec = spec, Round = 1, Policy = initial, PromptPositions = Enumerable.Range(0, spec.PromptsPerRound).ToList(), Initial = initial,
        }, folder, folder, TorchSharp.torch.CPU, models, CancellationToken.None);
        return (context, responses.Select(r => (IReadOnlyList<int[]>)r).ToList());
    }

    /// <summary>A judge whose scores are another's mapped: reversed, constant, unscored.</summary>
    private sealed class Mapped(IJudge inner, Func<double, double> map) : IJudge
    {
        public string Kind => inner.Kind;
        public JudgeResult Score(IReadOnlyList<ResponseGroup> groups, CancellationToken cancellationToken = default) =>
            new(inner.Score(groups, cancellationToken).Scores.Select(s => s.Select(map).ToArray()).ToList());
    }
}
