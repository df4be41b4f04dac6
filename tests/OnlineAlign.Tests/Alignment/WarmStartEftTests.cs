using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Tests.Alignment;

/// <summary>EFT built as Self-Rewarding builds it: the model's own samples for training prompts, scored by the checker.</summary>
public class WarmStartEftTests
{
    private static readonly ByteTokenizer Tokenizer = new();
    private static readonly SortDigitsTask Task = new();
    private static readonly WarmStart.Settings Small = new(Steps: 12, BatchSize: 8, Demonstrations: 48, JudgeExamples: 24, EftSource: "own_samples", SampleTokens: 12);

    [Fact]
    public void OwnSampleExamplesJudgeWhatTheModelWritesWithTheCheckersScore()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 5);
        var examples = WarmStart.OwnSampleJudgeExamples(model, Tokenizer, Task, Small, seed: 3);
        var items = WarmStart.JudgePromptItems(Task, Small, 3);
        Assert.Equal(items.Count, examples.Count);
        var planted = WarmStart.JudgeExamples(Task, Small, 3);
        int differentFromPlanted = 0;
        for (int i = 0; i < items.Count; i++)
        {
            // The judge prompt holds the item's question and a response; the target is the checker's verdict on that response.
            string template = JudgePrompts.Text(Small.JudgeTemplate);
            int at = template.IndexOf("{response}", StringComparison.Ordinal);
            string head = template[..at].Replace("{prompt}", items[i].Prompt), tail = template[(at + "{response}".Length)..];
            Assert.StartsWith(head, examples[i].Prompt);
            Assert.EndsWith(tail, examples[i].Prompt);
            string response = examples[i].Prompt[head.Length..^tail.Length];
            Assert.Equal(JudgePrompts.Judgement(Task.Verify(items[i], response) ? JudgePrompts.MaxScore : 0), examples[i].Target);
            if (examples[i].Prompt != planted[i].Prompt) differentFromPlanted++;
        }
        // An untrained model's samples are not the task's planted near-misses.
        Assert.True(differentFromPlanted > items.Count / 2, $"{differentFromPlanted} of {items.Count} own samples differ from the planted corruptions");
        // Each sample has its own seed: the same model and seed give the same examples.
        Assert.Equal(examples, WarmStart.OwnSampleJudgeExamples(model, Tokenizer, Task, Small, seed: 3));
    }

    [Fact]
    public void AnOwnSamplesWarmStartTrainsInTwoHalvesForItsStepsAndAnUnknownSourceIsRefusedByName()
    {
        using var model = WarmStart.Train(BuiltinModels.Tiny, Tokenizer, Task, Small, 3, out var losses);
        Assert.Equal(Small.Steps, losses.Count);
        Assert.All(losses, loss => Assert.True(double.IsFinite(loss)));
        var e = Assert.Throws<ArgumentException>(() => WarmStart.Train(BuiltinModels.Tiny, Tokenizer, Task, Small with { EftSource = "oracle" }, 3, out _));
        Assert.Contains("eft_source 'oracle'", e.Message);
    }

    [Fact]
    public void TheSpecsEftSourceReachesTheWarmStartAndAnUnknownOneIsRefusedNamingTheField()
    {
        var spec = new RunSpec { EftSource = "own_samples" };
        Assert.Equal("own_samples", RunSpecMapping.WarmStartSettings(spec).EftSource);
        Assert.Equal(spec.Sampling.MaxNewTokens, RunSpecMapping.WarmStartSettings(spec).SampleTokens);
        Assert.Equal("corruptions", RunSpecMapping.WarmStartSettings(new RunSpec()).EftSource);   // the measured default
        Assert.Contains(RunSpecMapping.Problems(new RunSpec { EftSource = "oracle" }), p => p.StartsWith("eft_source 'oracle' is not one of", StringComparison.Ordinal));
    }
}
