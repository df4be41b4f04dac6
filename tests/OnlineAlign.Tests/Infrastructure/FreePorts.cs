using System.Net;
using System.Net.Sockets;

namespace OnlineAlign.Tests.Infrastructure;

public static class FreePorts
{
    /// <summary>Ports the OS considers free right now on loopback.</summary>
    public static int[] Take(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ =>
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            return l;
        }).ToList();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Stop());
        return ports;
    }
}
