using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using OnlineAlign.Specs;

namespace OnlineAlign.Grains.Judging;

/// <summary>
/// The HTTP client the remote judge connects with: it resolves the endpoint's name itself and refuses to connect when
/// any address it resolves to is refused (<see cref="RemoteEndpoints"/>), or when the host is not in the silo's allow-list.
/// The spec check only sees the URL; this closes a name that resolves to 169.254.169.254 (or is made to, later: DNS
/// rebinding), since the address checked is the address connected to. One client per allow-list, shared (pooled connections).
/// </summary>
public static class RemoteJudgeTransport
{
    private static readonly ConcurrentDictionary<string, HttpClient> Clients = new(StringComparer.Ordinal);

    public static HttpClient For(string? allowedHosts) => Clients.GetOrAdd(allowedHosts ?? "", hosts => new HttpClient(new SocketsHttpHandler
    {
        ConnectCallback = (context, ct) => ConnectAsync(context.DnsEndPoint, hosts, ct),
        // Names are resolved again for new connections, so a changed record is checked again.
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        AllowAutoRedirect = false,
    })
    { Timeout = Timeout.InfiniteTimeSpan }); // each attempt has its own limit (judge.timeout_seconds)

    /// <summary>Connects to the first allowed address of the host; throws <see cref="RemoteEndpointRefusedException"/> before connecting otherwise.</summary>
    public static async ValueTask<Stream> ConnectAsync(DnsEndPoint endpoint, string? allowedHosts, CancellationToken ct)
    {
        var addresses = await Resolve(endpoint.Host, allowedHosts, ct);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, endpoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The host's addresses, every one of them allowed; refused (naming the address and why) otherwise.</summary>
    public static async Task<IPAddress[]> Resolve(string host, string? allowedHosts, CancellationToken ct)
    {
        host = host.Trim('[', ']');
        var allowed = RemoteEndpoints.AllowedHosts(allowedHosts);
        if (allowed.Length > 0 && !allowed.Contains(host, StringComparer.OrdinalIgnoreCase))
            throw new RemoteEndpointRefusedException($"host '{host}' is not in this silo's Limits:RemoteJudgeAllowedHosts");
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        foreach (var address in addresses)
            if (RemoteEndpoints.RefusedAddress(address) is { } why)
                throw new RemoteEndpointRefusedException($"host '{host}' resolves to a refused address: {why}");
        return addresses;
    }
}
