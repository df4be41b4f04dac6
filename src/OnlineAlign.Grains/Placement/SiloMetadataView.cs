using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OnlineAlign.Grains.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// This silo's view of every silo's metadata (role, accelerator, device memory), which placement and the GPU ledger read:
/// Orleans' metadata cache, and where it has none for an active silo, what that silo answered when asked directly
/// (<see cref="FillGapsAsync"/>). Orleans fetches a silo's metadata only when the membership changes and, after a failed
/// fetch (a silo still joining, a connection refused), keeps it from trying again for minutes; in a cluster whose membership
/// then stays the same it never does, and a run waits as waiting_for_gpu for a GPU silo that is up.
/// </summary>
public sealed class SiloMetadataView(
    ISiloMetadataCache orleans,
    IClusterMembershipService membership,
    ILocalSiloDetails local,
    LocalSiloMetadata own,
    FaultPoints faults,
    ILogger<SiloMetadataView> log)
{
    /// <summary>
    /// Fault point (tests): while its ".on" file exists this silo reads nothing from Orleans' cache, as after a failed fetch,
    /// so every other silo's metadata must come from asking it.
    /// </summary>
    public const string OrleansCacheEmptyPoint = "silo-metadata/orleans-cache-empty";

    private static readonly IReadOnlyDictionary<string, string> None = new Dictionary<string, string>();
    private readonly ConcurrentDictionary<SiloAddress, IReadOnlyDictionary<string, string>> _asked = new();
    private volatile bool _orleansCacheEmpty = faults.IsOn(OrleansCacheEmptyPoint);

    public IReadOnlyDictionary<string, string> Of(SiloAddress silo)
    {
        if (silo.Equals(local.SiloAddress)) return own.Values;
        if (!_orleansCacheEmpty && orleans.GetSiloMetadata(silo).Metadata is { Count: > 0 } cached) return cached;
        // What a silo answered counts while it is active: one that died since is not placed on before the next pass forgets it.
        return _asked.TryGetValue(silo, out var asked) && membership.CurrentSnapshot.GetSiloStatus(silo) == SiloStatus.Active ? asked : None;
    }

    /// <summary>The active silos and their metadata (empty for one known nowhere yet).</summary>
    public IEnumerable<(SiloAddress Silo, IReadOnlyDictionary<string, string> Metadata)> Active() =>
        membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => (m.SiloAddress, Of(m.SiloAddress)));

    /// <summary>
    /// One pass: asks each active silo whose metadata this silo has nowhere for it (<paramref name="ask"/>), and forgets what
    /// it asked of silos no longer in the membership. A silo that does not answer is asked again on the next pass.
    /// </summary>
    public async Task FillGapsAsync(Func<SiloAddress, CancellationToken, Task<Dictionary<string, string>>> ask, CancellationToken cancellationToken)
    {
        _orleansCacheEmpty = faults.IsOn(OrleansCacheEmptyPoint);
        var members = membership.CurrentSnapshot.Members;
        foreach (var gone in _asked.Keys.Where(silo => members.GetValueOrDefault(silo)?.Status is null or SiloStatus.Dead).ToList())
            _asked.TryRemove(gone, out _);
        // Side by side: a silo that does not answer (dead, not yet voted out) holds up none of the others.
        await Task.WhenAll(Active().Where(m => m.Metadata.Count == 0).Select(m => AskAsync(m.Silo, ask, cancellationToken)).ToList());
    }

    private async Task AskAsync(SiloAddress silo, Func<SiloAddress, CancellationToken, Task<Dictionary<string, string>>> ask,
        CancellationToken cancellationToken)
    {
        try
        {
            var answer = await ask(silo, cancellationToken);
            if (answer.Count == 0) return;
            _asked[silo] = answer;
            log.LogInformation("Silo {Silo}'s metadata ({Metadata}) taken from the silo itself: Orleans' metadata cache has none for it",
                silo, string.Join(", ", answer.Select(kv => $"{kv.Key}={kv.Value}")));
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Dead but not yet voted out, or still starting: the next pass asks again.
            log.LogDebug(e, "Silo {Silo} did not give its metadata; asking again shortly", silo);
        }
    }
}
