using OnlineAlign.Specs;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// Every phase's work checks the cancellation token inside its loops (pause and cancel reach the model thread
/// through it): asked with a cancelled token, each phase stops before doing its first step; and a token cancelled
/// from inside a step (the decode loop's per-token callback, the trainer's per-step progress) stops the loop at the
/// next step, not at the end of the call.
/// </summary>
public class PhaseCancellationTests
{
    private static readonly ByteTokenizer Tokenizer = new();
    private static readonly SortDigitsTask Task = new();

    [Fact]
    public void EveryPhaseStopsOnACancelledToken()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var ct = cancelled.Token;
        var prompts = Task.Prompts(4, 1, "train").ToList();
        var settings = new RoundSettings { SamplesPerPrompt = 2 };
        var groups = RoundPhases.Generate(model, Tokenizer, prompts, [0, 1, 2, 3], settings, 1, 1);
        var judged = RoundPhases.Judge(groups, new ImplicitRewardJudge(model, null, 0), null, settings, Task, Tokenizer.EosId);
        var pairs = RoundPhases.Pairs(groups, judged, settings, model, 1, 1, 0);
        Assert.NotEmpty(pairs.Examples);

        Assert.ThrowsAny<OperationCanceledException>(() => RoundPhases.Generate(model, Tokenizer, prompts, [0, 1, 2, 3], settings, 1, 1, ct));
        Assert.ThrowsAny<OperationCanceledException>(() => RoundPhases.Judge(groups, new ImplicitRewardJudge(model, null, 0), null, settings, Task, Tokenizer.EosId, ct));
        // The paper's rubric needs a longer context than the tiny model's.
        using var judge = BuiltinModels.Create(BuiltinModels.Tiny with { MaxPositions = 2048 }, 3);
        Assert.ThrowsAny<OperationCanceledException>(() => RoundPhases.Judge(groups,
            new LlmJudge(judge, Tokenizer, 1, new() { MaxNewTokens = 4 }), null, settings, Task, Tokenizer.EosId, ct));
        Assert.ThrowsAny<OperationCanceledException>(() => RoundPhases.Pairs(groups, judged, settings, model, 1, 1, 0, ct));
        Assert.ThrowsAny<OperationCanceledException>(() => RoundPhases.Train(model, pairs, settings, 1, 1, 0, cancellationToken: ct));
        Assert.ThrowsAny<OperationCanceledException>(() => RoundPhases.Evaluate(model, model, model, Tokenizer, Task, prompts, 8, 1, 64, ct));
        Assert.ThrowsAny<OperationCanceledException>(() => WarmStart.Train(BuiltinModels.Tiny, Tokenizer, Task, new WarmStart.Settings(Steps: 5), 1, out _, ct));
    }

    /// <summary>
    /// The decode loop (generation, the LLM judge and evaluation all decode through it): cancelled from inside a step,
    /// after the first row of a batch's third token, the step's other row still gets its token and then the loop stops.
    /// Had the token only been checked at entry or between batches, all 4 x 16 tokens would come.
    /// </summary>
    [Fact]
    public void DecodingStopsAtTheNextStepWhenCancelledFromInsideAStep()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var prompts = Task.Prompts(4, 1, "train").Select(p => Examples.PromptIds(Tokenizer, p.Prompt)).ToList();
        // No stop tokens: every row decodes its 16 tokens unless the loop stops.
        var options = new SamplingOptions { MaxNewTokens = 16, Temperature = 0 };
        int uncancelled = 0;
        TextGenerator.Generate(model, prompts, options, maxBatch: 2, onToken: (_, _) => uncancelled++);
        Assert.Equal(4 * 16, uncancelled);

        using var cancellation = new CancellationTokenSource();
        var seen = new List<(int Row, int Token)>();
        Assert.ThrowsAny<OperationCanceledException>(() => TextGenerator.Generate(model, prompts, options, maxBatch: 2,
            cancellationToken: cancellation.Token, onToken: (row, token) =>
            {
                seen.Add((row, token));
                if (seen.Count == 5) cancellation.Cancel(); // the first batch's third step, its first row
            }));
        Assert.Equal([0, 1, 0, 1, 0, 1], seen.Select(s => s.Row));
    }

    /// <summary>
    /// The preference trainer's step loop (RoundJob reports its steps through the same callback, and the silo's worker
    /// checks its token there): cancelled from inside step 2's progress report, step 3 never starts.
    /// </summary>
    [Fact]
    public void TrainingStopsAtTheNextStepWhenCancelledFromInsideAStep()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var prompts = Task.Prompts(6, 1, "train").ToList();
        var settings = new RoundSettings { SamplesPerPrompt = 2, Optimizer = new() { BatchSize = 1 } };
        var groups = RoundPhases.Generate(model, Tokenizer, prompts, [.. Enumerable.Range(0, prompts.Count)], settings, 1, 1);
        var judged = RoundPhases.Judge(groups, new ImplicitRewardJudge(model, null, 0), null, settings, Task, Tokenizer.EosId);
        var pairs = RoundPhases.Pairs(groups, judged, settings, model, 1, 1, 0);
        Assert.True(pairs.Examples.Count >= 4, $"{pairs.Examples.Count} pairs: too few steps to stop in the middle");

        using var cancellation = new CancellationTokenSource();
        var reported = new List<(int Done, int Total)>();
        Assert.ThrowsAny<OperationCanceledException>(() => RoundPhases.Train(model, pairs, settings, 1, 1, 0, (done, total) =>
        {
            reported.Add((done, total));
            if (done == 2) cancellation.Cancel();
        }, cancellationToken: cancellation.Token));
        Assert.Equal([(1, pairs.Examples.Count), (2, pairs.Examples.Count)], reported);
    }
}
