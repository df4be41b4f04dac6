using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// When a cluster comes up, the runs it was driving when it last stopped continue at once: asking each
/// registered run for its status activates it, and an activated run that was driving picks its loop up
/// again. Without this they would wait for their reminder (up to a minute).
/// </summary>
public static class RunWakeUp
{
    public static async Task WakeAsync(IGrainFactory grains, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var id in await grains.GetGrain<IRunRegistryGrain>(0).List())
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (await grains.GetGrain<IRunGrain>(id).Get() is { } status && status.State.IsDriving())
                    logger.LogInformation("Run {RunId} continues at round {Round} ({Phase}) after {Committed} committed rounds",
                        id, status.Round, status.Phase, status.CommittedRounds);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Not fatal: each driving run still has its reminder.
            logger.LogWarning(e, "Could not wake the runs that were in progress; their reminders will");
        }
    }
}
