using Azure;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A full disk, local (ENOSPC) or in storage (the account out of space): not transient, however it looks (storage answers
/// it like a server error). A phase that meets one fails as a counted attempt (max_phase_attempts), with a message that
/// says so, instead of being retried as a passing fault that leaves partial files each time.
/// </summary>
public static class DiskFull
{
    private const int Enospc = 28, ErrorDiskFull = 0x70, ErrorHandleDiskFull = 0x27;

    public static bool Is(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is IOException io && ((io.HResult & 0xFFFF) is Enospc or ErrorDiskFull or ErrorHandleDiskFull
                                        || io.Message.Contains("No space left on device", StringComparison.Ordinal)))
                return true;
            if (x is RequestFailedException storage && (storage.Status == 507 || storage.ErrorCode is "InsufficientAccountResources" or "ContainerQuotaExceeded"))
                return true;
            if (x is AggregateException aggregate && aggregate.InnerExceptions.Any(Is)) return true;
        }
        return false;
    }

    /// <summary>The failure a phase reports: where, and what to do about it.</summary>
    public static string Message(string phase, string cacheFolder, Exception e) =>
        $"phase {phase}: out of disk space (on this silo's disk under {cacheFolder}, or in blob storage): {e.Message}. Free space or enlarge the disk, then resume the run";
}
