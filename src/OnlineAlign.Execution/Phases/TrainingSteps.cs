using System.Text.Json;
using OnlineAlign.Alignment.Training;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// A round's per-step training metrics, kept in its checkpoint as JSON lines (like the log_history a Hugging Face
/// Trainer keeps in trainer_state.json): one object per optimiser step, {"step": k, "loss": ..., "rewards/margins": ...}.
/// </summary>
public static class TrainingSteps
{
    public const string FileName = "train_steps.jsonl";

    public static void Write(string path, IEnumerable<StepMetrics> steps) =>
        File.WriteAllLines(path, steps.Select(s => JsonSerializer.Serialize(new Dictionary<string, double>(s.Named()) { ["step"] = s.Step }, Json)));

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>The steps in a file's text, in order: (step, metrics without "step").</summary>
    public static List<(int Step, Dictionary<string, double> Metrics)> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => JsonSerializer.Deserialize<Dictionary<string, double>>(line, Json)!)
            .Select(m => ((int)m["step"], m.Where(kv => kv.Key != "step").ToDictionary()))
            .ToList();
}
