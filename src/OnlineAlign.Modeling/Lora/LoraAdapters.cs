using OnlineAlign.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Lora;

/// <summary>Adds, switches and reads a model's LoRA adapters (one adapter per targeted linear layer).</summary>
public static class LoraAdapters
{
    /// <summary>PEFT's prefix for a causal LM's keys in adapter_model.safetensors.</summary>
    public const string PeftPrefix = "base_model.model.";

    public static bool IsAdapterKey(string name) => name.Contains(".lora_A.") || name.Contains(".lora_B.");

    /// <summary>
    /// Adds an adapter to every targeted layer and freezes everything else: only the adapters train. A is drawn from
    /// <paramref name="generator"/>, B is zero, so the adapted model computes exactly what the base does until it trains.
    /// </summary>
    public static DecoderLM AddAdapters(this DecoderLM model, LoraSpec settings, Generator generator)
    {
        var problems = settings.Problems(SpecLimits.Default, "lora");
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
        if (model.Lora is not null) throw new InvalidOperationException("the model already has adapters");
        int added = 0;
        foreach (var (name, layer) in Layers(model))
        {
            if (!settings.TargetModules.Contains(name[(name.LastIndexOf('.') + 1)..])) continue;
            layer.AddAdapter(settings.Rank, settings.Scaling, settings.Dropout, generator);
            added++;
        }
        if (added == 0) throw new ArgumentException($"lora.target_modules ({string.Join(", ", settings.TargetModules)}) matched no layer");
        foreach (var (name, p) in model.named_parameters())
            p.requires_grad = IsAdapterKey(name);
        model.Lora = settings;
        return model;
    }

    /// <summary>The adapted layers, by their module names (model.layers.0.self_attn.q_proj, ...).</summary>
    public static IEnumerable<(string Name, LoraLinear Layer)> Adapted(this DecoderLM model) =>
        Layers(model).Where(l => l.Layer.HasAdapter);

    /// <summary>The adapters' tensors under PEFT's names (base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight).</summary>
    public static Dictionary<string, Tensor> AdapterTensors(this DecoderLM model)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (name, layer) in model.Adapted())
        {
            tensors[$"{PeftPrefix}{name}.lora_A.weight"] = layer.AdapterA;
            tensors[$"{PeftPrefix}{name}.lora_B.weight"] = layer.AdapterB;
        }
        return tensors;
    }

    /// <summary>
    /// While the scope lives the model is its base: the reference and the judge of a LoRA run need no second copy of
    /// the weights. Switching back restores each layer as it was.
    /// </summary>
    public static IDisposable AdaptersOff(this DecoderLM model)
    {
        var layers = model.Adapted().Select(l => (l.Layer, l.Layer.AdapterEnabled)).ToList();
        foreach (var (layer, _) in layers) layer.AdapterEnabled = false;
        return new Restore(() => { foreach (var (layer, enabled) in layers) layer.AdapterEnabled = enabled; });
    }

    /// <summary>Dropout on the adapters' inputs, with masks from <paramref name="generator"/>, while the scope lives (training).</summary>
    public static IDisposable AdapterDropout(this DecoderLM model, Generator generator)
    {
        var layers = model.Adapted().Select(l => l.Layer).ToList();
        foreach (var layer in layers) layer.DropoutGenerator = generator;
        return new Restore(() => { foreach (var layer in layers) layer.DropoutGenerator = null; });
    }

    /// <summary>The model's weights under transformers' names with every adapter that is on merged in (W + scaling B A).</summary>
    public static Dictionary<string, Tensor> MergedState(this DecoderLM model)
    {
        var merged = model.Adapted().Where(l => l.Layer.AdapterEnabled).ToDictionary(l => l.Name + ".weight", l => l.Layer.MergedWeight());
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, tensor) in model.state_dict())
            if (!IsAdapterKey(name)) state[name] = merged.GetValueOrDefault(name) ?? tensor;
        return state;
    }

    /// <summary>
    /// A new model over the same base weights as <paramref name="source"/> (its tensors' storage shared, not copied) and
    /// without adapters: a LoRA run keeps one copy of the frozen base however many adapted models it holds.
    /// </summary>
    public static DecoderLM SharingBaseOf(DecoderLM source)
    {
        var model = new DecoderLM(source.Config);
        using var noGrad = no_grad();
        var shared = source.state_dict();
        foreach (var (name, p) in model.state_dict())
            if (!IsAdapterKey(name)) p.set_(shared[name]);
        return model.Placed(source.Device, source.DType);
    }

    private static IEnumerable<(string Name, LoraLinear Layer)> Layers(DecoderLM model) =>
        model.named_modules().Where(m => m.module is LoraLinear).Select(m => (m.name, (LoraLinear)m.module));

    private sealed class Restore(Action restore) : IDisposable
    {
        private Action? _restore = restore;
        public void Dispose() { _restore?.Invoke(); _restore = null; }
    }
}
