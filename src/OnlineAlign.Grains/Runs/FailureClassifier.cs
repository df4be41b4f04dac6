using System.Net.Sockets;
using Azure;
using OnlineAlign.Contracts;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace OnlineAlign.Grains.Runs;

public static class FailureClassifier
{
    public static FailureKind Classify(Exception e) => e switch
    {
        TrainingDivergedException => FailureKind.Diverged,
        CheckpointCorruptException => FailureKind.CorruptCheckpoint,
        DiskFullException => FailureKind.DiskFull,
        _ when DiskFull(e) is not null => FailureKind.DiskFull,
        RunInputException => FailureKind.BadInput,
        PhaseFailedException => FailureKind.Deterministic,
        OrleansException when e.Message.Contains("No active nodes are compatible", StringComparison.Ordinal) => FailureKind.NoGpuSilo,
        WaitingForGpuException => FailureKind.NoGpuSilo,   // no GPU silo has room for the run's plan beside the runs placed
        _ when IsTransient(e) => FailureKind.Transient,
        _ => FailureKind.Deterministic,
    };

    /// <summary>
    /// Failures of the machinery rather than of the work: the callee's silo went away or did not answer in
    /// time, or storage could not be reached or was busy. The exception or any exception inside it counts.
    /// </summary>
    public static bool IsTransient(Exception e)
    {
        if (DiskFull(e) is not null) return false; // storage that answers "full" (507) will answer so again
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            // ReminderException: Orleans' answer to a reminder write that lost a race on its table ("Please try again later").
            if (x is TransientPhaseException or SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException
                or TimeoutException or HttpRequestException or SocketException or ReminderException)
                return true;
            if (x is RequestFailedException storage && (storage.Status is 0 or 408 or 429 || storage.Status >= 500)) return true;
            if (x is AggregateException aggregate && aggregate.InnerExceptions.Any(IsTransient)) return true;
        }
        return false;
    }

    /// <summary>
    /// Where an exception (or one inside it) says a disk is full: "local disk" for an I/O error ENOSPC (28, Linux
    /// and macOS) or ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL (112, 39, Windows), "blob storage" for a storage
    /// answer 507 (Insufficient Storage) or an error that reports a full disk behind it (Azurite's ENOSPC); else null.
    /// </summary>
    public static string? DiskFull(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is DiskFullException) return "disk";
            if (x is Azure.RequestFailedException storage
                && (storage.Status == 507 || storage.ErrorCode is "InsufficientAccountResources" or "ContainerQuotaExceeded"
                    || storage.Message.Contains("ENOSPC", StringComparison.Ordinal) || storage.Message.Contains(NoSpace, StringComparison.OrdinalIgnoreCase)))
                return "blob storage";
            if (x is IOException && (x.HResult is DiskFullErrno or WindowsDiskFull or WindowsHandleDiskFull || (x.HResult & 0xFFFF) == DiskFullErrno
                                     || x.Message.Contains(NoSpace, StringComparison.OrdinalIgnoreCase)))
                return "local disk";
            if (x is AggregateException aggregate && aggregate.InnerExceptions.Select(DiskFull).FirstOrDefault(w => w is not null) is { } inner) return inner;
        }
        return null;
    }

    /// <summary>
    /// The rule for a full disk, local or the storage account's (<see cref="DiskFull"/> says which): a failure of its own kind,
    /// never transient, because the disk stays full until someone frees space, and twenty retries with backoff would only
    /// delay telling them; counted instead, so the phase is tried again at most max_phase_attempts times (the space a failed
    /// attempt took is freed first), then the run fails. The message says "no space left", where, and what was being written,
    /// so a user knows which disk to free. A request too large for storage (413) or a blob over its block limit (409
    /// BlockCountExceedsLimit) is not a full disk: freeing space would not help, and it stays deterministic.
    /// </summary>
    /// <param name="where">where the disk is: "blob storage", or the local disk with its silo and folder</param>
    /// <param name="writing">what was being written (a checkpoint's manifest path, a phase's output folder)</param>
    public static DiskFullException DiskFullFailure(Exception e, string where, string writing) =>
        new($"disk full: no space left on {where} while writing {writing}; free space there (the phase is tried again at most " +
            $"max_phase_attempts times): {e.GetType().Name}: {e.Message}");

    /// <summary>ENOSPC: .NET on Unix gives an IOException this errno as its HResult.</summary>
    public const int DiskFullErrno = 28;

    private const int WindowsDiskFull = unchecked((int)0x80070070), WindowsHandleDiskFull = unchecked((int)0x80070027);

    private const string NoSpace = "No space left on device";
}
