namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// One silo (role "all") and Azurite for a test class whose tests each start their own runs and look only at those, and
/// hold fault points no other test of the class holds (a point's ".reached" marker stays once written): the class's tests
/// take turns on it instead of each starting a cluster of its own (starting one is a good part of a short cluster test).
/// </summary>
public sealed class SharedCluster : IAsyncLifetime
{
    public LocalTestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await LocalTestCluster.StartAsync(("all", null));

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}
