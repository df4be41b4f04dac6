using OnlineAlign.Alignment.Tasks;

namespace OnlineAlign.Tests.Alignment;

public class TaskTests
{
    [Theory]
    [InlineData("sort")]
    [InlineData("add")]
    [InlineData("reverse")]
    public void PromptsAreSeededAndTheEvaluationStreamsAreDisjointFromTrain(string name)
    {
        var task = BuiltinTasks.ByName(name);
        var a = task.Prompts(50, 7, "train");
        Assert.Equal(a, task.Prompts(50, 7, "train"));
        Assert.NotEqual(a, task.Prompts(50, 8, "train"));
        var train = task.Prompts(2000, 7, "train").Select(p => p.Prompt).ToHashSet();
        Assert.DoesNotContain(task.Prompts(40, 7, "validation"), p => train.Contains(p.Prompt));
        Assert.DoesNotContain(task.Prompts(40, 7, "test"), p => train.Contains(p.Prompt));
        Assert.All(a, p => Assert.True(task.Verify(p, p.Answer! + "\nextra"), p.Prompt));
    }

    [Fact]
    public void NoisyDemonstrationsAreWrongAboutAsOftenAsAsked()
    {
        var task = new SortDigitsTask();
        var random = new Random(1);
        var prompts = task.Prompts(1000, 1, "train");
        double wrong = prompts.Count(p => !task.Verify(p, task.Demonstrate(p, random, 0.3))) / 1000.0;
        Assert.InRange(wrong, 0.25, 0.35);
    }

    [Fact]
    public void JsonlReportsTheBrokenLineByNumber()
    {
        var ok = JsonlPrompts.Parse(["{\"prompt\": \"a\", \"answer\": 3}", "", "{\"prompt\": \"b\"}"], "p.jsonl");
        Assert.Equal([new PromptItem("a", "3", Line: 1), new PromptItem("b", Line: 3)], ok); // blank lines still count
        Assert.Contains("p.jsonl:2: not valid JSON", Assert.Throws<InvalidDataException>(() => JsonlPrompts.Parse(["{\"prompt\": \"a\"}", "{oops"], "p.jsonl")).Message);
        Assert.Contains("p.jsonl:1: field 'prompt'", Assert.Throws<InvalidDataException>(() => JsonlPrompts.Parse(["{\"prompt\": 5}"], "p.jsonl")).Message);
    }

    /// <summary>
    /// Verifiers against near misses, the wrong answers a policy actually gives: off by one, one element swapped,
    /// one missing or extra, internal whitespace, a trailing token, the right answer followed by garbage on its line.
    /// Only what the rule allows passes: the first line, trimmed (surrounding spaces, a second line).
    /// </summary>
    [Theory]
    [InlineData("sort", "sort 4193=", "1349", new[] { "1348", "1439", "3149", "134", "13499", "1 349", "1349.", "13490", "1349 x", "1349<eos>", "", "9431" })]
    [InlineData("add", "add 23+45=", "68", new[] { "67", "69", "86", "068", "6 8", "68.", "68+", "68 = 68", "+68", "68.0", "6", "" })]
    [InlineData("reverse", "rev abcd=", "dcba", new[] { "dcab", "cdba", "abcd", "dcb", "dcbaa", "dc ba", "dcba.", "dcba!", "dcba abcd", "Dcba", "" })]
    public void VerifiersRefuseNearMissesAndAcceptOnlyTheTrimmedFirstLine(string name, string prompt, string answer, string[] nearMisses)
    {
        var task = BuiltinTasks.ByName(name);
        var item = new PromptItem(prompt, answer);
        // The prompt and answer have the task's own form (its prompts carry answers computed the same way).
        Assert.All(task.Prompts(20, 1, "train"), p => Assert.Equal(prompt.Split(' ')[0], p.Prompt.Split(' ')[0]));
        Assert.All(nearMisses, wrong => Assert.False(task.Verify(item, wrong), $"'{wrong}' passed for {prompt}"));
        foreach (var right in new[] { answer, $" {answer}", $"{answer}  ", $"\t{answer}\r", $"{answer}\nanything after the first line" })
            Assert.True(task.Verify(item, right), $"'{right}' failed for {prompt}");
        // A prompt without a known answer verifies nothing, not even an empty response.
        Assert.False(task.Verify(item with { Answer = null }, answer));
    }
}
