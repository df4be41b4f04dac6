using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Tests.Alignment;

/// <summary>The protocol's three prompt streams: training, validation (choosing) and test (reporting), disjoint by construction.</summary>
public class PromptStreamTests
{
    [Theory]
    [InlineData("sort")]
    [InlineData("add")]
    [InlineData("reverse")]
    public void TrainingValidationAndTestStreamsAreDisjointForEverySeedAndDeterministic(string name)
    {
        var task = BuiltinTasks.ByName(name);
        var seen = new Dictionary<string, HashSet<string>>
        {
            [PromptStreams.Train] = [], [PromptStreams.Validation] = [], [PromptStreams.Test] = [],
        };
        // Several seeds and every split name a run draws from: warm start (train, eft, pretrain), rounds (train), evaluation.
        foreach (int seed in new[] { 1, 2, 1001 })
            foreach (var split in new[] { "train", "eft", "pretrain", "sft-extra-1", "validation", "test" })
            {
                var prompts = task.Prompts(300, seed, split);
                Assert.Equal(300, prompts.Count);
                Assert.Equal(prompts, task.Prompts(300, seed, split));  // the same seed gives the same prompts
                foreach (var p in prompts)
                {
                    // Each prompt lies in the part its split names, whatever the seed: the part is a function of the text alone.
                    Assert.Equal(PromptStreams.Part(split), PromptStreams.Of(p.Prompt));
                    seen[PromptStreams.Part(split)].Add(p.Prompt);
                }
            }
        Assert.Empty(seen[PromptStreams.Train].Intersect(seen[PromptStreams.Validation]));
        Assert.Empty(seen[PromptStreams.Train].Intersect(seen[PromptStreams.Test]));
        Assert.Empty(seen[PromptStreams.Validation].Intersect(seen[PromptStreams.Test]));
        Assert.All(seen.Values, s => Assert.True(s.Count > 100, $"{s.Count} distinct prompts"));
    }

    [Fact]
    public void ARunEvaluatesOnValidationByDefaultAndOnTestWhenAskedAndNamesTheStreamInItsMetrics()
    {
        var spec = new RunSpec { Prompts = new() { Task = "sort", EvalPrompts = 50 } };
        Assert.Equal("validation", spec.Prompts.EvalStream);
        var validation = RunSpecMapping.EvalPrompts(spec);
        var test = RunSpecMapping.EvalPrompts(spec with { Prompts = spec.Prompts with { EvalStream = "test" } });
        Assert.All(validation, p => Assert.Equal(PromptStreams.Validation, PromptStreams.Of(p.Prompt)));
        Assert.All(test, p => Assert.Equal(PromptStreams.Test, PromptStreams.Of(p.Prompt)));
        // A round's training prompts never hold either.
        var (_, training) = RunSpecMapping.TrainingPrompts(spec with { Rounds = 2, PromptsPerRound = 500 });
        Assert.All(training, p => Assert.Equal(PromptStreams.Train, PromptStreams.Of(p.Prompt)));

        var shard = new OnlineAlign.Alignment.Rounds.EvalShard([0, 1], [1.0, 0.0], [3, 3], [true, true], [-1, -1], [-1, -1], [-1, -1], [3, 3]);
        var metrics = OnlineAlign.Alignment.Rounds.RoundPhases.SummarizeEvaluation(shard, hasTask: true, stream: "test");
        Assert.Equal(0.5, metrics["eval/accuracy"]);
        Assert.Equal(0.5, metrics["eval/test/accuracy"]);
        Assert.DoesNotContain("eval/validation/accuracy", metrics.Keys);
    }
}
