using OnlineAlign.Specs;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// Every phase's work checks the cancellation token inside its loops (pause and cancel reach the model thread
/// through it): asked with a cancelled token, each phase stops before doing its first step.
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
}
