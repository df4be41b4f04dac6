namespace OnlineAlign.Silo.Api;

/// <summary>
/// Caps on the WatchRun streams a silo holds open: per run and per client address. Each stream holds a connection,
/// a grain subscription and a loop, so without a cap one client could open streams until the silo runs out.
/// </summary>
public sealed class WatchStreamLimits(int perRun, int perClient)
{
    private readonly Dictionary<string, int> _runs = new(), _clients = new();

    /// <summary>A lease that frees its place when disposed, or null with the reason when a cap is reached.</summary>
    public (IDisposable? Lease, string? Refusal) TryOpen(string runId, string client)
    {
        lock (_runs)
        {
            if (_runs.GetValueOrDefault(runId) >= perRun)
                return (null, $"run '{runId}' already has {perRun} WatchRun streams open on this silo (Api:MaxWatchStreamsPerRun); close one and try again");
            if (_clients.GetValueOrDefault(client) >= perClient)
                return (null, $"this client already has {perClient} WatchRun streams open on this silo (Api:MaxWatchStreamsPerClient); close one " +
                    $"and try again");
            _runs[runId] = _runs.GetValueOrDefault(runId) + 1;
            _clients[client] = _clients.GetValueOrDefault(client) + 1;
            return (new Lease(this, runId, client), null);
        }
    }

    /// <summary>Open streams of a run (for tests and diagnostics).</summary>
    public int OpenFor(string runId) { lock (_runs) return _runs.GetValueOrDefault(runId); }

    /// <summary>The client part of a gRPC peer ("ipv4:127.0.0.1:53124" -> "ipv4:127.0.0.1"): its address without the port.</summary>
    public static string ClientOf(string peer)
    {
        int colon = peer.LastIndexOf(':');
        return colon > peer.IndexOf(':') ? peer[..colon] : peer;
    }

    private void Close(string runId, string client)
    {
        lock (_runs)
        {
            Decrement(_runs, runId);
            Decrement(_clients, client);
        }
    }

    private static void Decrement(Dictionary<string, int> counts, string key)
    {
        if (counts[key] <= 1) counts.Remove(key);
        else counts[key]--;
    }

    private sealed class Lease(WatchStreamLimits owner, string runId, string client) : IDisposable
    {
        private int _disposed;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) owner.Close(runId, client);
        }
    }
}
