using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>Copies a file's tensors into a model's, by name, refusing a missing, unexpected or mis-shaped one (the first few named).</summary>
internal static class StrictCopy
{
    /// <param name="tolerated">names a file may hold that the model does not need</param>
    /// <param name="mismatch">what the refusal says does not match ("checkpoint does not match the config")</param>
    /// <param name="needer">what needs the shape ("the config")</param>
    public static void Into(IReadOnlyDictionary<string, Tensor> parameters, IReadOnlyDictionary<string, Tensor> tensors, string source,
        string mismatch, string needer, Func<string, bool>? tolerated = null)
    {
        CheckNames(parameters, tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape), source, mismatch, needer, tolerated);
        using var noGrad = no_grad();
        foreach (var (name, p) in parameters) p.copy_(tensors[name]);
    }

    /// <summary>
    /// The names and shapes check alone, from a file's header (no tensor read yet): a streaming load checks before it
    /// copies anything, so a mismatched file never leaves a half-loaded model.
    /// </summary>
    public static void CheckNames(IReadOnlyDictionary<string, Tensor> parameters, IReadOnlyDictionary<string, long[]> shapes, string source,
        string mismatch, string needer, Func<string, bool>? tolerated = null)
    {
        var missing = parameters.Keys.Where(k => !shapes.ContainsKey(k)).ToList();
        var unexpected = shapes.Keys.Where(k => !parameters.ContainsKey(k) && tolerated?.Invoke(k) != true).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{source}: {mismatch}." + Names(" Missing", missing) + Names(" Unexpected", unexpected));
        foreach (var (name, p) in parameters)
        {
            var shape = shapes[name];
            if (!shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"{source}: tensor '{name}' has shape [{string.Join(", ", shape)}], {needer} needs " +
                    $"[{string.Join(", ", p.shape)}]");
        }
    }

    private static string Names(string label, List<string> names) => names.Count == 0 ? ""
        : $"{label}: {string.Join(", ", names.Take(8))}{(names.Count > 8 ? $" and {names.Count - 8} more" : "")}.";
}
