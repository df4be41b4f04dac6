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
