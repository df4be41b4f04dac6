using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>Connects to a silo port as a peer or a stranger would.</summary>
public static class TlsProbe
{
    /// <summary>
    /// Whether the port completes a TLS handshake with this client certificate (or none) and keeps the connection,
    /// and the certificate it showed. On Linux a server may judge the client's certificate just after the handshake,
    /// so with <paramref name="awaitVerdict"/> the probe also reads: a server that refused hangs up at once, one that
    /// accepted waits for the peer's first message (the timeout only bounds that wait).
    /// </summary>
    public static async Task<(bool Accepted, X509Certificate2? Server)> HandshakeAsync(int port, X509Certificate2? clientCertificate, bool awaitVerdict)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        // Deliberate: the probe asks whether the silo accepts a client, so it completes the handshake whatever the
        // server presents (loopback only) and hands the server's certificate back for the test to check.
#pragma warning disable CA5359
        await using var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
#pragma warning restore CA5359
        try
        {
            using (var handshake = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "silo",
                    ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
                }, handshake.Token);
            var server = ssl.RemoteCertificate is { } remote ? new X509Certificate2(remote) : null;
            if (!awaitVerdict) return (true, server);
            using var verdict = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { return (await ssl.ReadAsync(new byte[16], verdict.Token) > 0, server); }
            catch (OperationCanceledException) { return (true, server); } // still connected: accepted
        }
        catch (Exception e) when (e is IOException or AuthenticationException or SocketException) { return (false, null); }
    }
}
