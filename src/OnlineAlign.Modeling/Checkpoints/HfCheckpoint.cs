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
    /// Streams: the model is built on its device in its dtype first, the names
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
        // Every header checked against the config before a byte of the model is allocated.
        CheckWeights(folder, config);
        var files = WeightFiles(folder);
        var index = new Dictionary<string, (string DType, long[] Shape)>();
        foreach (var file in files)
            foreach (var (name, entry) in SafeTensors.ReadIndex(file))
                index[name] = entry;
        // Built where it will run, in its dtype: no float32 copy on the host to convert and move.
        var model = new DecoderLM(config, device ?? CPU, dtype ?? SafeTensors.DType(index.Values.First().DType, folder));
        try
        {
            var parameters = Parameters(model);
            StrictCopy.CheckNames(parameters, index.ToDictionary(kv => kv.Key, kv => kv.Value.Shape), folder, "checkpoint does not match the config",
                "the config",
                    k => CheckpointShapes.Tolerated(config, k));
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

    /// <summary>
    /// The folder's weight files: model.safetensors, or each shard its index names. A shard name must be a plain file
    /// name inside the folder (an index naming ../../etc/hostname, /etc/hostname or a path through a linked sub-folder is
    /// refused), so every file read is an entry of the folder, checked like the others.
    /// </summary>
    public static IReadOnlyList<string> WeightFiles(string folder)
    {
        string single = Path.Combine(folder, WeightsFile);
        string index = Path.Combine(folder, IndexFile);
        if (File.Exists(single)) return [single];
        if (!File.Exists(index))
            throw new FileNotFoundException($"model folder '{folder}' has neither {WeightsFile} nor {IndexFile}");
        JsonNode? root;
        try { root = JsonNode.Parse(ModelFile.ReadAllText(index)); }
        catch (JsonException e) { throw new InvalidDataException($"{index}: not valid JSON: {e.Message}", e); }
        var map = (root as JsonObject)?["weight_map"] as JsonObject ?? throw new InvalidDataException($"{index}: no 'weight_map' object");
        var shards = new List<string>();
        foreach (var (tensor, value) in map)
        {
            string name = value is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
                : throw new InvalidDataException($"{index}: weight_map '{tensor}' is not a file name string");
            string shard = ModelFile.InFolder(folder, name, index, "shard");
            if (!shards.Contains(shard))
            {
                if (shards.Count >= MaxShards) throw new InvalidDataException($"{index}: names more than {MaxShards} shards");
                shards.Add(shard);
            }
        }
        if (shards.Count == 0) throw new InvalidDataException($"{index}: weight_map names no shard");
        return shards;
    }

    private const int MaxShards = 10_000;

    /// <summary>
    /// Checks the folder's weights against its config from the safetensors headers alone (nothing allocated for a tensor):
    /// each header valid, no tensor in two shards, every tensor the config needs present with its shape, and none it does
    /// not. Every refusal names the file and the tensor.
    /// </summary>
    public static void CheckWeights(string folder, ModelConfig config)
    {
        var found = new Dictionary<string, (string File, TensorEntry Entry)>(StringComparer.Ordinal);
        foreach (var file in WeightFiles(folder))
            foreach (var (name, entry) in SafeTensors.ReadHeader(file).Tensors)
            {
                if (found.TryGetValue(name, out var other)) throw new InvalidDataException($"{file}: tensor '{name}' is also in {other.File}");
                found[name] = (file, entry);
            }
        var expected = CheckpointShapes.Expected(config);
        string source = found.Count == 0 ? Path.Combine(folder, WeightsFile) : found.Values.First().File;
        var missing = expected.Keys.Where(k => !found.ContainsKey(k)).ToList();
        var unexpected = found.Where(kv => !expected.ContainsKey(kv.Key) && !CheckpointShapes.Tolerated(config, kv.Key)).Select(kv =>
            (kv.Key, kv.Value.File)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{(unexpected.Count > 0 ? unexpected[0].File : source)}: checkpoint does not match " +
                $"{Path.Combine(folder, "config.json")}."
                + Names(" Missing", missing) + Names(" Unexpected", unexpected.Select(u => u.Key).ToList()));
        foreach (var (name, shape) in expected)
        {
            var (file, entry) = found[name];
            if (!entry.Shape.SequenceEqual(shape))
                throw new InvalidDataException($"{file}: tensor '{name}' has shape [{string.Join(", ", entry.Shape)}], " +
                    $"{Path.Combine(folder, "config.json")} needs [{string.Join(", ", shape)}]");
        }
    }

    private static string Names(string label, List<string> names) => names.Count == 0 ? ""
        : $"{label}: {string.Join(", ", names.Take(8))}{(names.Count > 8 ? $" and {names.Count - 8} more" : "")}.";

    private static Dictionary<string, Tensor> Parameters(DecoderLM model) =>
        model.state_dict().Where(kv => !LoraAdapters.IsAdapterKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>Copies tensors into the model, refusing missing, unexpected or mis-shaped names.</summary>
    public static void LoadStateStrict(DecoderLM model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        StrictCopy.Into(Parameters(model), tensors, source, "checkpoint does not match the config", "the config",
            k => CheckpointShapes.Tolerated(model.Config, k));
    }

    /// <summary>
    /// Writes config.json, model.safetensors and generation_config.json (and tokenizer files if given). A model with
    /// LoRA adapters is written merged (W + scaling B A): the folder computes what the model computes. Answers the weights
    /// file's sha256, taken as it was written.
    /// </summary>
    public static string Save(DecoderLM model, string folder, IEnumerable<(string Name, string Content)>? tokenizerFiles = null)
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
        string sha256 = SafeTensors.Write(Path.Combine(folder, WeightsFile), state, new Dictionary<string, string> { ["format"] = "pt" });
        foreach (var (name, content) in tokenizerFiles ?? [])
            File.WriteAllText(Path.Combine(folder, name), content);
        return sha256;
    }
}
