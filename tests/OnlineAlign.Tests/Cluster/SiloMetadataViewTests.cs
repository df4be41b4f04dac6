using System.Collections.Immutable;
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Grains.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// SiloMetadataView with Orleans' metadata cache empty (as after a failed fetch that Orleans does not retry): what it fills
/// in by asking, what it asks again, and what it forgets. In process, with a membership snapshot the test sets.
/// </summary>
public class SiloMetadataViewTests
{
    private static readonly SiloAddress Local = SiloAddress.New(IPAddress.Loopback, 11111, 1);
    private static readonly SiloAddress Gpu = SiloAddress.New(IPAddress.Loopback, 11112, 1);
    private static readonly Dictionary<string, string> GpuMetadata = new() { [GpuSiloPlacementFilterDirector.MetadataKey] = "gpu", [GpuSilos.DeviceMemoryKey] = "1000" };

    [Fact]
    public async Task ASiloThatDidNotAnswerIsAskedAgainOnTheNextPassAndThenKnown()
    {
        var (view, membership) = View();
        membership.Set((Local, SiloStatus.Active), (Gpu, SiloStatus.Active));
        var asked = new List<SiloAddress>();
        Task<Dictionary<string, string>> Ask(SiloAddress silo, CancellationToken _)
        {
            asked.Add(silo);
            return asked.Count == 1 ? throw new TimeoutException("no answer") : Task.FromResult(GpuMetadata);
        }
        await view.FillGapsAsync(Ask, CancellationToken.None);
        Assert.Empty(view.Of(Gpu));
        Assert.Empty(new GpuSilos(view).Known());
        await view.FillGapsAsync(Ask, CancellationToken.None);
        Assert.Equal("gpu", view.Of(Gpu)[GpuSiloPlacementFilterDirector.MetadataKey]);
        Assert.Equal([new GpuSilo(Gpu.ToParsableString(), 1000)], new GpuSilos(view).Known());
        // Known now: later passes ask nothing.
        await view.FillGapsAsync(Ask, CancellationToken.None);
        Assert.Equal([Gpu, Gpu], asked);   // never itself: its own metadata it has
        Assert.Equal("control", view.Of(Local)[ControlSiloPlacementFilterDirector.RoleKey]);
    }

    [Fact]
    public async Task ASiloThatDiesIsForgottenAndNotAsked()
    {
        var (view, membership) = View();
        membership.Set((Local, SiloStatus.Active), (Gpu, SiloStatus.Active));
        int asked = 0;
        Task<Dictionary<string, string>> Ask(SiloAddress silo, CancellationToken _) { asked++; return Task.FromResult(GpuMetadata); }
        await view.FillGapsAsync(Ask, CancellationToken.None);
        Assert.Single(new GpuSilos(view).Known());
        membership.Set((Local, SiloStatus.Active), (Gpu, SiloStatus.Dead));
        Assert.Empty(view.Of(Gpu));   // at once, before the next pass forgets its answer
        await view.FillGapsAsync(Ask, CancellationToken.None);
        Assert.Empty(view.Of(Gpu));
        Assert.Empty(new GpuSilos(view).Known());
        Assert.Equal(1, asked);
        // A silo that is still joining is not asked either (placement uses active silos only).
        membership.Set((Local, SiloStatus.Active), (Gpu, SiloStatus.Joining));
        await view.FillGapsAsync(Ask, CancellationToken.None);
        Assert.Equal(1, asked);
    }

    private static (SiloMetadataView, FakeMembership) View()
    {
        var membership = new FakeMembership();
        var own = new LocalSiloMetadata(new Dictionary<string, string> { [ControlSiloPlacementFilterDirector.RoleKey] = "control" });
        return (new SiloMetadataView(new EmptyOrleansCache(), membership, new LocalDetails(), own, FaultPoints.Off,
            NullLogger<SiloMetadataView>.Instance), membership);
    }

    private sealed class EmptyOrleansCache : ISiloMetadataCache
    {
        public SiloMetadata GetSiloMetadata(SiloAddress siloAddress) => SiloMetadata.Empty;
    }

    private sealed class LocalDetails : ILocalSiloDetails
    {
        public string Name => "local";
        public string ClusterId => "test";
        public string DnsHostName => "localhost";
        public SiloAddress SiloAddress => Local;
        public SiloAddress GatewayAddress => Local;
    }

    private sealed class FakeMembership : IClusterMembershipService
    {
        private long _version;
        public ClusterMembershipSnapshot CurrentSnapshot { get; private set; } =
            new(ImmutableDictionary<SiloAddress, ClusterMember>.Empty, MembershipVersion.MinValue);

        public void Set(params (SiloAddress Silo, SiloStatus Status)[] members) => CurrentSnapshot = new(
            members.ToImmutableDictionary(m => m.Silo, m => new ClusterMember(m.Silo, m.Status, m.Silo.ToString())), new MembershipVersion(++_version));

        public IAsyncEnumerable<ClusterMembershipSnapshot> MembershipUpdates => throw new NotSupportedException();
        public ValueTask Refresh(MembershipVersion minimumVersion = default, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
        public Task<bool> TryKill(SiloAddress siloAddress) => Task.FromResult(false);
    }
}
