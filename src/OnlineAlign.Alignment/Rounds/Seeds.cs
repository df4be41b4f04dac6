namespace OnlineAlign.Alignment.Rounds;

/// <summary>
/// Seeds derived from (run seed, round, prompt, sample) by SplitMix64 mixing, so that a sample's
/// randomness does not depend on which batch or replica generates it.
/// </summary>
public static class Seeds
{
    public static ulong For(ulong runSeed, int round, int prompt, int sample)
    {
        ulong x = runSeed;
        foreach (ulong part in new[] { (ulong)round, (ulong)prompt, (ulong)sample })
            x = Mix(x ^ Mix(part + 0x9E3779B97F4A7C15UL));
        return x;
    }

    /// <summary>An LLM judge's judgement of one sample: (judge seed, prompt, sample, judgement), never a row's batch position.</summary>
    public static ulong Judgement(ulong judgeSeed, int prompt, int sample, int judgement)
    {
        ulong x = judgeSeed ^ 0x4A55444745UL; // apart from the generation seeds of the same numbers
        foreach (ulong part in new[] { (ulong)prompt, (ulong)sample, (ulong)judgement })
            x = Mix(x ^ Mix(part + 0x9E3779B97F4A7C15UL));
        return x;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
