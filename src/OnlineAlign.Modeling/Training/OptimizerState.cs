using OnlineAlign.Modeling.Checkpoints;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Training;

/// <summary>
/// AdamW's moments and step count, kept on the CPU between rounds and written beside the weights
/// (optimizer.safetensors) so that a run which carries its optimiser over rounds resumes it exactly.
/// </summary>
public sealed class OptimizerState : IDisposable
{
    public const string FileName = "optimizer.safetensors";

    public Dictionary<string, Tensor> Moments { get; private set; } = new();
    public long Step { get; private set; }
    public bool IsEmpty => Step == 0;

    /// <summary>Copies the optimiser's current moments (replacing any held before).</summary>
    public void CaptureFrom(FlatAdamW optimizer)
    {
        DisposeMoments();
        Moments = optimizer.State().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone().DetachFromDisposeScope());
        Step = optimizer.Step;
    }

    public void RestoreInto(FlatAdamW optimizer)
    {
        if (!IsEmpty) optimizer.LoadState(Moments, Step);
    }

    /// <summary>Writes the moments, answering the file's sha256 (taken as written).</summary>
    public string Save(string path) =>
        SafeTensors.Write(path, Moments, new Dictionary<string, string> { ["step"] = Step.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    /// <summary>The state saved at path, or an empty one when the checkpoint has none (a run that starts its optimiser fresh).</summary>
    public static OptimizerState Load(string path)
    {
        var state = new OptimizerState();
        if (!File.Exists(path)) return state;
        state.Moments = SafeTensors.Read(path);
        var metadata = SafeTensors.ReadMetadata(path);
        if (!metadata.TryGetValue("step", out var step) || !long.TryParse(step, out var parsed) || parsed < 0)
            throw new InvalidDataException($"{path}: optimizer state has no valid 'step' in its metadata");
        state.Step = parsed;
        return state;
    }

    private void DisposeMoments()
    {
        foreach (var t in Moments.Values) t.Dispose();
        Moments = new();
    }

    public void Dispose() => DisposeMoments();
}
