using OnlineAlign.Modeling;

namespace OnlineAlign.Tests.Modeling;

public class TorchThreadsTests
{
    // Only refusals here: pinning a count changes the whole process's torch, which tests must not share.
    [Theory]
    [InlineData(-1)]
    [InlineData(1025)]
    public void AThreadCountOutOfRangeIsRefusedNamingTheSetting(int threads)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => TorchThreads.Pin(threads));
        Assert.Contains("torch threads must be 0", error.Message);
    }
}
