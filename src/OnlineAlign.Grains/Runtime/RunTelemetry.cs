using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace OnlineAlign.Grains.Runtime;

/// <summary>
/// What a silo tells OpenTelemetry about runs. Instruments are created here once, under the "OnlineAlign" meter
/// and activity source (the silo host exports them: Prometheus scrape endpoint, OTLP); grains only record.
/// Every series carries the run id as a label.
/// </summary>
public static class RunTelemetry
{
    public const string Name = "OnlineAlign";

    public static readonly ActivitySource Source = new(Name);
    private static readonly Meter Meter = new(Name);

    /// <summary>The last committed round's metrics of each run this silo orchestrates, by (run, metric name).</summary>
    private static readonly ConcurrentDictionary<(string Run, string Metric), double> LastRound = new();
    private static readonly ConcurrentDictionary<string, int> CommittedRounds = new();

    private static readonly Histogram<double> PhaseSeconds = Meter.CreateHistogram<double>("onlinealign.phase.duration", "s",
        "Compute time of one phase of a round (generate, judge, pairs, train, evaluate, prepare) on this silo");
    private static readonly Counter<long> GeneratedTokens = Meter.CreateCounter<long>("onlinealign.generated.tokens", "{token}",
        "Response tokens sampled by generation phases (rate(): generation tokens/s)");
    private static readonly Counter<long> TrainedTokens = Meter.CreateCounter<long>("onlinealign.trained.tokens", "{token}",
        "Prompt and response tokens of the pairs trained on, times epochs (rate(): training tokens/s)");

    static RunTelemetry()
    {
        Meter.CreateObservableGauge("onlinealign.round.metric", () => LastRound.Select(e =>
                new Measurement<double>(e.Value, new KeyValuePair<string, object?>("run_id", e.Key.Run), new KeyValuePair<string,
                    object?>("metric", e.Key.Metric))),
            description: "The last committed round's metrics of each run: rewards/*, eval/accuracy, consistency/C, pairs/kept, time/* ...");
        Meter.CreateObservableGauge("onlinealign.run.committed_rounds", () => CommittedRounds.Select(e =>
            new Measurement<int>(e.Value, new KeyValuePair<string, object?>("run_id", e.Key))), "{round}", "Rounds committed by each run");
        Meter.CreateObservableGauge("onlinealign.process.memory", () => new[]
        {
            new Measurement<long>(Environment.WorkingSet, new KeyValuePair<string, object?>("kind", "resident")),
            new Measurement<long>(GC.GetTotalMemory(false), new KeyValuePair<string, object?>("kind", "managed_heap")),
        }, "By", "This silo process's resident memory and managed heap");
    }

    /// <summary>
    /// The GPU silos this silo sees active now (members whose metadata says so): the replicas `generation_replicas: 0`
    /// gives a round that starts now. Called once by the silo host.
    /// </summary>
    public static void ObserveGpuSilos(Func<int> count) =>
        Meter.CreateObservableGauge("onlinealign.cluster.gpu_silos", () => count(), "{silo}",
            "GPU silos active in this silo's membership view (the replicas generation_replicas 0 gives a round starting now)");

    /// <summary>
    /// The silos of every role this silo sees active now: a killed silo leaves it once the cluster voted it dead (an operator's
    /// alert on a shrinking cluster; tests wait on it before a replacement takes the dead silo's endpoint). Called once by the silo host.
    /// </summary>
    public static void ObserveSilos(Func<int> count) =>
        Meter.CreateObservableGauge("onlinealign.cluster.silos", () => count(), "{silo}", "Silos of every role active in this silo's membership view");

    /// <summary>A committed round (or round 0, the evaluated initial policy) of a run.</summary>
    public static void RoundCommitted(string runId, int round, IReadOnlyDictionary<string, double> metrics)
    {
        foreach (var (name, value) in metrics)
            if (double.IsFinite(value)) LastRound[(runId, name)] = value;
        CommittedRounds[runId] = round;
    }

    public static void PhaseFinished(string runId, string phase, double seconds) =>
        PhaseSeconds.Record(seconds, new KeyValuePair<string, object?>("run_id", runId), new KeyValuePair<string, object?>("phase", phase));

    public static void Generated(string runId, long tokens) => GeneratedTokens.Add(tokens, new KeyValuePair<string, object?>("run_id", runId));

    public static void Trained(string runId, long tokens) => TrainedTokens.Add(tokens, new KeyValuePair<string, object?>("run_id", runId));

    /// <summary>A span for one phase of one round, tagged with run, round and silo.</summary>
    public static Activity? StartPhase(string runId, int round, string phase, string silo) =>
        Source.StartActivity(phase)?.SetTag("onlinealign.run_id", runId).SetTag("onlinealign.round", round).SetTag("onlinealign.silo", silo);
}
