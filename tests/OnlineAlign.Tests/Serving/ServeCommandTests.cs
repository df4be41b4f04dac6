using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Serving;

// Starts the CLI as a process (the built onlinealign.dll): a cluster-kind test for the fast subset's filter.
[Trait("Kind", "Cluster")]
public class ServeCommandTests
{
    [Fact]
    public async Task ServeRefusesANetworkAddressWithoutAKeyAndNeedsAFolderOrARun()
    {
        var (code, _, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(1),
            "serve", "--folder", RepositoryPaths.Fixture("hf", "llama-tiny"), "--listen", "0.0.0.0", "--api-key", "");
        Assert.Equal(2, code);
        Assert.Contains("--listen 0.0.0.0 is reachable from the network", stderr);
        Assert.Contains("ONLINEALIGN_API_KEY", stderr);
        (code, _, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "serve", "--api-key", "");
        Assert.Equal(2, code);
        Assert.Contains("give a run id or --folder", stderr);
    }
}
