using System.Globalization;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace OnlineAlign.Storage;

/// <summary>
/// A local Azurite (Azure Storage emulator) child process on loopback, with telemetry off, on ports the
/// OS picks unless given. Dispose stops it. Used when no Azure Storage connection string is configured.
/// </summary>
public sealed partial class AzuriteProcess : IAsyncDisposable
{
    private readonly Process _process;

    public int BlobPort { get; }
    public int QueuePort { get; }
    public int TablePort { get; }
    public string DataFolder { get; }
    public int ProcessId => _process.Id;

    /// <summary>The devstoreaccount1 connection string for this instance's ports.</summary>
    public string ConnectionString => StorageConnection.ForAzurite(BlobPort, QueuePort, TablePort);

    private AzuriteProcess(Process process, string dataFolder, int blob, int queue, int table)
    {
        _process = process;
        DataFolder = dataFolder;
        BlobPort = blob;
        QueuePort = queue;
        TablePort = table;
    }

    [GeneratedRegex(@"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();

    /// <summary>Starts Azurite and returns once all three services listen.</summary>
    /// <param name="dataFolder">Where Azurite keeps its data (created if missing); reuse it to keep data across restarts.</param>
    /// <param name="ports">Fixed ports (blob, queue, table), or null for free ones.</param>
    public static async Task<AzuriteProcess> StartAsync(string dataFolder, (int Blob, int Queue, int Table)? ports = null,
        string? azuriteExecutable = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        string executable = azuriteExecutable ?? FindExecutable()
            ?? throw new FileNotFoundException(
                "Azurite was not found: run `npm ci` in the repository root (it installs node_modules/.bin/azurite), " +
                "or set ONLINEALIGN_AZURITE to its path, or configure an Azure Storage connection string.");
        Directory.CreateDirectory(dataFolder);
        var (blob, queue, table) = ports ?? (0, 0, 0);
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Azurite runs on Node: a preloaded watchdog stops it when this process is gone, even after kill -9.
        string watchdog = Path.Combine(dataFolder, "parent-watchdog.js");
        await File.WriteAllTextAsync(watchdog, ParentWatchdog, cancellationToken);
        info.Environment["NODE_OPTIONS"] = $"--require \"{watchdog}\"";
        info.Environment["ONLINEALIGN_PARENT_PID"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        // No --debug log: it grows without bound. Startup output is kept (bounded) for error messages.
        foreach (var arg in new[]
        {
            "--location", dataFolder,
            "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
            "--blobPort", blob.ToString(CultureInfo.InvariantCulture), "--queuePort", queue.ToString(CultureInfo.InvariantCulture), "--tablePort",
                table.ToString(CultureInfo.InvariantCulture),
            "--disableTelemetry", "--skipApiVersionCheck", "--loose",
        })
            info.ArgumentList.Add(arg);

        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {executable}");
        var found = new Dictionary<string, int>();
        var allListening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Text.StringBuilder();
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (found)
            {
                if (output.Length < MaxOutputCharacters) output.AppendLine(line);
                var match = ListeningLine().Match(line);
                if (match.Success) found[match.Groups[1].Value] = int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
                if (found.Count == 3) allListening.TrySetResult();
            }
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var exited = process.WaitForExitAsync(cancellationToken);
        var wait = Task.Delay(timeout ?? TimeSpan.FromSeconds(60), cancellationToken);
        var first = await Task.WhenAny(allListening.Task, exited, wait);
        if (first != allListening.Task)
        {
            string why = first == exited ? $"exited with code {SafeExitCode(process)}" : "did not report listening in time";
            TryKill(process);
            throw new InvalidOperationException($"Azurite {why}. Its output:\n{output}");
        }
        return new AzuriteProcess(process, dataFolder, found["Blob"], found["Queue"], found["Table"]);
    }

    private const int MaxOutputCharacters = 64 * 1024;

    /// <summary>
    /// Preloaded into Azurite's Node process: once its parent is gone (its parent pid changes), it asks Azurite
    /// to stop as on SIGTERM (which saves its data), and exits anyway 10 s later.
    /// </summary>
    private const string ParentWatchdog = """
        const parent = Number(process.env.ONLINEALIGN_PARENT_PID || 0);
        if (parent > 0 && process.ppid === parent) {
          const timer = setInterval(() => {
            if (process.ppid === parent) return;
            clearInterval(timer);
            process.kill(process.pid, 'SIGTERM');
            setTimeout(() => process.exit(0), 10000).unref();
          }, 500);
          timer.unref();
        }
        """;

    /// <summary>node_modules/.bin/azurite in this folder or a parent, or ONLINEALIGN_AZURITE.</summary>
    public static string? FindExecutable(string? startFolder = null)
    {
        var configured = Environment.GetEnvironmentVariable("ONLINEALIGN_AZURITE");
        if (!string.IsNullOrEmpty(configured)) return configured;
        foreach (var start in new[] { startFolder, Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = start is null ? null : new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "node_modules", ".bin", "azurite");
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    /// <summary>Stops Azurite (SIGTERM, then kill after a grace period).</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                // SIGTERM lets Azurite flush its data folder; Process.Kill would send SIGKILL.
                if (OperatingSystem.IsWindows()) _process.Kill(entireProcessTree: true);
                else Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit();
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                TryKill(_process);
            }
        }
        _process.Dispose();
    }

    /// <summary>Ends Azurite at once (a user's second Ctrl-C): no flush.</summary>
    public void Kill() => TryKill(_process);

    private static void TryKill(Process process)
    {
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    private static string SafeExitCode(Process process)
    {
        try { return process.ExitCode.ToString(CultureInfo.InvariantCulture); } catch (InvalidOperationException) { return "?"; }
    }
}
