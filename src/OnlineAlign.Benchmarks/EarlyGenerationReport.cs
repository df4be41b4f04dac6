using OnlineAlign.Api.V1;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Whether each round's generation was taken from one started early, inside the previous round's upload window
/// (Silo:OverlapNextGeneration), read from the silo's own log rather than inferred from the times; and how much of the
/// round's phase time lay outside its wall time (what the early generation hid).
/// </summary>
internal static class EarlyGenerationReport
{
    /// <summary>The silo's log lines that tell the window's story: the early start, its wait, the upload's end, the take.</summary>
    private static readonly string[] Markers =
    [
        "starts while checkpoint", "waits for its upload", "uploaded behind the phases after training",
        "taken from the generation started early", "started early is dropped", "started early failed",
    ];

    /// <summary>The round's own clock (time/round_seconds is the API's copy of it) and what it leaves beside the phases.</summary>
    private static readonly HashSet<string> NotPhases = ["time/round", "time/round_seconds", "time/orchestration"];

    /// <summary>
    /// The orchestrator's line for a shard taken early, after "round N: generation shard K" (every replica that held the
    /// checkpoint started one).
    /// </summary>
    private const string Taken = "taken from the generation started early";

    public static void Write(List<RoundMetrics> rounds, string siloLog, TextWriter report)
    {
        var lines = File.Exists(siloLog) ? ReadShared(siloLog) : [];
        foreach (var r in rounds)
        {
            double M(string key) => r.Metrics.TryGetValue(key, out var v) ? v : 0;
            int taken = lines.Count(l => l.Contains($"round {r.Round}: generation shard ", StringComparison.Ordinal)
                && l.Contains(Taken, StringComparison.Ordinal));
            // The phases' own times, unclamped (time/orchestration stops at 0): above the wall time when a phase ran before the round.
            double phases = r.Metrics.Where(kv => kv.Key.StartsWith("time/", StringComparison.Ordinal)
                && !kv.Key.StartsWith("time/train/", StringComparison.Ordinal) && !NotPhases.Contains(kv.Key)).Sum(kv => kv.Value);
            string early = taken > 0 ? $"yes ({taken} shards)" : "no";
            report.WriteLine($"round {r.Round}: generation taken early (silo log): {early}; generate {M("time/generate"):F3} s, " +
                $"then waited {M("generate/checkpoint_wait_seconds"):F3} s for the previous round's upload before storing; phases {phases:F3} s against wall " +
                $"{M("time/round"):F3} s (outside the round: {Math.Max(0, phases - M("time/round")):F3} s)");
        }
        report.WriteLine($"silo log lines on the upload window ({siloLog}):");
        for (int i = 0; i < lines.Count; i++)
        {
            if (!Markers.Any(m => lines[i].Contains(m, StringComparison.Ordinal))) continue;
            // The console formatter writes the header (with its timestamp, when one is configured) on the line before the message.
            int level = i > 0 && lines[i].StartsWith(' ') ? lines[i - 1].IndexOf("info:", StringComparison.Ordinal) : -1;
            string header = level > 0 ? lines[i - 1][..level] : "";
            report.WriteLine($"  {header}{lines[i].Trim()}");
        }
    }

    /// <summary>The log as written so far: the silo still has it open for writing.</summary>
    private static List<string> ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines;
    }
}
