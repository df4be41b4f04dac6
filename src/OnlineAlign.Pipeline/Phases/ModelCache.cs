using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using static TorchSharp.torch;

namespace OnlineAlign.Pipeline.Phases;

/// <summary>
/// Read-only models a worker keeps loaded between the phases of a round (the judge, pairs and evaluate
/// phases share P_r, P_{r-1} and the initial policy), by checkpoint hash. Touched only on the worker's
/// model thread. Callers never dispose what it hands out; models they will train come from <see cref="Owned"/>.
/// </summary>
public sealed class ModelCache(int capacity = 4) : IDisposable
{
    private readonly LinkedList<(string Key, DecoderLM Model)> _recent = new();

    public DecoderLM Shared(string folder, string sha256, Device device)
    {
        string key = $"{sha256}@{device}";
        for (var node = _recent.First; node is not null; node = node.Next)
            if (node.Value.Key == key)
            {
                _recent.Remove(node);
                _recent.AddFirst(node);
                return node.Value.Model;
            }
        var model = HfCheckpoint.Load(folder, device);
        _recent.AddFirst((key, model));
        while (_recent.Count > capacity)
        {
            _recent.Last!.Value.Model.Dispose();
            _recent.RemoveLast();
        }
        return model;
    }

    /// <summary>A private copy the caller owns (and may train).</summary>
    public static DecoderLM Owned(string folder, Device device) => HfCheckpoint.Load(folder, device);

    public void Dispose()
    {
        foreach (var (_, model) in _recent) model.Dispose();
        _recent.Clear();
    }
}
