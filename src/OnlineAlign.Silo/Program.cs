using OnlineAlign.Specs;
using System.Net;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Grains.Runtime;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Orleans.Dashboard;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Execution.Files;
using OnlineAlign.Silo;
using OnlineAlign.Silo.Api;
using OnlineAlign.Storage;
using Orleans.Configuration;
using Orleans.Placement;
using Orleans.Runtime.MembershipService.SiloMetadata;

// One host program for every silo role: Orleans and the gRPC API co-hosted in ASP.NET Core.
var role = RoleArgument(args) ?? Environment.GetEnvironmentVariable("Silo__Role") ?? "all";
var builder = WebApplication.CreateBuilder(args);
// The role file is the lowest layer: environment and command line override it.
string rolesFolder = Path.Combine(AppContext.BaseDirectory, "silos");
if (!File.Exists(Path.Combine(rolesFolder, role + ".json")))
    throw new ArgumentException($"--role '{role}': no such role file {Path.Combine(rolesFolder, role + ".json")} (roles: all, control, gpu)");
builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource
{
    FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(rolesFolder),
    Path = role + ".json",
    Optional = false,
});
var silo = builder.Configuration.GetSection("Silo").Get<SiloSettings>() ?? new SiloSettings();
var api = builder.Configuration.GetSection("Api").Get<ApiSettings>() ?? new ApiSettings();
var observability = builder.Configuration.GetSection("Observability").Get<ObservabilitySettings>() ?? new ObservabilitySettings();
api.ApiKey ??= Environment.GetEnvironmentVariable("ONLINEALIGN_API_KEY");
var clusterTls = builder.Configuration.GetSection("ClusterTls").Get<ClusterTlsSettings>() ?? new ClusterTlsSettings();
if ((ApiExposure.Problem(api) ?? ApiExposure.Problem(observability, api) ?? ClusterTls.Problem(silo, clusterTls)) is { } unsafeApi)
{
    Console.Error.WriteLine($"error: refusing to start: {unsafeApi}");
    return 2;
}
var limits = builder.Configuration.GetSection("Limits").Get<SpecLimits>() ?? SpecLimits.Default;
var certificate = ApiExposure.Certificate(api);

// Storage: a configured connection string (a real account or a shared Azurite), else our own Azurite.
string? connectionString = Environment.GetEnvironmentVariable("ONLINEALIGN_STORAGE");
AzuriteProcess? azurite = null;
if (string.IsNullOrWhiteSpace(connectionString))
{
    azurite = await AzuriteProcess.StartAsync(Path.GetFullPath(Path.Combine(silo.DataFolder, "azurite")));
    connectionString = azurite.ConnectionString;
    Console.WriteLine($"Started Azurite (pid {azurite.ProcessId}) with data under {azurite.DataFolder}");
}

// The dashboard's UI is served only on loopback (its pages have no authentication of their own).
bool serveDashboard = observability.Port > 0 && observability.Dashboard && IPAddress.IsLoopback(IPAddress.Parse(observability.ListenAddress));
builder.WebHost.ConfigureKestrel(kestrel =>
{
    if (api.Port > 0)
        kestrel.Listen(IPAddress.Parse(api.ListenAddress), api.Port, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            if (certificate is not null) o.UseHttps(certificate);
        });
    // Prometheus and browsers speak HTTP/1.1: metrics and the dashboard get their own port.
    if (observability.Port > 0)
        kestrel.Listen(IPAddress.Parse(observability.ListenAddress), observability.Port, o => o.Protocols = HttpProtocols.Http1);
});

// Before any tensor work: every round computed here splits its kernels over the same number of threads.
int torchThreads = OnlineAlign.Modeling.TorchThreads.Pin(silo.TorchThreads);
// Published with the GPU tag: placement by load puts runs where the most device memory is left (0: not measurable).
long deviceMemory = silo.Accelerator != "gpu" ? 0 : silo.DeviceMemoryBytes > 0 ? silo.DeviceMemoryBytes : MeasuredDeviceMemory(silo.Device);

builder.UseOrleans(orleans =>
{
    if (silo.Kubernetes)
    {
        // In a pod: name, advertised IP, cluster and service ids come from the pod (deploy/kubernetes), and
        // silos whose pods are gone are declared dead at once instead of after missed probes.
        orleans.Configure<EndpointOptions>(o => { o.SiloPort = silo.SiloPort; o.GatewayPort = silo.GatewayPort; });
        // Its role may read pods, never delete them (deploy/kubernetes/rbac.yaml): a silo that dies is voted out, not its pod removed.
        orleans.UseKubernetesHosting(options => options.Configure(k => k.DeleteDefunctSiloPods = false));
    }
    else
    {
        orleans.Configure<ClusterOptions>(o => { o.ClusterId = silo.ClusterId; o.ServiceId = silo.ServiceId; });
        orleans.ConfigureEndpoints(IPAddress.Parse(silo.ListenAddress), silo.SiloPort, silo.GatewayPort, listenOnAnyHostAddress: false);
    }
    orleans.UseClusterTls(clusterTls);
    // Failure detection (how fast a dead silo is voted out, and so how fast its replacement joins): Orleans'
    // ClusterMembershipOptions, from the "Membership" section of the role file or the environment.
    orleans.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection("Membership"));
    orleans.UseAzureStorageClustering(o => o.TableServiceClient = new TableServiceClient(connectionString));
    orleans.UseAzureTableReminderService(o => o.TableServiceClient = new TableServiceClient(connectionString));
    orleans.AddAzureBlobGrainStorage("runs", o => o.BlobServiceClient = new BlobServiceClient(connectionString));
    orleans.Services.Configure<Orleans.Serialization.OrleansJsonSerializerOptions>(RunStateJson.Configure);
    var metadata = new Dictionary<string, string>
    {
        [ControlSiloPlacementFilterDirector.RoleKey] = silo.Role,
        [GpuSiloPlacementFilterDirector.MetadataKey] = silo.Accelerator,
        [GpuSilos.DeviceMemoryKey] = deviceMemory.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
    orleans.UseSiloMetadata(metadata);
    // Placement reads silos' metadata through SiloMetadataView: Orleans' cache, filled in by asking a silo directly where that
    // cache has none (after a failed fetch Orleans may not try again while the membership stays the same).
    orleans.Services.AddSingleton(new LocalSiloMetadata(metadata));
    orleans.AddGrainService<SiloMetadataService>();
    orleans.Services.AddSingleton<SiloMetadataServiceClient>();
    orleans.Services.AddSingleton<SiloMetadataView>();
    orleans.Services.AddSingleton<SiloMetadataRefresh>();
    orleans.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(services => services.GetRequiredService<SiloMetadataRefresh>());
    if (serveDashboard) orleans.AddDashboard();
    orleans.Services.AddPlacementFilter<GpuSiloPlacementFilterStrategy, GpuSiloPlacementFilterDirector>(ServiceLifetime.Singleton);
    orleans.Services.AddPlacementFilter<ControlSiloPlacementFilterStrategy, ControlSiloPlacementFilterDirector>(ServiceLifetime.Singleton);
    // Runs that were in progress when the cluster stopped continue as soon as it is up (not at their next reminder).
    if (silo.Role != "gpu")
        orleans.AddStartupTask((services, startupCancellation) =>
        {
            // In the background: a slow storage must not hold up the silo's start.
            _ = RunWakeUp.WakeAsync(services.GetRequiredService<IGrainFactory>(),
                services.GetRequiredService<ILoggerFactory>().CreateLogger("OnlineAlign.RunWakeUp"), CancellationToken.None);
            return Task.CompletedTask;
        });
});

builder.Services.AddSingleton(new CheckpointStore(connectionString, maxUploadBytesPerSecond: (long)(silo.MaxUploadMegabytesPerSecond * 1e6)));
// Spec files are read only under the data roots: the configured ones (default: the data folder) and ONLINEALIGN_DATA_ROOTS (':'-separated).
var dataRoots = new DataRoots((silo.DataRoots is { Length: > 0 } configured ? configured : [silo.DataFolder])
    .Concat((Environment.GetEnvironmentVariable("ONLINEALIGN_DATA_ROOTS") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)));
builder.Services.AddSingleton(new WorkerSettings(silo.Device,
    Path.GetFullPath(Path.Combine(silo.DataFolder, "cache", silo.Role + "-" + silo.SiloPort)), dataRoots, limits, silo.DeviceMemoryBytes,
    silo.HostMemoryBytes, (long)(silo.CheckpointCacheGigabytes * (1L << 30)), TimeSpan.FromSeconds(silo.ReplicaIdleSeconds),
    silo.KeepTrainedModel, silo.OverlapCheckpointUpload)
{
    PretrainedCache = Path.GetFullPath(silo.PretrainedCacheFolder ?? Path.Combine(silo.DataFolder, "cache", "m0")),
});
builder.Services.AddSingleton(new OnlineAlign.Grains.Runs.RunSettings(silo.OverlapNextGeneration, silo.CopyTrainedCheckpoint));
builder.Services.AddSingleton<OnlineAlign.Execution.Specs.MemoryLedger>(); // the runs on this silo share its device and host memory
builder.Services.AddSingleton<CheckpointCache>();
builder.Services.AddSingleton<GpuSilos>();
builder.Services.AddSingleton(new ComputeGate(silo.MaxConcurrentComputations));
builder.Services.AddSingleton(new FaultPoints(silo.FaultFolder));
builder.Services.AddSingleton(api);
builder.Services.AddSingleton(new WatchStreamLimits(api.MaxWatchStreamsPerRun, api.MaxWatchStreamsPerClient));
builder.Services.AddSingleton(limits);
// What one /v1 request may ask for (the "Serve" section), and how many committed rounds this silo keeps loaded for it.
var serveLimits = builder.Configuration.GetSection("Serve").Get<OnlineAlign.Serving.ServeLimits>() ?? new OnlineAlign.Serving.ServeLimits();
builder.Services.AddSingleton(new OnlineAlign.Grains.Serving.ServingSettings(silo.MaxServedModels, TimeSpan.FromSeconds(silo.ServeIdleSeconds), serveLimits));
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(silo.ShutdownSeconds));
if (silo.ParentProcessId > 0)
    builder.Services.AddHostedService(services => new ParentWatch(silo.ParentProcessId, services.GetRequiredService<IHostApplicationLifetime>()));
builder.Services.AddGrpc(o =>
{
    o.Interceptors.Add<ApiKeyInterceptor>();
    o.MaxReceiveMessageSize = api.MaxRequestBytes;
});
builder.Services.AddGrpcReflection();
// The instruments exist from the start: process memory is scraped before any run touches RunTelemetry.
_ = RunTelemetry.Source;
builder.Services.AddOpenTelemetry()
    .ConfigureResource(resource => resource.AddService("onlinealign-silo", serviceInstanceId: $"{silo.Role}-{silo.SiloPort}"))
    .WithMetrics(metrics =>
    {
        metrics.AddMeter(RunTelemetry.Name, "Microsoft.Orleans");
        if (observability.Port > 0) metrics.AddPrometheusExporter();
        if (!string.IsNullOrEmpty(observability.OtlpEndpoint)) metrics.AddOtlpExporter(o => o.Endpoint = new Uri(observability.OtlpEndpoint));
    })
    .WithTracing(tracing =>
    {
        tracing.AddSource(RunTelemetry.Name);
        if (!string.IsNullOrEmpty(observability.OtlpEndpoint)) tracing.AddOtlpExporter(o => o.Endpoint = new Uri(observability.OtlpEndpoint));
    });
builder.Services.AddGrpcHealthChecks().AddCheck<SiloHealthCheck>("orleans");

var app = builder.Build();
// Created now, not when the first worker activates: what a killed process left in the cache (a copy or download half
// written, scratch folders) is removed when the silo starts, even if no run is placed on it again.
if (silo.Accelerator == "gpu") app.Services.GetRequiredService<CheckpointCache>();
RunTelemetry.ObserveGpuSilos(app.Services.GetRequiredService<GpuSilos>().ActiveCount);
var membershipView = app.Services.GetRequiredService<SiloMetadataView>();
RunTelemetry.ObserveSilos(() => membershipView.Active().Count());
app.UsePortGate(api, observability);
app.MapGrpcHealthChecksService();
app.MapGrpcService<RunsService>();
app.MapGrpcReflectionService();
if (observability.Port > 0)
{
    // Behind the API key wherever the API needs one (Prometheus sends it with `authorization: credentials:`).
    app.MapPrometheusScrapingEndpoint("/metrics");
    if (serveDashboard) app.MapOrleansDashboard("/dashboard");
    // The runs page in a browser (HTTP/1.1, so on this port), where this silo serves the API it calls.
    if (api.Port > 0) OnlineAlign.Silo.Ui.RunsPage.MapRunsPage(app, api);
    // Committed rounds over the OpenAI-compatible API (HTTP/1.1 and plain JSON/SSE, as OpenAI clients speak it): the same
    // endpoints as `onlinealign serve`, each model loaded by a served-round grain on a GPU silo. The key as PortGate checks it.
    OnlineAlign.Serving.OpenAiEndpoints.Map(app.MapGroup("/v1"), new ServedRoundCatalog(app.Services.GetRequiredService<IGrainFactory>()), serveLimits);
}

// A stop that outlasts its grace (storage gone, a phase that does not yield) ends the process anyway.
app.Lifetime.ApplicationStopping.Register(() => _ = Task.Delay(TimeSpan.FromSeconds(silo.ShutdownSeconds + 2)).ContinueWith(_ =>
{
    Console.Error.WriteLine($"the silo did not stop within {silo.ShutdownSeconds + 2} s; exiting (runs resume from their last committed state)");
    Environment.Exit(143);
}));
app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"OnlineAlign silo '{silo.Role}' up: gRPC on {api.ListenAddress}:{api.Port}, " +
                      (observability.Port > 0
                          ? $"metrics on http://{observability.ListenAddress}:{observability.Port}/metrics" +
                            $"{(serveDashboard ? ", dashboard /dashboard" : "")}{(api.Port > 0 ? ", runs page /ui/" : "")}, "
                          : "") +
                      $"{(certificate is null ? "" : "(TLS) ")}silo port {silo.SiloPort}{(clusterTls.Enabled ? " (mutual TLS)" : "")}, gateway " +
                          $"{silo.GatewayPort}, storage {StorageConnection.Redact(connectionString)}, torch threads {torchThreads}"));

try
{
    await app.RunAsync();
    return 0;
}
finally
{
    if (azurite is not null) await azurite.DisposeAsync();
}

static string? RoleArgument(string[] args)
{
    int i = Array.IndexOf(args, "--role");
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

// A device that cannot be resolved here (CUDA asked for but absent) is each run's error, as before, not the silo's start's.
static long MeasuredDeviceMemory(string device)
{
    try { return OnlineAlign.Modeling.DeviceMemory.Total(OnlineAlign.Modeling.DeviceSetting.Resolve(device)) ?? 0; }
    catch (Exception e) when (e is ArgumentException or TypeInitializationException or DllNotFoundException) { return 0; }
}
