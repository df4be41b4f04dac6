using System.Globalization;
using System.Diagnostics;
using System.Text;
using Grpc.Net.Client;
using OnlineAlign.Cli.Local;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>A real silo host process (dotnet OnlineAlign.Silo.dll) on free loopback ports.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    public int ApiPort { get; }
    /// <summary>The observability port: Prometheus at /metrics, the Orleans dashboard at /dashboard.</summary>
    public int MetricsPort { get; private init; }
    /// <summary>The Orleans silo-to-silo port.</summary>
    public int SiloPort { get; private init; }
    public int ProcessId => _process.Id;
    public string Output { get { lock (_output) return _output.ToString(); } }

    private SiloProcess(Process process, int apiPort)
    {
        _process = process;
        ApiPort = apiPort;
        process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <param name="storageConnectionString">null: the silo starts its own Azurite</param>
    /// <param name="workingDirectory">the process's working folder (null: the test's)</param>
    /// <param name="siloPort">the silo-to-silo port (null: a free one), such as a killed silo's for its replacement</param>
    public static SiloProcess Start(string role, string? storageConnectionString, string clusterId,
        IDictionary<string, string>? environment = null, string? workingDirectory = null, int? siloPort = null)
    {
        var ports = SiloLifecycle.FreePorts(4);
        if (siloPort is { } port) ports[0] = port;
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        info.ArgumentList.Add(RepositoryPaths.SiloDll);
        info.ArgumentList.Add("--role");
        info.ArgumentList.Add(role);
        if (storageConnectionString is null) info.Environment.Remove("ONLINEALIGN_STORAGE");
        else info.Environment["ONLINEALIGN_STORAGE"] = storageConnectionString;
        info.Environment["Silo__ClusterId"] = clusterId;
        info.Environment["Silo__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture);
        info.Environment["Silo__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture);
        info.Environment["Api__Port"] = ports[2].ToString(CultureInfo.InvariantCulture);
        info.Environment["Observability__Port"] = ports[3].ToString(CultureInfo.InvariantCulture);
        info.Environment["Silo__Device"] = "cpu";
        // One thread per silo: several silo processes share the test machine's cores, and a round retried or resumed
        // on another silo must round the same way (see TorchThreads).
        info.Environment["Silo__TorchThreads"] = "1";
        // Tests make their model folders and prompt sets under the temp folder, or use the repository's fixtures.
        info.Environment["Silo__DataRoots__0"] = Path.GetTempPath();
        info.Environment["Silo__DataRoots__1"] = RepositoryPaths.Root;
        // Built-in runs' M0 pretrained once per test run, not once per silo's data folder (a test may name its own).
        info.Environment["Silo__PretrainedCacheFolder"] = RepositoryPaths.PretrainedCache;
        // Faster failure detection than the defaults: a silo started after a crash joins once the dead one's
        // IAmAlive row is 6 s stale (about 23 s in all, against about 107 s with Orleans' defaults; docs/reliability.md).
        info.Environment["Membership__IAmAliveTablePublishTimeout"] = "00:00:03";
        info.Environment["Membership__NumMissedTableIAmAliveLimit"] = "2";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            info.Environment[key] = value;
        return new SiloProcess(Process.Start(info)!, ports[2]) { MetricsPort = ports[3], SiloPort = ports[0] };
    }

    /// <summary>
    /// Starts a silo with <paramref name="start"/> and waits until <paramref name="ready"/>. Its ports
    /// are picked free and released for it to bind, so another process may take one in between; a silo that exited saying
    /// "address already in use" is started again on fresh ports, at most twice more (LocalTestCluster starts its silos through it).
    /// </summary>
    public static async Task<SiloProcess> StartReadyAsync(Func<SiloProcess> start, Func<SiloProcess, Task> ready)
    {
        for (int attempt = 1; ; attempt++)
        {
            var silo = start();
            try
            {
                await ready(silo);
                return silo;
            }
            catch (Exception) when (attempt < 3 && silo.HasExited && silo.Output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await silo.DisposeAsync();
            }
            catch
            {
                await silo.DisposeAsync();
                throw;
            }
        }
    }

    /// <summary>Waits until the silo has logged the text (the timeout only bounds a test that went wrong).</summary>
    public Task WaitForOutputAsync(string text, TimeSpan timeout) => WaitForAnyOutputAsync(timeout, text);

    /// <summary>Waits until the silo has logged one of the texts (outcomes a race may choose between); returns the one it logged.</summary>
    public async Task<string> WaitForAnyOutputAsync(TimeSpan timeout, params string[] texts)
    {
        var deadline = DateTime.UtcNow + timeout;
        string said = string.Join("' or '", texts);
        while (true)
        {
            string output = Output;
            if (texts.FirstOrDefault(t => output.Contains(t, StringComparison.Ordinal)) is { } text) return text;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the silo did not log '{said}' within {timeout}; output:\n{output}");
            if (_process.HasExited) throw new InvalidOperationException($"the silo exited before logging '{said}'; output:\n{output}");
            await Task.Delay(100);
        }
    }

    public GrpcChannel OpenChannel() => GrpcChannel.ForAddress($"http://127.0.0.1:{ApiPort}");

    /// <summary>Polls the standard health service until it answers SERVING.</summary>
    public Task WaitUntilServingAsync(TimeSpan timeout) =>
        SiloLifecycle.WaitUntilServingAsync(_process, $"http://127.0.0.1:{ApiPort}", timeout, () => $"output:\n{Output}");

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Waits for the process to end by itself (the timeout only bounds a test that went wrong).</summary>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        await Task.Delay(100); // the last output lines arrive on their own threads
    }

    /// <summary>Starts the peak (VmHWM) over from the current resident memory (Linux: clear_refs 5), so a test measures its own peak.</summary>
    public void ResetPeakMemory() => File.WriteAllText($"/proc/{ProcessId}/clear_refs", "5");

    /// <summary>The process's peak resident memory in bytes (VmHWM), while it runs.</summary>
    public long PeakMemoryBytes()
    {
        var line = File.ReadLines($"/proc/{ProcessId}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    public void Kill() { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }

    /// <summary>
    /// A graceful stop (SIGTERM): the silo leaves the cluster membership, so a new one can join at once. It must end by itself,
    /// within the timeout and with exit code 0 (a non-zero code fails a supervisor's restart policy, and an exception
    /// thrown while the host shuts down is one).
    /// </summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        await SiloLifecycle.StopAsync(_process, timeout);
        await WaitForExitAsync(TimeSpan.FromSeconds(5));   // ended already: this waits for its last output lines
        if (_process.ExitCode != 0)
            throw new InvalidOperationException($"the silo stopped by SIGTERM exited with code {_process.ExitCode}; its output's end:\n{Output[^Math.Min(Output.Length, 8000)..]}");
    }

    /// <summary>Kills the silo; disposing again does nothing (a silo that failed to start is disposed there and by its cluster).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }

    private bool _disposed;
}
