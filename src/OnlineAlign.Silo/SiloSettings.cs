namespace OnlineAlign.Silo;

/// <summary>The "Silo" section of a role file under silos/ (overridable by environment and command line).</summary>
public sealed class SiloSettings
{
    public string Role { get; set; } = "all";
    /// <summary>Published as silo metadata; model grains are placed only where this is "gpu".</summary>
    public string Accelerator { get; set; } = "gpu";
    public string Device { get; set; } = "auto";
    public string ClusterId { get; set; } = "onlinealign-local";
    public string ServiceId { get; set; } = "onlinealign";
    public string ListenAddress { get; set; } = "127.0.0.1";
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;
    /// <summary>Running in a Kubernetes pod (Orleans' Kubernetes hosting: pod name, IP and labels; see deploy/kubernetes).</summary>
    public bool Kubernetes { get; set; }
    /// <summary>Caps checkpoint upload bandwidth in MB/s (0: no cap), for machines that share a link.</summary>
    public double MaxUploadMegabytesPerSecond { get; set; }
    /// <summary>Where a silo keeps the Azurite it starts when no connection string is configured.</summary>
    public string DataFolder { get; set; } = ".onlinealign";
    /// <summary>
    /// The folders under which this silo reads files a run spec names (model.hf_folder, prompts.jsonl_path,
    /// judge.reward_model_folder); anything else is refused. Unset: the data folder. ONLINEALIGN_DATA_ROOTS adds more.
    /// </summary>
    public string[]? DataRoots { get; set; }
    /// <summary>
    /// Where built-in runs' pretrained M0 models are kept between phases (written whole, checked on every read). Unset:
    /// cache/m0 under the data folder, shared by the silos that share it. Never a shared temp folder.
    /// </summary>
    public string? PretrainedCacheFolder { get; set; }
    /// <summary>
    /// Seconds a stop (SIGTERM, SIGINT, or the parent gone) may take before the process exits anyway. A silo
    /// whose storage went away at the same moment (Ctrl-C in a terminal stops Azurite too) would otherwise wait
    /// on retries; exiting is safe because a run resumes from its last committed state.
    /// </summary>
    public double ShutdownSeconds { get; set; } = 6;
    /// <summary>
    /// The process that started this silo (the CLI's local cluster): when it is gone the silo stops, so a silo is
    /// never left running after its terminal closed or its parent was killed. 0: not watched.
    /// </summary>
    public int ParentProcessId { get; set; }
    /// <summary>Phases that compute on this silo's device at once (each holds its models' activations); more wait their turn.</summary>
    public int MaxConcurrentComputations { get; set; } = 2;
    /// <summary>
    /// CPU threads torch's kernels use in this silo (0: torch's default, the machine's cores). Pinned at start: a
    /// round trained with another count rounds differently, so silos that may resume each other's rounds use one count.
    /// </summary>
    public int TorchThreads { get; set; }
    /// <summary>The device memory a run's memory plan must fit, in bytes; 0: measured (the machine's memory, or nvidia-smi's total for a GPU).</summary>
    public long DeviceMemoryBytes { get; set; }
    /// <summary>The host memory a run's host plan (and the runs here together) must fit, in bytes; 0: measured (the memory this process may use).</summary>
    public long HostMemoryBytes { get; set; }
    /// <summary>
    /// Seconds a run's extra replica (not its own worker, which trains) may sit idle between rounds before it lets its
    /// models go (device memory freed; the next round loads them again from the checkpoint cache); 0: kept while the run drives.
    /// </summary>
    public double ReplicaIdleSeconds { get; set; } = 600;
    /// <summary>Committed rounds this silo keeps loaded at once for the OpenAI-compatible API (/v1); a request for another gets 503.</summary>
    public int MaxServedModels { get; set; } = 2;
    /// <summary>Seconds a served round stays loaded without requests before it lets its model go.</summary>
    public double ServeIdleSeconds { get; set; } = 300;
    /// <summary>
    /// Whether the run's worker keeps the model it trained in memory, as the checkpoint it wrote (matched by hash), for
    /// the evaluate phase and the next round, instead of reading that checkpoint back (full fine-tuning). false: read back.
    /// </summary>
    public bool KeepTrainedModel { get; set; } = true;
    /// <summary>
    /// Whether the train phase returns once its checkpoint is written locally and hashed, its upload going on behind the
    /// evaluate phase (the round commits only once the upload is durable). false: the train phase returns after the upload.
    /// </summary>
    public bool OverlapCheckpointUpload { get; set; } = true;
    /// <summary>
    /// Whether the next round's generation starts on the trainer while a round's checkpoint still uploads (with
    /// OverlapCheckpointUpload); the round still commits only once its checkpoint is durable. false: it starts after the commit.
    /// </summary>
    public bool OverlapNextGeneration { get; set; } = true;
    /// <summary>
    /// Whether the other replicas of a round copy its trained checkpoint from the replica that trained it (with
    /// OverlapCheckpointUpload), verified file by file, for their evaluation shards; false: they wait for the upload and read
    /// it from storage. Read on the silo that runs the round.
    /// </summary>
    public bool CopyTrainedCheckpoint { get; set; } = true;
    /// <summary>The checkpoint cache's size on this silo in GiB: past it, the least recently used checkpoints not in use are deleted (0: unbounded).</summary>
    public double CheckpointCacheGigabytes { get; set; } = OnlineAlign.Grains.Workers.WorkerSettings.DefaultCheckpointCacheBytes / (double)(1L << 30);
    /// <summary>Tests only: a folder through which a test holds or fails a phase at named points (FaultPoints). Unset: off.</summary>
    public string? FaultFolder { get; set; }
}

/// <summary>The "Api" section: the gRPC endpoint.</summary>
public sealed class ApiSettings
{
    public string ListenAddress { get; set; } = "127.0.0.1";
    /// <summary>0 disables the gRPC endpoint on this silo.</summary>
    public int Port { get; set; } = 5080;
    /// <summary>
    /// When set, every call but health needs "authorization: Bearer &lt;key&gt;". From ONLINEALIGN_API_KEY. Required
    /// (at least 32 characters) when ListenAddress is not loopback: the silo refuses to start otherwise.
    /// </summary>
    public string? ApiKey { get; set; }
    /// <summary>TLS for the API: a PEM certificate (with CertificateKeyPath) or a PKCS#12 file (with CertificatePassword). Unset: plain HTTP/2.</summary>
    public string? CertificatePath { get; set; }
    public string? CertificateKeyPath { get; set; }
    public string? CertificatePassword { get; set; }
    /// <summary>The largest request message the API accepts; a larger one is answered RESOURCE_EXHAUSTED before it is read.</summary>
    public int MaxRequestBytes { get; set; } = 1 << 20;
    /// <summary>WatchRun streams this silo holds open for one run; one more is answered RESOURCE_EXHAUSTED.</summary>
    public int MaxWatchStreamsPerRun { get; set; } = 64;
    /// <summary>WatchRun streams this silo holds open for one client address, over all runs.</summary>
    public int MaxWatchStreamsPerClient { get; set; } = 16;
}

/// <summary>
/// The "Observability" section: an HTTP/1.1 port beside the gRPC API for Prometheus (/metrics) and, on silos that
/// orchestrate, the Orleans dashboard (/dashboard); OTLP export of metrics and traces when an endpoint is set.
/// </summary>
public sealed class ObservabilitySettings
{
    public string ListenAddress { get; set; } = "127.0.0.1";
    /// <summary>0 disables the port (no /metrics, no dashboard).</summary>
    public int Port { get; set; } = 9464;
    /// <summary>The Orleans dashboard at /dashboard; only served while ListenAddress is loopback (reach a remote one through an SSH tunnel).</summary>
    public bool Dashboard { get; set; } = true;
    /// <summary>An OTLP collector (e.g. http://127.0.0.1:4317) for metrics and traces; unset: no OTLP export. OTEL_EXPORTER_OTLP_* also apply.</summary>
    public string? OtlpEndpoint { get; set; }
}
