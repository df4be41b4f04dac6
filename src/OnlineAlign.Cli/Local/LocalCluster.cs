using System.Globalization;
using System.Diagnostics;
using System.Reflection;
using OnlineAlign.Storage;

namespace OnlineAlign.Cli.Local;

/// <summary>
/// A one-machine cluster for the main job: Azurite (unless a connection string is configured) and one
/// `all` silo as child processes on loopback. Dispose stops both, silo first.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly AzuriteProcess? _azurite;
    private readonly Process _silo;
    private readonly Action<string> _log;
    private readonly string _siloLog;
    /// <summary>The silo came up (one that did not is reported by the start's own error).</summary>
    private bool _served;
    public string ApiAddress { get; }
    /// <summary>Prometheus scrape address (http://127.0.0.1:PORT/metrics); the Orleans dashboard is at /dashboard on the same port.</summary>
    public string MetricsAddress { get; private init; } = "";
    public int SiloProcessId => _silo.Id;
    /// <summary>Completes when the silo process ends.</summary>
    public Task SiloExited => _silo.WaitForExitAsync();

    private LocalCluster(AzuriteProcess? azurite, Process silo, string apiAddress, Action<string> log, string siloLog)
    {
        _azurite = azurite;
        _silo = silo;
        ApiAddress = apiAddress;
        (_log, _siloLog) = (log, siloLog);
    }

    /// <param name="apiPort">the gRPC API's port on loopback (null: a free port)</param>
    public static async Task<LocalCluster> StartAsync(string dataFolder, Action<string> log, CancellationToken cancellationToken, int? apiPort = null)
    {
        string? connection = Environment.GetEnvironmentVariable("ONLINEALIGN_STORAGE");
        AzuriteProcess? azurite = null;
        if (string.IsNullOrWhiteSpace(connection))
        {
            azurite = await AzuriteProcess.StartAsync(Path.Combine(dataFolder, "azurite"), cancellationToken: cancellationToken);
            connection = azurite.ConnectionString;
            log($"Azurite listening on 127.0.0.1:{azurite.BlobPort} (blob), data in {azurite.DataFolder}");
        }
        else
        {
            log("Using the configured storage (ONLINEALIGN_STORAGE)");
        }

        var ports = SiloLifecycle.FreePorts(4);
        // The observability port: the usual Prometheus exporter port when it is free (README's scrape config uses it).
        int metricsPort = SiloLifecycle.IsFree(DefaultMetricsPort) ? DefaultMetricsPort : ports[3];
        int siloPort = ports[1], gatewayPort = ports[2];
        apiPort ??= ports[0];
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(SiloDll());
        info.ArgumentList.Add("--role");
        info.ArgumentList.Add("all");
        info.Environment["ONLINEALIGN_STORAGE"] = connection;
        info.Environment["Api__Port"] = apiPort.Value.ToString(CultureInfo.InvariantCulture);
        info.Environment["Observability__Port"] = metricsPort.ToString(CultureInfo.InvariantCulture);
        info.Environment["Silo__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture);
        info.Environment["Silo__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture);
        info.Environment["Silo__DataFolder"] = dataFolder;
        // Spec files (model folders, prompt sets) are read from the data folder and the folder the cluster was
        // started in; ONLINEALIGN_DATA_ROOTS, inherited, adds others.
        info.Environment["Silo__DataRoots__0"] = dataFolder;
        info.Environment["Silo__DataRoots__1"] = Directory.GetCurrentDirectory();
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        info.Environment["Logging__LogLevel__OnlineAlign"] = "Information";   // what the runs do, in silo.log
        // The silo stops itself if this process dies without stopping it (killed, terminal closed).
        info.Environment["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var silo = Process.Start(info)!;
        var siloLog = Path.Combine(dataFolder, "silo.log");
        var writer = new StreamWriter(siloLog, append: true) { AutoFlush = true };
        silo.OutputDataReceived += (_, e) => { if (e.Data != null) lock (writer) writer.WriteLine(e.Data); };
        silo.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (writer) writer.WriteLine(e.Data); };
        silo.BeginOutputReadLine();
        silo.BeginErrorReadLine();
        log($"Silo starting (pid {silo.Id}), log in {siloLog}");

        var cluster = new LocalCluster(azurite, silo, $"http://127.0.0.1:{apiPort}", log, siloLog) { MetricsAddress = $"http://127.0.0.1:{metricsPort}" };
        try
        {
            await SiloLifecycle.WaitUntilServingAsync(silo, cluster.ApiAddress, TimeSpan.FromMinutes(2), () => $"see its log, {siloLog}", cancellationToken);
            cluster._served = true;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    public const int DefaultMetricsPort = 9464;

    /// <summary>
    /// Stops the silo (which bounds its own shutdown to a few seconds, storage reachable or not), then Azurite.
    /// After Ctrl-C both already got SIGINT from the terminal; this makes sure they are gone.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await SiloLifecycle.StopAsync(_silo, TimeSpan.FromSeconds(9));
        // Said, not hidden in silo.log: a silo that failed (while stopping too) or had to be killed is a fault worth reporting.
        if (_served && _silo.HasExited && _silo.ExitCode != 0)
            _log($"The silo exited with code {_silo.ExitCode}; see its log, {_siloLog}. Runs stay resumable.");
        _silo.Dispose();
        if (_azurite != null) await _azurite.DisposeAsync();
    }

    /// <summary>Ends the silo and Azurite at once, without a graceful stop (a second Ctrl-C). Runs stay resumable.</summary>
    public void Kill()
    {
        try { _silo.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _azurite?.Kill();
    }

    /// <summary>The silo host built beside this CLI (same configuration), or ONLINEALIGN_SILO_DLL.</summary>
    public static string SiloDll()
    {
        var configured = Environment.GetEnvironmentVariable("ONLINEALIGN_SILO_DLL");
        if (!string.IsNullOrEmpty(configured)) return configured;
        string configuration = typeof(LocalCluster).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "Configuration")?.Value ?? "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "OnlineAlign.Silo", "bin", configuration, "net10.0", "OnlineAlign.Silo.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("OnlineAlign.Silo.dll not found: build the solution, or set ONLINEALIGN_SILO_DLL");
    }
}
