using OnlineAlign.Alignment.Tasks;

namespace OnlineAlign.Tests.Alignment;

public class TaskTests
{
    [Theory]
    [InlineData("sort")]
    [InlineData("add")]
    [InlineData("reverse")]
    public void PromptsAreSeededAndEvalIsDisjointFromTrain(string name)
    {
        var task = BuiltinTasks.ByName(name);
        var a = task.Prompts(50, 7, "train");
        Assert.Equal(a, task.Prompts(50, 7, "train"));
        Assert.NotEqual(a, task.Prompts(50, 8, "train"));
        var train = task.Prompts(2000, 7, "train").Select(p => p.Prompt).ToHashSet();
        Assert.DoesNotContain(task.Prompts(40, 7, "eval"), p => train.Contains(p.Prompt));
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
}
