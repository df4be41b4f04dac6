using System.Globalization;
namespace OnlineAlign.Grains.Runtime;

/// <summary>
/// Named points in a phase where a test can hold the worker or make it fail, so that fault tests hit
/// exactly what they mean to hit instead of racing a wall clock. Off unless the silo setting
/// <c>Silo:FaultFolder</c> names a folder (tests only). A point is named "{phase}/round-{R}/{where}"
/// (e.g. "train/round-1/upload"; one shard of a sharded phase: "judge-shard/round-2/shard-1"; inside a data-parallel step's
/// exchange, where step S is applied on replica 0 and not yet on replica K: "train-exchange/round-2/step-S/replica-K");
/// in the folder, the file "{point with / as .}" followed by
/// <list type="bullet">
/// <item>".hold": the worker writes ".reached" and waits until ".hold" is deleted (or its call is cancelled);</item>
/// <item>".fail": holds "deterministic N", "transient N", "diskfull N", "storagefull N" or "reminderrace N": the next N arrivals
/// throw (an error that repeats with the same inputs, a timeout-like one, an IOException with ENOSPC, the storage account's 507
/// Insufficient Storage as the Azure SDK throws it, or Orleans' ReminderException for a reminder write that lost a race on
/// the table); every throw appends a line to ".hits".</item>
/// <item>".fire": holds N: the next N arrivals at a point that asks <see cref="Fires"/> do now what they would otherwise do
/// after a while (an idle replica letting its models go: "replica-idle/{phase}/replica-K"); each appends to ".hits".</item>
/// <item>".on": while it exists, a point that asks <see cref="IsOn"/> behaves as the fault it names ("silo-metadata/orleans-cache-empty":
/// the silo reads nothing from Orleans' silo metadata cache).</item>
/// </list>
/// </summary>
public sealed class FaultPoints(string? folder)
{
    public static readonly FaultPoints Off = new(null);

    public bool Enabled => !string.IsNullOrEmpty(folder);

    /// <summary>Asynchronous arrival (grain code).</summary>
    public async Task ReachAsync(string point, CancellationToken cancellationToken)
    {
        if (!Enabled) return;
        Fail(point);
        string hold = File(point, "hold");
        if (!System.IO.File.Exists(hold)) return;
        MarkReached(point);
        while (System.IO.File.Exists(hold)) await Task.Delay(50, cancellationToken);
    }

    /// <summary>Synchronous arrival (the model thread, between steps).</summary>
    public void Reach(string point, CancellationToken cancellationToken)
    {
        if (!Enabled) return;
        Fail(point);
        string hold = File(point, "hold");
        if (!System.IO.File.Exists(hold)) return;
        MarkReached(point);
        while (System.IO.File.Exists(hold))
        {
            cancellationToken.ThrowIfCancellationRequested();
            Thread.Sleep(50);
        }
    }

    /// <summary>
    /// Writes ".reached" with this process's id, whole or not at all: a test polls for the file and reads the id at once, and
    /// a file created and not yet written would read as empty (written beside it, then renamed over it).
    /// </summary>
    private void MarkReached(string point)
    {
        string reached = File(point, "reached"), written = $"{reached}.{Environment.ProcessId}.tmp";
        System.IO.File.WriteAllText(written, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        System.IO.File.Move(written, reached, overwrite: true);
    }

    /// <summary>Whether the test armed the point to fire now (one of its ".fire" count used up).</summary>
    public bool Fires(string point)
    {
        if (!Enabled) return false;
        string fire = File(point, "fire");
        if (!System.IO.File.Exists(fire)) return false;
        int left = int.TryParse(System.IO.File.ReadAllText(fire).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 1;
        if (left <= 0) return false;
        System.IO.File.WriteAllText(fire, (left - 1).ToString(CultureInfo.InvariantCulture));
        System.IO.File.AppendAllText(File(point, "hits"), "fire\n");
        return true;
    }

    /// <summary>Whether the test switched the point on (its ".on" file exists).</summary>
    public bool IsOn(string point) => Enabled && System.IO.File.Exists(File(point, "on"));

    private void Fail(string point)
    {
        string fail = File(point, "fail");
        if (!System.IO.File.Exists(fail)) return;
        var words = System.IO.File.ReadAllText(fail).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int left = words.Length > 1 && int.TryParse(words[1], out var n) ? n : 1;
        if (left <= 0) return;
        System.IO.File.WriteAllText(fail, $"{words[0]} {left - 1}");
        System.IO.File.AppendAllText(File(point, "hits"), $"{words[0]}\n");
        throw words[0] switch
        {
            "transient" => new TimeoutException($"injected transient fault at {point}"),
            // What .NET throws on Unix when a write finds the disk full: an IOException whose HResult is ENOSPC.
            "diskfull" => new IOException($"injected ENOSPC at {point}", 28),
            // What the Azure SDK throws when the storage account answers that it has no room for the write.
            "storagefull" => new Azure.RequestFailedException(507, $"injected 507 Insufficient Storage at {point}"),
            // What Orleans throws when a reminder's write lost a race on the reminder table ("Please try again later").
            "reminderrace" => new Orleans.Runtime.ReminderException($"injected reminder table race at {point}. Please try again later."),
            _ => new InvalidOperationException($"injected fault at {point}"),
        };
    }

    private string File(string point, string suffix) => Path.Combine(folder!, point.Replace('/', '.') + "." + suffix);
}
