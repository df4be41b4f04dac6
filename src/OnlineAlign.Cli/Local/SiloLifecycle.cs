using System.Globalization;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace OnlineAlign.Cli.Local;

/// <summary>
/// Starting and stopping a silo host process on loopback: free ports, waiting for its gRPC health service,
/// and a graceful stop. The local cluster of the main job and the tests' silo processes share these.
/// </summary>
public static class SiloLifecycle
{
    /// <summary>Distinct ports free on loopback now (each is held open until all are chosen).</summary>
    /// <summary>Whether a loopback port can be bound now.</summary>
    public static bool IsFree(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException) { return false; }
    }

    public static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ =>
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return listener;
        }).ToList();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Stop());
        return ports;
    }

    /// <summary>Polls the standard gRPC health service until it answers SERVING; fails as soon as the silo exits.</summary>
    /// <param name="detail">What to add to an error: where the silo's log is, or its output.</param>
    public static async Task WaitUntilServingAsync(Process silo, string apiAddress, TimeSpan timeout, Func<string> detail,
        CancellationToken cancellationToken = default)
    {
        using var channel = GrpcChannel.ForAddress(apiAddress);
        var health = new Health.HealthClient(channel);
        var deadline = DateTime.UtcNow + timeout;
        string last = "no answer";
        while (DateTime.UtcNow < deadline)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (silo.HasExited) throw new InvalidOperationException($"the silo exited with code {silo.ExitCode}; {detail()}");
            try
            {
                var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken);
                if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving) return;
                last = reply.Status.ToString();
            }
            catch (Grpc.Core.RpcException e) { last = e.Status.Detail; }
            await Task.Delay(250, cancellationToken);
        }
        throw new TimeoutException($"the silo was not SERVING after {timeout} (last answer: {last}); {detail()}");
    }

    /// <summary>
    /// Waits until every silo's onlinealign_cluster_gpu_silos gauge (its Prometheus endpoint) reads <paramref name="count"/>.
    /// Every silo, not one: the GPU ledger decides on whichever silo holds it and the placement filter runs on the silo
    /// activating a replica, so a run started while any silo lacks a GPU silo's metadata can get replicas that share a
    /// silo (and, by a benchmark, figures taken with them so). The timeout bounds a cluster gone wrong.
    /// </summary>
    public static Task WaitUntilEverySiloSeesGpuSilosAsync(IEnumerable<int> metricsPorts, int count, TimeSpan timeout,
        CancellationToken cancellationToken = default) =>
        WaitUntilEverySiloReportsAsync(metricsPorts, "onlinealign_cluster_gpu_silos", count, "GPU silos", timeout, cancellationToken);

    /// <summary>Waits until every silo's onlinealign_cluster_silos gauge reads <paramref name="count"/> (silos of any role, active).</summary>
    public static Task WaitUntilEverySiloSeesSilosAsync(IEnumerable<int> metricsPorts, int count, TimeSpan timeout,
        CancellationToken cancellationToken = default) =>
        WaitUntilEverySiloReportsAsync(metricsPorts, "onlinealign_cluster_silos", count, "active silos", timeout, cancellationToken);

    private static async Task WaitUntilEverySiloReportsAsync(IEnumerable<int> metricsPorts, string gauge, int count, string what,
        TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow + timeout;
        string suffix = " " + count.ToString(CultureInfo.InvariantCulture);
        foreach (int port in metricsPorts)
        {
            string body = "";
            // A sample's line: "{name} {value}" or "{name}{labels} {value}".
            while (!body.Split('\n').Any(l => (l.StartsWith(gauge + " ", StringComparison.Ordinal) || l.StartsWith(gauge + "{", StringComparison.Ordinal))
                                              && l.EndsWith(suffix, StringComparison.Ordinal)))
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"the silo with metrics port {port} never reported {count} {what}:\n{body}");
                if (body.Length > 0) await Task.Delay(250, cancellationToken);
                body = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"), cancellationToken);
            }
        }
    }

    /// <summary>SIGTERM for a graceful Orleans shutdown (the silo leaves the membership at once), killed if it hangs.</summary>
    public static async Task StopAsync(Process silo, TimeSpan grace)
    {
        if (silo.HasExited) return;
        if (!OperatingSystem.IsWindows()) Process.Start("kill", ["-TERM", silo.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit();
        using var wait = new CancellationTokenSource(grace);
        try { await silo.WaitForExitAsync(wait.Token); }
        catch (OperationCanceledException)
        {
            silo.Kill(entireProcessTree: true);
            await silo.WaitForExitAsync();   // gone (and its exit code readable) when this returns, killed or not
        }
    }
}
