using OnlineAlign.Modeling;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// Pins torch's CPU thread count for a test that trains and asserts a learned result (a count of 1 and of 2 round
/// differently, so a result is only that result at its thread count) and restores the count after. The count is the
/// process's, so such tests run in <see cref="PinnedTorchThreads"/>, alone.
/// </summary>
public sealed class TorchThreadScope : IDisposable
{
    private readonly int _before = get_num_threads();

    public TorchThreadScope(int threads) => TorchThreads.Pin(threads);

    public void Dispose() => set_num_threads(_before);
}

/// <summary>Tests that pin the process's torch thread count: run with no other test beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PinnedTorchThreads
{
    public const string Name = "torch-threads";
}
