namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The worker grain keys of a run's replicas: replica 0 is the run's own worker; the others are separate activations the
/// GPU filter places (keyed "#gen" since generation was the first phase they shared; they run every sharded phase's shards).
/// </summary>
internal static class ReplicaKeys
{
    public static string Of(string runId, int replica) => replica == 0 ? runId : $"{runId}#gen{replica}";
}
