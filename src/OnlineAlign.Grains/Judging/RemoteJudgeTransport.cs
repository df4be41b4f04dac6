using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using OnlineAlign.Specs;

namespace OnlineAlign.Grains.Judging;

/// <summary>
/// The HTTP client the remote judge connects with: it resolves the endpoint's name itself and refuses to connect when
/// any address it resolves to is refused (<see cref="RemoteEndpoints"/>), or when the host is not in the silo's allow-list.
/// The spec check only sees the URL; this closes a name that resolves to 169.254.169.254 (or is made to, later: DNS
/// rebinding), since the address checked is the address connected to. One client per allow-list and proxy, shared (pooled connections).
/// Proxies: the ambient one (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) is never used. Through a proxy the connection goes to the
/// proxy, not to the judge, so the check above would see only the proxy's address and the proxy would reach whatever the
/// URL names (a metadata address included). A proxy is used only when the silo names one (Limits:RemoteJudgeProxy); the
/// judge's host is then checked before every request against the same rules: in the allow-list when there is one, and
/// otherwise resolved here with every address allowed (the proxy resolves the name again: with a proxy, set the allow-list).
/// </summary>
public static class RemoteJudgeTransport
{
    private static readonly ConcurrentDictionary<string, HttpClient> Clients = new(StringComparer.Ordinal);

    /// <param name="allowedHosts">Limits:RemoteJudgeAllowedHosts</param>
    /// <param name="proxy">Limits:RemoteJudgeProxy: an http URL of a proxy to send through (null: none, whatever the environment says)</param>
    public static HttpClient For(string? allowedHosts, string? proxy = null) =>
        Clients.GetOrAdd($"{allowedHosts}\n{proxy}", _ => new HttpClient(Handler(allowedHosts ?? "", proxy)) { Timeout = Timeout.InfiniteTimeSpan });
    // (each attempt has its own limit: judge.timeout_seconds)

    private static HttpMessageHandler Handler(string hosts, string? proxy)
    {
        var sockets = new SocketsHttpHandler
        {
            // Names are resolved again for new connections, so a changed record is checked again.
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            AllowAutoRedirect = false,
            UseProxy = !string.IsNullOrEmpty(proxy),
        };
        if (string.IsNullOrEmpty(proxy))
        {
            sockets.ConnectCallback = (context, ct) => ConnectAsync(context.DnsEndPoint, hosts, ct);
            return sockets;
        }
        if (!Uri.TryCreate(proxy, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.UserInfo.Length > 0)
            throw new ArgumentException($"Limits:RemoteJudgeProxy '{proxy}' must be an http:// URL without credentials");
        sockets.Proxy = new WebProxy(uri);
        return new TargetCheck(hosts) { InnerHandler = sockets };
    }

    /// <summary>Through a proxy: the judge's host checked before the request leaves (the connection is to the proxy).</summary>
    private sealed class TargetCheck(string hosts) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            string host = request.RequestUri!.IdnHost;
            bool listed = RemoteEndpoints.AllowedHosts(hosts).Contains(host.Trim('[', ']'), StringComparer.OrdinalIgnoreCase);
            // A listed name is the operator's to trust (a proxy-only network may not resolve it here); anything else is resolved and checked.
            if (!listed || IPAddress.TryParse(host.Trim('[', ']'), out _)) await Resolve(host, hosts, cancellationToken);
            return await base.SendAsync(request, cancellationToken);
        }
    }

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
