using Grpc.Health.V1;
using OnlineAlign.Storage;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class LocalSiloTests
{
    [Fact]
    public async Task SiloWithAzuriteAnswersServingOverGrpcHealth()
    {
        string data = RepositoryPaths.NewTempFolder("azurite");
        await using var azurite = await AzuriteProcess.StartAsync(data);
        Assert.NotEqual(10000, azurite.BlobPort); // free ports, not the defaults that another Azurite may hold

        await using var silo = await SiloProcess.StartReadyAsync(
            () => SiloProcess.Start("all", azurite.ConnectionString, "test-" + Guid.NewGuid().ToString("N")[..8]),
            s => s.WaitUntilServingAsync(TimeSpan.FromSeconds(90)));

        using var channel = silo.OpenChannel();
        var reply = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
        Assert.DoesNotContain("Eby8vdM02x", silo.Output); // the storage key never reaches the log

        // Every port of the silo (silo-to-silo, gateway, gRPC) and of Azurite is on loopback by default.
        var listening = ListeningSockets.Of(silo.ProcessId).Concat(ListeningSockets.Of(azurite.ProcessId)).ToList();
        Assert.True(listening.Count >= 6, $"expected at least 3 silo and 3 Azurite ports, found {string.Join(", ", listening)}");
        Assert.All(listening, endpoint => Assert.True(System.Net.IPAddress.IsLoopback(endpoint.Address), $"{endpoint} is not loopback"));
    }

    [Fact]
    public async Task AzuriteStopsWhenDisposed()
    {
        string data = RepositoryPaths.NewTempFolder("azurite");
        var azurite = await AzuriteProcess.StartAsync(data);
        int pid = azurite.ProcessId;
        await azurite.DisposeAsync();
        Assert.Throws<ArgumentException>(() => System.Diagnostics.Process.GetProcessById(pid));
    }
}
