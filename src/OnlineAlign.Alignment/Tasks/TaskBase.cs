namespace OnlineAlign.Alignment.Tasks;

/// <summary>
/// Shared mechanics of the built-in tasks: the prompt space is split once and for all into a held-out
/// part (about one prompt in ten, chosen by a stable hash of its text) and a training part, so that no
/// stream of training prompts (any seed: warm-start demonstrations, round prompts) can contain a held-out
/// evaluation prompt. The answer is computed from the prompt; a response is judged on its first line, trimmed.
/// </summary>
public abstract class TaskBase : IVerifiableTask
{
    public abstract string Name { get; }
    protected abstract PromptItem Make(Random random);
    protected abstract string Corrupt(string answer, Random random);

    public IReadOnlyList<PromptItem> Prompts(int count, int seed, string split)
    {
        bool heldOut = split == "eval";
        var random = new Random((int)(StableHash($"{Name}/{split}/{seed}") & 0x7fffffff));
        var items = new List<PromptItem>(count);
        for (int guard = 0; items.Count < count && guard < count * 100; guard++)
        {
            var item = Make(random);
            if (IsHeldOut(item.Prompt) == heldOut) items.Add(item);
        }
        return items;
    }

    /// <summary>Whether a prompt belongs to the held-out (evaluation) part of the task's prompt space.</summary>
    public static bool IsHeldOut(string prompt) => StableHash(prompt) % 10 == 0;

    /// <summary>FNV-1a: the same in every process (string.GetHashCode is not).</summary>
    private static uint StableHash(string text)
    {
        uint hash = 2166136261;
        foreach (char c in text) hash = (hash ^ c) * 16777619;
        return hash;
    }

    public bool Verify(PromptItem item, string response) =>
        item.Answer is not null && response.Split('\n')[0].Trim() == item.Answer;

    public string Demonstrate(PromptItem item, Random random, double noise) =>
        random.NextDouble() < noise ? Corrupt(item.Answer!, random) : item.Answer!;
}

/// <summary>"sort 4 1 3=" → "134": sort 3 to 5 digits.</summary>
public sealed class SortDigitsTask : TaskBase
{
    public override string Name => "sort";

    protected override PromptItem Make(Random random)
    {
        var digits = Enumerable.Range(0, random.Next(3, 6)).Select(_ => random.Next(0, 10)).ToArray();
        return new PromptItem($"sort {string.Concat(digits)}=", string.Concat(digits.Order()));
    }

    protected override string Corrupt(string answer, Random random)
    {
        // A near miss: two neighbouring digits swapped (or one dropped when they are equal).
        var chars = answer.ToCharArray();
        int i = random.Next(chars.Length - 1);
        if (chars[i] == chars[i + 1]) return answer.Remove(i, 1);
        (chars[i], chars[i + 1]) = (chars[i + 1], chars[i]);
        return new string(chars);
    }
}

/// <summary>"add 23+45=" → "68": two numbers below 100.</summary>
public sealed class AddNumbersTask : TaskBase
{
    public override string Name => "add";

    protected override PromptItem Make(Random random)
    {
        int a = random.Next(0, 100), b = random.Next(0, 100);
        return new PromptItem($"add {a}+{b}=", (a + b).ToString());
    }

    protected override string Corrupt(string answer, Random random) =>
        (int.Parse(answer) + (random.Next(2) == 0 ? 1 : -1) * random.Next(1, 11)).ToString();
}

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

public static class BuiltinTasks
{
    public static readonly string[] Names = ["sort", "add", "reverse"];

    public static IVerifiableTask ByName(string name) => name switch
    {
        "sort" => new SortDigitsTask(),
        "add" => new AddNumbersTask(),
        "reverse" => new ReverseWordTask(),
        _ => throw new ArgumentException($"task '{name}' is not a built-in task ({string.Join(", ", Names)})"),
    };
}
