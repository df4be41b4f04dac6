using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace OnlineAlign.Silo;

/// <summary>
/// Healthy once the Orleans silo has joined its cluster and the host has started. Health answers without the API
/// key, so it never carries exception text (addresses, storage names): that goes to the silo's log.
/// </summary>
public sealed class SiloHealthCheck(IHostApplicationLifetime lifetime, IClusterClient client, ILogger<SiloHealthCheck> log) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!lifetime.ApplicationStarted.IsCancellationRequested)
            return HealthCheckResult.Unhealthy("silo is starting");
        try
        {
            var hosts = await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true, cancellationToken: cancellationToken)
                .WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
            return hosts.Count > 0 ? HealthCheckResult.Healthy($"{hosts.Count} active silo(s)") : HealthCheckResult.Unhealthy("no active silo");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning(e, "health check: the cluster is not reachable");
            return HealthCheckResult.Unhealthy("cluster not reachable");
        }
    }
}
