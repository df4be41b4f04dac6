using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Training;
using static TorchSharp.torch;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// Read-only models a worker keeps loaded between the phases of a round (the judge, pairs and evaluate
/// phases share P_r, P_{r-1} and the initial policy), by checkpoint hash. Touched only on the worker's
/// model thread. Callers never dispose what it hands out; models they will train come from <see cref="Owned"/>.
/// LoRA checkpoints over one base share its weights: each model held adds only its adapters.
/// <para>
/// The model the train phase just trained joins it (<see cref="Adopt"/>) under the hash of the checkpoint written from it,
/// so the evaluate phase and the next round use it without reading that checkpoint back: a full fine-tuning model, a LoRA
/// model (its adapters, over the shared base), and a run's carried AdamW moments (optimizer.carry_state: one slot, taken by
/// the next train phase, replaced by the next adoption). A model is found only by the hash a request names: a checkpoint
/// this worker did not write or train (a resume, a fork, another attempt's upload) has another hash and is read from its folder.
/// </para>
/// </summary>
/// <param name="pretrainedCache">where built-in runs' M0 models are kept on disk (<see cref="PretrainedBaseCache"/>): the silo's or the run's own folder</param>
public sealed class ModelCache(string pretrainedCache, int capacity = 4) : IDisposable
{
    public string PretrainedCache { get; } = pretrainedCache;

    private sealed record Entry(string Key, DecoderLM Model, string? BaseFolder);

    private readonly LinkedList<Entry> _recent = new();

    /// <summary>Called with (checkpoint hash, folder) each time a checkpoint is read from its folder (a worker logs it).</summary>
    public Action<string, string>? Loaded { get; init; }

    /// <summary>The checkpoints read from their folders so far, by hash, in order (tests show what was not read back).</summary>
    public List<string> Loads { get; } = new();

    /// <summary>Called with (checkpoint hash, file) each time a checkpoint's carried AdamW moments are read from its file.</summary>
    public Action<string, string>? OptimizerLoaded { get; init; }

    /// <summary>The checkpoints whose AdamW moments were read from their files so far, by hash, in order.</summary>
    public List<string> OptimizerLoads { get; } = new();

    /// <summary>The carried AdamW moments kept with the last adopted checkpoint (its hash), until a train phase takes them.</summary>
    private (string Sha256, OptimizerState State)? _moments;

    /// <summary>Entries a phase counts on (<see cref="Hold"/>), by key: never evicted while held. Released from any thread.</summary>
    private readonly Dictionary<string, int> _held = new(StringComparer.Ordinal);
    private readonly Lock _heldLock = new();

    /// <summary>
    /// Of the checkpoints <paramref name="sha256s"/>, those whose model is in memory here, held in memory until the handle
    /// is disposed: a phase that fetched such a checkpoint without its weights can never find it evicted and read from its
    /// folder. Called on the model thread (it reads the entries); the handle may be disposed anywhere.
    /// </summary>
    public (HashSet<string> Held, IDisposable Handle) Hold(IEnumerable<string> sha256s, Device device)
    {
        var held = sha256s.Where(sha => Find(sha, device, touch: false) is not null).ToHashSet(StringComparer.Ordinal);
        var keys = held.Select(sha => Key(sha, device)).ToList();
        lock (_heldLock) foreach (var key in keys) _held[key] = _held.GetValueOrDefault(key) + 1;
        return (held, new Release(this, keys));
    }

    private sealed class Release(ModelCache cache, List<string> keys) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 1) return;
            lock (cache._heldLock)
                foreach (var key in keys)
                    if (cache._held.TryGetValue(key, out int n) && n > 1) cache._held[key] = n - 1;
                    else cache._held.Remove(key);
        }
    }

    /// <param name="baseFolder">the run's round-0 folder: the base an adapter-only checkpoint loads onto</param>
    public DecoderLM Shared(string folder, string sha256, Device device, string? baseFolder = null)
    {
        if (Find(sha256, device) is { } held) return held.Model;
        var (model, baseWeights) = Load(folder, sha256, device, baseFolder);
        Add(new Entry(Key(sha256, device), model, baseWeights));
        return model;
    }

    /// <summary>
    /// A private copy the caller owns (and may train); a LoRA model's frozen base is shared, its adapters its own. A
    /// checkpoint held here already is copied in memory (the held model is that checkpoint's content).
    /// </summary>
    public DecoderLM Owned(string folder, string sha256, Device device, string? baseFolder = null) =>
        Find(sha256, device, touch: false) is { } held ? ModelCopy.Of(held.Model) : Load(folder, sha256, device, baseFolder).Model;

    /// <summary>
    /// The AdamW moments saved with checkpoint <paramref name="sha256"/> (optimizer.carry_state), for a train phase that starts
    /// from it: the ones kept by <see cref="Adopt"/>, handed over (training replaces them), else read from the folder's file
    /// (an empty state where it has none). The caller owns and disposes what it gets.
    /// </summary>
    public OptimizerState CarriedOptimizer(string folder, string sha256)
    {
        if (_moments is { } held && held.Sha256 == sha256)
        {
            _moments = null;
            return held.State;
        }
        string file = Path.Combine(folder, OptimizerState.FileName);
        var state = OptimizerState.Load(file);
        if (state.IsEmpty) return state;   // no file (round 0, or no steps): nothing was read
        OptimizerLoads.Add(sha256);
        OptimizerLoaded?.Invoke(sha256, file);
        return state;
    }

    /// <summary>Whether checkpoint <paramref name="sha256"/>'s carried AdamW moments are kept here (<see cref="CarriedOptimizer"/> hands them over).</summary>
    public bool HoldsMoments(string sha256) => _moments?.Sha256 == sha256;

    /// <summary>
    /// Keeps what a train phase left in memory as checkpoint <paramref name="sha256"/>, the checkpoint written from it: a copy
    /// of the trained model without gradients (a LoRA model's adapters over its shared base; the caller still owns and
    /// disposes <paramref name="trained"/>'s model) and its carried AdamW moments, taken from it (replacing those kept before).
    /// </summary>
    /// <param name="baseFolder">a LoRA run's round-0 folder (its base weights), so that checkpoints loaded later share them</param>
    public void Adopt(TrainedState trained, string sha256, string? baseFolder)
    {
        if (trained.TakeOptimizer() is { } moments)
        {
            _moments?.State.Dispose();
            _moments = (sha256, moments);
        }
        var model = trained.Model;
        if (Find(sha256, model.Device) is null) Add(new Entry(Key(sha256, model.Device), ModelCopy.Of(model), model.Lora is null ? null : baseFolder));
    }

    private static string Key(string sha256, Device device) => $"{sha256}@{device}";

    private Entry? Find(string sha256, Device device, bool touch = true)
    {
        string key = Key(sha256, device);
        for (var node = _recent.First; node is not null; node = node.Next)
            if (node.Value.Key == key)
            {
                if (touch)
                {
                    _recent.Remove(node);
                    _recent.AddFirst(node);
                }
                return node.Value;
            }
        return null;
    }

    private void Add(Entry entry)
    {
        _recent.AddFirst(entry);
        // Least recently used first, never the one just added; a held entry stays (the cache then holds more than its capacity until it is released).
        for (var node = _recent.Last; node is not null && node != _recent.First && _recent.Count > capacity;)
        {
            var before = node.Previous;
            bool held;
            lock (_heldLock) held = _held.ContainsKey(node.Value.Key);
            if (!held)
            {
                node.Value.Model.Dispose();
                _recent.Remove(node);
            }
            node = before;
        }
    }

    private (DecoderLM Model, string? BaseFolder) Load(string folder, string sha256, Device device, string? baseFolder)
    {
        string? baseWeights = PolicyCheckpoint.BaseOf(folder, baseFolder);
        var sharedBase = baseWeights is null ? null
            : _recent.FirstOrDefault(e => e.BaseFolder == baseWeights && e.Model.Device.ToString() == device.ToString())?.Model;
        var model = PolicyCheckpoint.Load(folder, device, baseFolder, sharedBase);
        Loads.Add(sha256);
        Loaded?.Invoke(sha256, folder);
        return (model, baseWeights);
    }

    public void Dispose()
    {
        foreach (var entry in _recent) entry.Model.Dispose();
        _recent.Clear();
        _moments?.State.Dispose();
        _moments = null;
    }
}
