using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using OnlineAlign.Modeling.Lora;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>
/// Hugging Face model folders: config.json plus model.safetensors or a sharded
/// model.safetensors.index.json. Loading checks names strictly; saving writes what transformers loads.
/// </summary>
public static class HfCheckpoint
{
    public const string WeightsFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>Loads a model folder onto a device, in the given dtype (null: the checkpoint's dtype, F32 for F16 on CPU).</summary>
    /// <remarks>
    /// Streams: the model is built and placed first (its float32 construction on the host freed as it moves), the names
    /// and shapes are checked against the files' headers, then each tensor is read into one staging tensor, copied into
    /// its parameter and disposed before the next. The host never holds the whole checkpoint beside the model.
    /// </remarks>
    /// <param name="staging">counts the staging bytes (a test's or benchmark's view of the loader's peak)</param>
    public static DecoderLM Load(string folder, Device? device = null, ScalarType? dtype = null, StagingCounter? staging = null)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"model folder '{folder}' does not exist");
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"model folder '{folder}' has no config.json", configPath);
        var config = ModelConfig.Load(configPath);
        var files = WeightFiles(folder);
        var index = new Dictionary<string, (string DType, long[] Shape)>();
        foreach (var file in files)
            foreach (var (name, entry) in SafeTensors.ReadIndex(file))
                index[name] = entry;
        if (index.Count == 0) throw new InvalidDataException($"model folder '{folder}' holds no tensors");
        var model = new DecoderLM(config);
        try
        {
            var parameters = Parameters(model);
            StrictCopy.CheckNames(parameters, index.ToDictionary(kv => kv.Key, kv => kv.Value.Shape), folder, "checkpoint does not match the config", "the config",
                    k => Tolerated(model, k));
            model.Place(device, dtype ?? SafeTensors.DType(index.Values.First().DType, folder));
            parameters = Parameters(model); // placing replaced the tensors
            using var noGrad = no_grad();
            foreach (var file in files)
                SafeTensors.ReadEach(file, (name, tensor) =>
                {
                    if (parameters.TryGetValue(name, out var p)) p.copy_(tensor);
                }, staging);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The safetensors files of a model folder: model.safetensors, or the shards its index names.</summary>
    public static List<string> WeightFiles(string folder)
    {
        string single = Path.Combine(folder, WeightsFile);
        string index = Path.Combine(folder, IndexFile);
        if (File.Exists(single)) return [single];
        if (!File.Exists(index))
            throw new FileNotFoundException($"model folder '{folder}' has neither {WeightsFile} nor {IndexFile}");
        var map = (JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as JsonObject)
            ?? throw new InvalidDataException($"{index}: no 'weight_map' object");
        return map.Select(kv => kv.Value!.GetValue<string>()).Distinct().Select(shard => Path.Combine(folder, shard)).ToList();
    }

    private static Dictionary<string, Tensor> Parameters(DecoderLM model) =>
        model.state_dict().Where(kv => !LoraAdapters.IsAdapterKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);

    // transformers drops lm_head.weight from tied checkpoints and may keep rotary buffers: both are fine.
    private static bool Tolerated(DecoderLM model, string key) =>
        key.EndsWith("rotary_emb.inv_freq") || (key == "lm_head.weight" && model.Config.TieWordEmbeddings);

    /// <summary>Copies tensors into the model, refusing missing, unexpected or mis-shaped names.</summary>
    public static void LoadStateStrict(DecoderLM model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        StrictCopy.Into(Parameters(model), tensors, source, "checkpoint does not match the config", "the config", k => Tolerated(model, k));
    }

    /// <summary>
    /// Writes config.json, model.safetensors and generation_config.json (and tokenizer files if given). A model with
    /// LoRA adapters is written merged (W + scaling B A): the folder computes what the model computes.
    /// </summary>
    public static void Save(DecoderLM model, string folder, IEnumerable<(string Name, string Content)>? tokenizerFiles = null)
    {
        using var scope = NewDisposeScope(); // the merged weights, if any
        Directory.CreateDirectory(folder);
        var dtypeName = model.DType switch
        {
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            _ => "float32",
        };
        var config = model.Config with { TorchDtype = dtypeName };
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var generation = new JsonObject();
        if (config.BosTokenId >= 0) generation["bos_token_id"] = config.BosTokenId;
        if (config.EosTokenId >= 0) generation["eos_token_id"] = config.EosTokenId;
        if (config.PadTokenId >= 0) generation["pad_token_id"] = config.PadTokenId;
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), generation.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var state = model.MergedState();
        SafeTensors.Write(Path.Combine(folder, WeightsFile), state, new Dictionary<string, string> { ["format"] = "pt" });
        foreach (var (name, content) in tokenizerFiles ?? [])
            File.WriteAllText(Path.Combine(folder, name), content);
    }
}
