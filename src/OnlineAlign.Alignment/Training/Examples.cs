using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Alignment.Training;

/// <summary>
/// Turns text into the token layout every phase shares: [bos] prompt-in-its-chat-template | response [end of turn]
/// (the end is eos for plain text, the template's turn end, e.g. &lt;|im_end|&gt;, for a chat model).
/// </summary>
public static class Examples
{
    public static int[] PromptIds(ITextTokenizer tokenizer, string prompt)
    {
        var ids = tokenizer.Encode(tokenizer.Chat.Format(prompt));
        return tokenizer.BosId >= 0 ? [tokenizer.BosId, .. ids] : ids;
    }

    public static int[] ResponseIds(ITextTokenizer tokenizer, string response) => [.. tokenizer.Encode(response), tokenizer.Chat.EndOfResponse];

    public static PromptResponse Pair(ITextTokenizer tokenizer, string prompt, string response) =>
        new(PromptIds(tokenizer, prompt), ResponseIds(tokenizer, response));
}

/// <summary>One training pair with the reference log-probs computed once per round, before training.</summary>
/// <param name="WinChosen">SPPO: the chosen response's estimated win rate against its prompt's responses</param>
/// <param name="Explore">SELM: a response to the prompt sampled from the round's start policy, with its reference log-prob</param>
public sealed record PairExample(int[] Prompt, int[] Chosen, int[] Rejected, double ReferenceChosen, double ReferenceRejected, double Consistency = 1.0,
    int Stage = 0, double WinChosen = 1.0, double WinRejected = 0.0, int[]? Explore = null, double ReferenceExplore = 0);

/// <summary>A training step's metrics, with the names TRL users know.</summary>
public sealed record StepMetrics(int Step, double Loss, double RewardsChosen, double RewardsRejected, double RewardsAccuracy,
    double RewardsMargin, double LogpsChosen, double LogpsRejected, double GradNorm, double LearningRate)
{
    public IReadOnlyDictionary<string, double> Named() => new Dictionary<string, double>
    {
        ["loss"] = Loss, ["rewards/chosen"] = RewardsChosen, ["rewards/rejected"] = RewardsRejected,
        ["rewards/accuracies"] = RewardsAccuracy, ["rewards/margins"] = RewardsMargin,
        ["logps/chosen"] = LogpsChosen, ["logps/rejected"] = LogpsRejected, ["grad_norm"] = GradNorm, ["lr"] = LearningRate,
    };
}

/// <summary>Training produced NaN or Inf: the step is named so the run can pause with a precise error.</summary>
public sealed class NonFiniteLossException(int step, double loss)
    : Exception($"loss became {loss} at training step {step}; the update was not applied")
{
    public int Step { get; } = step;
}
