using OnlineAlign.Execution.Phases;
using OnlineAlign.Modeling;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// A model a phase counts on (its checkpoint fetched without weights, PolicyWorkerGrain.Folders) is held: never evicted while
/// held, even past the cache's capacity, and evicted in its turn once released.
/// </summary>
public class ModelCacheHoldTests
{
    private static readonly string[] A = ["a"], AAndUnknown = ["a", "x"], B = ["b"];

    [Fact]
    public void AHeldModelIsNotEvictedPastTheCapacityAndGoesInItsTurnOnceReleased()
    {
        using var models = new ModelCache(RepositoryPaths.NewTempFolder("model-hold"), capacity: 2);
        using var model = BuiltinModels.Create(BuiltinModels.ByName("tiny"), 1);
        void Add(string sha) => models.Adopt(new TrainedState(model, null), sha, baseFolder: null);   // a copy of it, held by the cache
        Add("a");
        var (held, handle) = models.Hold(AAndUnknown, CPU);
        Assert.Equal(A, held);   // only what is in memory
        Add("b");
        Add("c");   // over capacity: "a" is the least recent, yet held; "b" goes instead
        var again = models.Hold(A, CPU);
        Assert.Equal(A, again.Held);
        again.Handle.Dispose();
        Assert.Empty(models.Hold(B, CPU).Held);
        handle.Dispose();
        Add("d");   // "a" released: now it goes
        Assert.Empty(models.Hold(A, CPU).Held);
        Assert.False(models.HoldsMoments("a"));
    }
}
