using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Specs;

namespace OnlineAlign.Tests.Specs;

/// <summary>
/// A sampled LLM judgement (Self-Rewarding's rubric or a text template) must fit the model's context with its template, the
/// prompt, the response and the judgement it writes: otherwise the judge phase fails once the round has generated, so the
/// spec is refused at StartRun, naming the judgement length and the context.
/// </summary>
public class JudgeContextTests
{
    [Fact]
    public void ARubricJudgeThatCannotFitTheTinyModelsContextIsRefusedAndTheCompactOneIsNot()
    {
        // The built-in model reads 128 byte tokens; Self-Rewarding's rubric alone is about 1,900.
        var rubric = new RunSpec { Judge = new() { Kind = "llm", Template = "rubric" } };
        var refusal = Assert.Single(RunSpecMapping.Problems(rubric), p => p.StartsWith("judge.max_new_tokens 256", StringComparison.Ordinal));
        Assert.Contains("judge.template 'rubric'", refusal);
        Assert.Contains("exceed the model's context of 128", refusal);
        Assert.DoesNotContain("fit, but", refusal);   // not even the rubric's own text fits: no judgement length would
        // The tiny model's tasks judge with the compact template (auto), which writes nothing: the default spec is valid.
        Assert.Empty(RunSpecMapping.Problems(rubric with { Judge = rubric.Judge with { Template = "compact" } }));
        Assert.Empty(RunSpecMapping.Problems(new RunSpec()));
        // Judges that write no judgement are not concerned.
        Assert.Null(RunSpecMapping.JudgeContextProblem(rubric with { Judge = new() { Kind = "implicit", Template = "rubric" } },
            new ByteTokenizer(), "sort 312=", 128));
    }

    [Fact]
    public void ATextTemplatesJudgementLengthIsCheckedAgainstWhatIsLeftOfTheContext()
    {
        var tokenizer = new ByteTokenizer();
        var spec = new RunSpec { Judge = new() { Kind = "self_consistent", Template = "Q {prompt} A {response} J", MaxNewTokens = 32 } };
        // Exactly what the judge reads: the chat-formatted template around the prompt, and a response of sampling.max_new_tokens.
        string prompt = "sort 8406151=";
        int read = OnlineAlign.Alignment.Training.Examples.PromptIds(tokenizer, $"Q {prompt} A  J").Length + spec.Sampling.MaxNewTokens;
        Assert.Null(RunSpecMapping.JudgeContextProblem(spec with { Judge = spec.Judge with { MaxNewTokens = 128 - read } }, tokenizer, prompt, 128));
        var refusal = RunSpecMapping.JudgeContextProblem(spec with { Judge = spec.Judge with { MaxNewTokens = 129 - read } }, tokenizer, prompt, 128);
        Assert.NotNull(refusal);
        Assert.StartsWith($"judge.max_new_tokens {129 - read}:", refusal);
        Assert.Contains($"({read} tokens)", refusal);
        Assert.Contains($"judgements of up to {128 - read} tokens fit", refusal);
        // Through the whole check, on the built-in task: 120 judgement tokens cannot fit beside any prompt.
        Assert.Contains(RunSpecMapping.Problems(spec with { Judge = spec.Judge with { MaxNewTokens = 120 } }),
            p => p.StartsWith("judge.max_new_tokens 120:", StringComparison.Ordinal) && p.Contains("context of 128"));
        Assert.Empty(RunSpecMapping.Problems(spec));
    }
}
