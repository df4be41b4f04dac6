using Microsoft.Extensions.Logging;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// From the moment this silo is active until it stops: every <see cref="Period"/>, fills the gaps of
/// <see cref="SiloMetadataView"/> by asking silos directly. A pass with no gap makes no call.
/// </summary>
public sealed class SiloMetadataRefresh(SiloMetadataView view, SiloMetadataServiceClient client, ILogger<SiloMetadataRefresh> log)
    : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(2);

    /// <summary>How long one silo may take to answer: a silo that is dead but not yet voted out must not hold up the others for long.</summary>
    public static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public void Participate(ISiloLifecycle lifecycle) => lifecycle.Subscribe(nameof(SiloMetadataRefresh), ServiceLifecycleStage.Active,
        _ => { _loop = Task.Run(() => LoopAsync(_stop.Token), CancellationToken.None); return Task.CompletedTask; },
        async _ =>
        {
            await _stop.CancelAsync();
            if (_loop is not null) await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        });

    private int _disposed;

    public void Dispose()
    {
        // Disposed twice: the container owns it once as itself and once as the lifecycle participant it is registered as
        // too, and a second Cancel on the disposed source threw out of the host's shutdown (every silo exited with 134).
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _stop.Cancel();   // disposed without the lifecycle's stop: the loop ends too
        _stop.Dispose();
    }

    private async Task LoopAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(Period);
        try
        {
            do
            {
                try
                {
                    await view.FillGapsAsync((silo, ct) => client.Ask(silo).WaitAsync(AnswerTimeout, ct), stop);
                }
                catch (Exception e) when (!stop.IsCancellationRequested)
                {
                    log.LogWarning(e, "Filling in silos' metadata failed; trying again in {Period}", Period);
                }
            }
            while (await timer.WaitForNextTickAsync(stop));
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }
}
