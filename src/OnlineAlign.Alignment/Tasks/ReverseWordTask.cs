namespace OnlineAlign.Alignment.Tasks;

/// <summary>"rev abcd=" → "dcba": reverse 3 to 6 letters.</summary>
public sealed class ReverseWordTask : TaskBase
{
    public override string Name => "reverse";

    protected override PromptItem Make(Random random)
    {
        var word = new string(Enumerable.Range(0, random.Next(3, 7)).Select(_ => (char)('a' + random.Next(0, 8))).ToArray());
        return new PromptItem($"rev {word}=", new string(word.Reverse().ToArray()));
    }

    protected override string Corrupt(string answer, Random random) =>
        answer.Length > 1 ? answer[1..] + answer[0] : answer + answer;
}
