using OnlineAlign.Specs;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>
/// PEFT LoRA adapter folders: adapter_config.json plus adapter_model.safetensors with PEFT's key names, so what
/// OnlineAlign saves loads with PeftModel.from_pretrained, and an adapter trained with PEFT can start a run.
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";

    public static bool IsAdapterFolder(string folder) => File.Exists(Path.Combine(folder, ConfigFile));

    /// <summary>Writes the model's adapters (float32) and their config; <paramref name="baseModel"/> is what PEFT loads them onto.</summary>
    public static void Save(DecoderLM model, string folder, string baseModel)
    {
        var settings = model.Lora ?? throw new InvalidOperationException("the model has no LoRA adapters to save");
        Directory.CreateDirectory(folder);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel,
            ["r"] = settings.Rank,
            ["lora_alpha"] = settings.Alpha,
            ["lora_dropout"] = settings.Dropout,
            ["target_modules"] = new JsonArray(settings.TargetModules.Select(m => (JsonNode)m).ToArray()),
            ["bias"] = "none",
            ["use_rslora"] = settings.UseRslora,
            ["use_dora"] = false,
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["modules_to_save"] = null,
            ["layers_to_transform"] = null,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
        };
        File.WriteAllText(Path.Combine(folder, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        SafeTensors.Write(Path.Combine(folder, WeightsFile), model.AdapterTensors(), new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>The adapter's settings, refusing PEFT options OnlineAlign does not implement (each named with its file).</summary>
    public static LoraSpec ReadSettings(string folder)
    {
        string path = Path.Combine(folder, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{folder}' has no {ConfigFile} (not a PEFT adapter folder)", path);
        JsonObject json;
        try { json = JsonNode.Parse(ModelFile.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: the top level must be a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e); }
        try
        {
            string peftType = json["peft_type"]?.GetValue<string>() ?? "";
            if (peftType != "LORA") throw new NotSupportedException($"{path}: peft_type '{peftType}' is not supported (only LORA)");
            void Refuse(string field, bool unsupported, string what)
            {
                if (unsupported) throw new NotSupportedException($"{path}: {field} {json[field]!.ToJsonString()} is not supported ({what})");
            }
            Refuse("use_dora", json["use_dora"]?.GetValue<bool>() == true, "DoRA");
            Refuse("bias", (json["bias"]?.GetValue<string>() ?? "none") != "none", "only bias \"none\"");
            Refuse("fan_in_fan_out", json["fan_in_fan_out"]?.GetValue<bool>() == true, "Conv1D layers");
            Refuse("modules_to_save", json["modules_to_save"] is JsonArray { Count: > 0 }, "fully trained extra modules");
            Refuse("layers_to_transform", json["layers_to_transform"] is JsonArray or JsonValue, "adapters on some layers only");
            Refuse("rank_pattern", json["rank_pattern"] is JsonObject { Count: > 0 }, "per-layer ranks");
            Refuse("alpha_pattern", json["alpha_pattern"] is JsonObject { Count: > 0 }, "per-layer alphas");
            var targets = json["target_modules"] switch
            {
                JsonArray list => list.Select(t => t!.GetValue<string>()).ToList(),
                JsonValue one => throw new NotSupportedException($"{path}: target_modules as a pattern ('{one}') is not supported; list the module names"),
                _ => throw new InvalidDataException($"{path}: target_modules is missing"),
            };
            var settings = new LoraSpec
            {
                Rank = json["r"]?.GetValue<int>() ?? throw new InvalidDataException($"{path}: r is missing"),
                Alpha = json["lora_alpha"]?.GetValue<double>() ?? 8,
                Dropout = json["lora_dropout"]?.GetValue<double>() ?? 0,
                TargetModules = targets,
                UseRslora = json["use_rslora"]?.GetValue<bool>() ?? false,
            };
            var problems = settings.Problems(SpecLimits.Default, path);
            if (problems.Count > 0) throw new InvalidDataException(string.Join("; ", problems));
            return settings;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: a field has the wrong type: {e.Message}", e);
        }
    }

    /// <summary>
    /// Adds the folder's adapters to a base model and loads their weights, refusing a missing, unexpected or mis-shaped
    /// tensor by name. The model must not have adapters yet.
    /// </summary>
    public static DecoderLM Load(DecoderLM model, string folder)
    {
        var settings = ReadSettings(folder);
        string path = Path.Combine(folder, WeightsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{folder}' has no {WeightsFile}", path);
        var tensors = SafeTensors.Read(path);
        try
        {
            using (var generator = new Generator(0)) model.AddAdapters(settings, generator); // A is overwritten below
            StrictCopy.Into(model.AdapterTensors(), tensors, path, "the adapter does not match the model", "the model");
            return model;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
