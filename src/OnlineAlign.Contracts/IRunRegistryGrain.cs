namespace OnlineAlign.Contracts;

/// <summary>The list of runs (a single grain, key 0).</summary>
[Alias("onlinealign.IRunRegistryGrain")]
public interface IRunRegistryGrain : IGrainWithIntegerKey
{
    [Alias("Add")] Task Add(string runId);
    [Alias("List")] Task<List<string>> List();
    [Alias("Contains")] Task<bool> Contains(string runId);
    /// <summary>Up to <paramref name="count"/> run ids from position <paramref name="start"/> in start order, and how many runs there are.</summary>
    [Alias("Page")] Task<(List<string> Ids, int Total)> Page(int start, int count);
    /// <summary>
    /// Counts the run as in progress (running or waiting for a GPU), or throws <see cref="RunLimitException"/> when
    /// <paramref name="limit"/> runs already are. A run counted twice is counted once.
    /// </summary>
    [Alias("Admit")] Task Admit(string runId, int limit);
    /// <summary>The run no longer drives (paused, cancelled, failed or completed).</summary>
    [Alias("Release")] Task Release(string runId);
}
