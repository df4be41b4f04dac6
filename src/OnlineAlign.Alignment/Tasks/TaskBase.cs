namespace OnlineAlign.Alignment.Tasks;

/// <summary>
/// Shared mechanics of the built-in tasks: the prompt space is split once and for all into test, validation and
/// training parts by a stable hash of the prompt's text (<see cref="PromptStreams"/>), so that no stream of training
/// prompts (any seed: warm-start demonstrations, round prompts) can contain a validation or test prompt, and the two
/// evaluation streams never share one. The answer is computed from the prompt; a response is judged on its first line, trimmed.
/// </summary>
public abstract class TaskBase : IVerifiableTask
{
    public abstract string Name { get; }
    protected abstract PromptItem Make(Random random);
    protected abstract string Corrupt(string answer, Random random);

    public IReadOnlyList<PromptItem> Prompts(int count, int seed, string split)
    {
        string part = PromptStreams.Part(split);
        var random = new Random((int)(StableHash($"{Name}/{split}/{seed}") & 0x7fffffff));
        var items = new List<PromptItem>(count);
        for (int guard = 0; items.Count < count && guard < count * 100; guard++)
        {
            var item = Make(random);
            if (PromptStreams.Of(item.Prompt) == part) items.Add(item);
        }
        return items;
    }

    private static uint StableHash(string text) => PromptStreams.StableHash(text);

    public bool Verify(PromptItem item, string response) =>
        item.Answer is not null && response.Split('\n')[0].Trim() == item.Answer;

    public string Demonstrate(PromptItem item, Random random, double noise) =>
        random.NextDouble() < noise ? Corrupt(item.Answer!, random) : item.Answer!;
}
