namespace OnlineAlign.Alignment.Tasks;

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
