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
    public static DecoderLM Load(string folder, Device? device = null, ScalarType? dtype = null)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"model folder '{folder}' does not exist");
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"model folder '{folder}' has no config.json", configPath);
        var config = ModelConfig.Load(configPath);
        var tensors = ReadWeights(folder);
        try
        {
            var model = new DecoderLM(config);
            LoadStateStrict(model, tensors, folder);
            return model.Place(device, dtype ?? tensors.Values.First().dtype);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    public static Dictionary<string, Tensor> ReadWeights(string folder)
    {
        string single = Path.Combine(folder, WeightsFile);
        string index = Path.Combine(folder, IndexFile);
        if (File.Exists(single)) return SafeTensors.Read(single);
        if (!File.Exists(index))
            throw new FileNotFoundException($"model folder '{folder}' has neither {WeightsFile} nor {IndexFile}");
        var map = (JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as JsonObject)
            ?? throw new InvalidDataException($"{index}: no 'weight_map' object");
        var result = new Dictionary<string, Tensor>();
        foreach (var shard in map.Select(kv => kv.Value!.GetValue<string>()).Distinct())
            foreach (var (name, t) in SafeTensors.Read(Path.Combine(folder, shard)))
                result[name] = t;
        return result;
    }

    /// <summary>Copies tensors into the model, refusing missing, unexpected or mis-shaped names.</summary>
    public static void LoadStateStrict(DecoderLM model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var parameters = model.state_dict().Where(kv => !LoraAdapters.IsAdapterKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        // transformers drops lm_head.weight from tied checkpoints and may keep rotary buffers: both are fine.
        StrictCopy.Into(parameters, tensors, source, "checkpoint does not match the config", "the config",
            k => k.EndsWith("rotary_emb.inv_freq") || (k == "lm_head.weight" && model.Config.TieWordEmbeddings));
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
