using OnlineAlign.Api.V1;
using OnlineAlign.Storage;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>Azurite plus silo processes for one test, torn down at the end.</summary>
public sealed class LocalTestCluster : IAsyncDisposable
{
    public required AzuriteProcess Azurite { get; set; }
    public required string ClusterId { get; init; }
    public List<SiloProcess> Silos { get; } = new();
    /// <summary>Named fault points shared by every silo of this cluster.</summary>
    public FaultControl Faults { get; } = new(RepositoryPaths.NewTempFolder("faults"));

    public static Task<LocalTestCluster> StartAsync(params (string Role, IDictionary<string, string>? Env)[] silos) =>
        StartAsync(_ => { }, silos);

    /// <summary>Starts the silos once <paramref name="arm"/> has set the cluster's fault points (a fault present from each silo's start).</summary>
    public static async Task<LocalTestCluster> StartAsync(Action<FaultControl> arm, params (string Role, IDictionary<string, string>? Env)[] silos)
    {
        var azurite = await AzuriteProcess.StartAsync(RepositoryPaths.NewTempFolder("azurite"));
        var cluster = new LocalTestCluster { Azurite = azurite, ClusterId = "test-" + Guid.NewGuid().ToString("N")[..8] };
        try
        {
            arm(cluster.Faults);
            // The silos start side by side (Silos keeps the order asked for; a test starts once all serve): much of a silo's
            // start is waiting (process start, Orleans joining the membership table), so one after another a 3-silo cluster
            // took about 1.5x as long to start (docs/development.md).
            await Task.WhenAll(silos.Select(s => cluster.StartServingAsync(s.Role, s.Env, TimeSpan.FromMinutes(2))).ToList());
            // Tests start once every silo sees every GPU silo. With two GPU silos or more, a run placed while one's metadata
            // is still on its way would get its replicas on the others (and keep them there). With one, beside a control
            // silo, the run would wait as waiting_for_gpu until the control silo has it (SiloMetadataView).
            int gpus = silos.Count(s => s.Role is "gpu" or "all");
            if (gpus >= 1 && silos.Length >= 2) await cluster.WaitUntilEverySiloSeesGpuSilosAsync(gpus);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until every silo of the cluster reports <paramref name="count"/> GPU silos (see SiloLifecycle).</summary>
    public Task WaitUntilEverySiloSeesGpuSilosAsync(int count) =>
        OnlineAlign.Cli.Local.SiloLifecycle.WaitUntilEverySiloSeesGpuSilosAsync(Silos.Where(s => !s.HasExited).Select(s => s.MetricsPort), count,
            TimeSpan.FromMinutes(2));

    /// <summary>
    /// One silo (role "all") that needs <paramref name="apiKey"/>; <paramref name="offLoopback"/>: its API and observability ports
    /// listen on every address (so the key is required even from loopback clients: the exposed case), with more settings after.
    /// </summary>
    public static Task<LocalTestCluster> StartKeyedAsync(string apiKey, bool offLoopback, params (string Name, string Value)[] settings)
    {
        var environment = new Dictionary<string, string> { ["ONLINEALIGN_API_KEY"] = apiKey };
        if (offLoopback) environment["Api__ListenAddress"] = environment["Observability__ListenAddress"] = "0.0.0.0";
        foreach (var (name, value) in settings) environment[name] = value;
        return StartAsync(("all", environment));
    }

    /// <summary>Starts a silo and waits until it serves. A silo joining after a crash waits for the dead one
    /// to be voted out of the membership table first, which takes a while.</summary>
    public Task<SiloProcess> AddSiloAsync(string role, IDictionary<string, string>? env = null, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        return StartServingAsync(role, env, timeout ?? TimeSpan.FromMinutes(2), workingDirectory);
    }

    /// <summary>
    /// Starts a fresh silo (its own data folder and API ports) in place of the killed <c>Silos[killed]</c>, on the killed one's
    /// silo-to-silo port, and waits until it serves (added to <see cref="Silos"/> like <see cref="AddSiloAsync"/>). Joining on
    /// that endpoint, Orleans declares the dead silo's older generation dead at once (MembershipTableManager's cleanup of its
    /// own endpoint) instead of waiting for its IAmAlive row to go stale: a replacement serves after about 4 to 8 s instead
    /// of about 25 s (docs/development.md). Either way it serves only once the dead silo is voted out, so the run it resumes
    /// sees the same cluster; a replacement on a new address is still what <see cref="AddSiloAsync"/> starts.
    /// <para>Where other silos live, it starts once each of them counts the dead silo out (onlinealign_cluster_silos): a peer
    /// still dialling the dead generation can reach the replacement on its endpoint, and Orleans files that connection under
    /// both generations and closes it 10 s after the vote, losing what was on it (the likely cause of a call unanswered for
    /// 30 s seen once in CI, docs/reliability.md). A lone silo's replacement has no such peer, and no voter to wait for.</para>
    /// </summary>
    public async Task<SiloProcess> ReplaceKilledSiloAsync(int killed, string role, IDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var dead = Silos[killed];
        await dead.WaitForExitAsync(TimeSpan.FromMinutes(1)); // its listening port is free once the process is gone
        var live = Silos.Where(s => !s.HasExited).ToList();
        if (live.Count > 0)
            await OnlineAlign.Cli.Local.SiloLifecycle.WaitUntilEverySiloSeesSilosAsync(live.Select(s => s.MetricsPort), live.Count, TimeSpan.FromMinutes(2));
        return await StartServingAsync(role, env, timeout ?? TimeSpan.FromMinutes(2), siloPort: dead.SiloPort);
    }

    /// <summary>
    /// Starts a silo of this cluster and waits until it serves. Its ports are picked free, then released for the silo to bind:
    /// another process (any outgoing connection takes an ephemeral port) may take one in between, and the silo then exits
    /// ("address already in use"); such a silo is started again on fresh ports, in its place in <see cref="Silos"/>, at most
    /// twice more. Any other failure to serve is the test's.
    /// </summary>
    private Task<SiloProcess> StartServingAsync(string role, IDictionary<string, string>? env, TimeSpan timeout,
        string? workingDirectory = null, int? siloPort = null)
    {
        SiloProcess? previous = null;
        return SiloProcess.StartReadyAsync(() => previous = StartSilo(role, env, workingDirectory, siloPort, replacing: previous),
            silo => silo.WaitUntilServingAsync(timeout));
    }

    /// <summary>
    /// Settings for a cluster whose silos must vote a killed silo dead themselves (a live silo notices the kill, not a
    /// replacement): the silos probe each other every second (Orleans' probe period is half ProbeTimeout) instead of every
    /// 2.5 s, with 3 missed probes and 2 votes as before, so a killed silo is declared dead about 3 s after the kill instead
    /// of about 6 s. Only the detection is faster: what moves, and what a test asserts, is the same.
    /// </summary>
    public static Dictionary<string, string> FastProbes() => new(StringComparer.Ordinal) { ["Membership__ProbeTimeout"] = "00:00:02" };

    /// <summary>Settings for GPU silos whose replicas never let their models go between rounds (their idle release would drop kept copies).</summary>
    public static Dictionary<string, string> ReplicasNeverIdle() => new(StringComparer.Ordinal) { ["Silo__ReplicaIdleSeconds"] = "86400" };

    /// <summary>Starts a silo process of this cluster (added to <see cref="Silos"/>) without waiting for it to serve.</summary>
    /// <param name="siloPort">the silo-to-silo port (null: a free one)</param>
    /// <param name="replacing">a silo that could not start, whose place in <see cref="Silos"/> the new one takes</param>
    private SiloProcess StartSilo(string role, IDictionary<string, string>? env, string? workingDirectory = null, int? siloPort = null,
        SiloProcess? replacing = null)
    {
        var environment = new Dictionary<string, string>(env ?? new Dictionary<string, string>())
        {
            ["Silo__DataFolder"] = RepositoryPaths.NewTempFolder("silo-data"),
            ["Silo__FaultFolder"] = Faults.Folder,
        };
        foreach (var (key, value) in env ?? new Dictionary<string, string>()) environment[key] = value; // a test may name its own data folder
        var silo = SiloProcess.Start(role, Azurite.ConnectionString, ClusterId, environment, workingDirectory, siloPort);
        lock (Silos) // silos start side by side, so a retried one is put in its place while others may be starting
        {
            if (replacing is not null && Silos.IndexOf(replacing) is int index and >= 0) Silos[index] = silo;
            else Silos.Add(silo);
        }
        return silo;
    }

    /// <summary>Stops Azurite (SIGTERM); <see cref="StartStorageAgainAsync"/> brings it back on the same ports and data.</summary>
    public async Task StopStorageAsync() => await Azurite.DisposeAsync();

    public async Task StartStorageAgainAsync() =>
        Azurite = await AzuriteProcess.StartAsync(Azurite.DataFolder, (Azurite.BlobPort, Azurite.QueuePort, Azurite.TablePort));

    public Runs.RunsClient Client(int silo = 0, string? apiKey = null) =>
        OnlineAlign.Cli.Client.ApiConnection.Client($"http://127.0.0.1:{Silos[silo].ApiPort}", apiKey);

    /// <summary>A small, fast run spec: tiny model, short warm start, few prompts.</summary>
    public static RunSpec SmallSpec(int rounds = 2) => new()
    {
        Name = "test", Rounds = rounds, PromptsPerRound = 48, SamplesPerPrompt = 4, SftSteps = 60, Seed = 7, Device = "cpu",
        Prompts = new PromptSpec { Task = "sort", EvalPrompts = 32 },
        Sampling = new SamplingSpec { MaxNewTokens = 8 },
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var silo in Silos) await silo.DisposeAsync();
        await Azurite.DisposeAsync();
        KeepSiloLogs();
    }

    /// <summary>
    /// With ONLINEALIGN_TEST_LOGS set to a folder, every silo's whole output is written there on disposal
    /// (cluster-silo-N.log), so that a run that hung in CI can be read afterwards rather than guessed at.
    /// </summary>
    private void KeepSiloLogs()
    {
        string? folder = Environment.GetEnvironmentVariable("ONLINEALIGN_TEST_LOGS");
        if (string.IsNullOrEmpty(folder)) return;
        Directory.CreateDirectory(folder);
        for (int i = 0; i < Silos.Count; i++) File.WriteAllText(Path.Combine(folder, $"{ClusterId}-silo-{i}.log"), Silos[i].Output);
    }
}
