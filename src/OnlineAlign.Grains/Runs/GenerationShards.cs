namespace OnlineAlign.Grains.Runs;

/// <summary>How a round's prompts are split among the run's generation replicas.</summary>
public static class GenerationShards
{
    /// <summary>Contiguous prompt-position ranges, one per replica; the split never changes what is sampled.</summary>
    public static List<List<int>> Split(int prompts, int replicas)
    {
        int n = Math.Clamp(replicas, 1, Math.Max(1, prompts));
        return Enumerable.Range(0, n).Select(k => Enumerable.Range(k * prompts / n, (k + 1) * prompts / n - k * prompts / n).ToList()).ToList();
    }
}
