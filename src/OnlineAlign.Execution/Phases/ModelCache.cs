using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using static TorchSharp.torch;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// Read-only models a worker keeps loaded between the phases of a round (the judge, pairs and evaluate
/// phases share P_r, P_{r-1} and the initial policy), by checkpoint hash. Touched only on the worker's
/// model thread. Callers never dispose what it hands out; models they will train come from <see cref="Owned"/>.
/// LoRA checkpoints over one base share its weights: each model held adds only its adapters.
/// </summary>
/// <param name="pretrainedCache">where built-in runs' M0 models are kept on disk (<see cref="PretrainedBaseCache"/>): the silo's or the run's own folder</param>
public sealed class ModelCache(string pretrainedCache, int capacity = 4) : IDisposable
{
    public string PretrainedCache { get; } = pretrainedCache;

    private sealed record Entry(string Key, DecoderLM Model, string? BaseFolder);

    private readonly LinkedList<Entry> _recent = new();

    /// <param name="baseFolder">the run's round-0 folder: the base an adapter-only checkpoint loads onto</param>
    public DecoderLM Shared(string folder, string sha256, Device device, string? baseFolder = null)
    {
        string key = $"{sha256}@{device}";
        for (var node = _recent.First; node is not null; node = node.Next)
            if (node.Value.Key == key)
            {
                _recent.Remove(node);
                _recent.AddFirst(node);
                return node.Value.Model;
            }
        var (model, baseWeights) = Load(folder, device, baseFolder);
        _recent.AddFirst(new Entry(key, model, baseWeights));
        while (_recent.Count > capacity)
        {
            _recent.Last!.Value.Model.Dispose();
            _recent.RemoveLast();
        }
        return model;
    }

    /// <summary>A private copy the caller owns (and may train); a LoRA model's frozen base is shared, its adapters its own.</summary>
    public DecoderLM Owned(string folder, Device device, string? baseFolder = null) => Load(folder, device, baseFolder).Model;

    private (DecoderLM Model, string? BaseFolder) Load(string folder, Device device, string? baseFolder)
    {
        string? baseWeights = PolicyCheckpoint.BaseOf(folder, baseFolder);
        var sharedBase = baseWeights is null ? null
            : _recent.FirstOrDefault(e => e.BaseFolder == baseWeights && e.Model.Device.ToString() == device.ToString())?.Model;
        return (PolicyCheckpoint.Load(folder, device, baseFolder, sharedBase), baseWeights);
    }

    public void Dispose()
    {
        foreach (var entry in _recent) entry.Model.Dispose();
        _recent.Clear();
    }
}
