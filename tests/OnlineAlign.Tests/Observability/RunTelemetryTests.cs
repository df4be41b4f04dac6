using System.Diagnostics;
using System.Diagnostics.Metrics;
using OnlineAlign.Grains.Runtime;

namespace OnlineAlign.Tests.Observability;

/// <summary>What the silo hands OpenTelemetry: spans per phase and round metrics, each labelled with its run.</summary>
public class RunTelemetryTests
{
    [Fact]
    public void APhaseSpanCarriesRunRoundAndSiloAndRoundMetricsAreLabelledWithTheRun()
    {
        string runId = "telemetry-" + Guid.NewGuid().ToString("N")[..6];
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == RunTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (spans) spans.Add(activity); },
        };
        ActivitySource.AddActivityListener(listener);
        using (RunTelemetry.StartPhase(runId, 3, "judge", "S127.0.0.1:11111")) { }
        var span = Assert.Single(spans, s => Equals(s.GetTagItem("onlinealign.run_id"), runId));
        Assert.Equal("judge", span.OperationName);
        Assert.Equal(3, span.GetTagItem("onlinealign.round"));
        Assert.Equal("S127.0.0.1:11111", span.GetTagItem("onlinealign.silo"));

        var seen = new List<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == RunTelemetry.Name) l.EnableMeasurementEvents(instrument); },
        };
        meters.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            lock (seen) seen.Add((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        });
        meters.Start();
        RunTelemetry.RoundCommitted(runId, 2, new Dictionary<string, double> { ["eval/accuracy"] = 0.625, ["consistency/C"] = double.NaN });
        RunTelemetry.PhaseFinished(runId, "generate", 1.5);
        meters.RecordObservableInstruments();

        Assert.Contains(seen, m => m.Instrument == "onlinealign.round.metric" && m.Value == 0.625
                                   && Equals(m.Tags["run_id"], runId) && Equals(m.Tags["metric"], "eval/accuracy"));
        Assert.DoesNotContain(seen, m => m.Instrument == "onlinealign.round.metric" && Equals(m.Tags["run_id"], runId) && Equals(m.Tags["metric"], "consistency/C"));
        Assert.Contains(seen, m => m.Instrument == "onlinealign.phase.duration" && m.Value == 1.5 && Equals(m.Tags["phase"], "generate"));
    }
}
