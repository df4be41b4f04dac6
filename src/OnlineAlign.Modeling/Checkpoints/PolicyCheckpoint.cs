using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Lora;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>
/// A policy checkpoint folder in one of three forms: a Hugging Face folder (full fine-tuning); a base folder with a PEFT
/// adapter beside its weights (a LoRA run's round 0); or an adapter-only folder (a LoRA run's later rounds) that loads
/// onto the round-0 folder's base, checked by the base weights' sha256.
/// </summary>
public static class PolicyCheckpoint
{
    /// <summary>In an adapter-only folder: the sha256 of the base's model.safetensors it was trained on.</summary>
    public const string BaseFile = "base_model.json";
    /// <summary>In a base folder: the sha256 of its model.safetensors, written when it was saved.</summary>
    public const string WeightsHashFile = "model.safetensors.sha256";

    public static bool HasWeights(string folder) =>
        File.Exists(Path.Combine(folder, HfCheckpoint.WeightsFile)) || File.Exists(Path.Combine(folder, HfCheckpoint.IndexFile));

    public static bool IsAdapterOnly(string folder) => !HasWeights(folder) && PeftAdapter.IsAdapterFolder(folder);

    /// <summary>
    /// The folder holding the base weights a LoRA checkpoint runs on (the folder itself for a round 0, <paramref name="baseFolder"/>
    /// for an adapter-only one); null for a full fine-tuning checkpoint.
    /// </summary>
    public static string? BaseOf(string folder, string? baseFolder) =>
        !PeftAdapter.IsAdapterFolder(folder) ? null
        : HasWeights(folder) ? folder
        : baseFolder ?? throw new InvalidDataException($"'{folder}' holds only a LoRA adapter and no base model folder was given");

    /// <summary>
    /// Loads a checkpoint onto a device. An adapter-only folder needs <paramref name="baseFolder"/>; with
    /// <paramref name="sharedBase"/> (a loaded model over the same base) a LoRA checkpoint's base weights are shared
    /// rather than loaded again.
    /// </summary>
    public static DecoderLM Load(string folder, Device device, string? baseFolder = null, DecoderLM? sharedBase = null)
    {
        string? baseWeights = BaseOf(folder, baseFolder);
        if (baseWeights is null) return HfCheckpoint.Load(folder, device);
        if (baseWeights != folder)
        {
            string expected = RequiredBase(folder);
            string actual = WeightsHash(baseWeights);
            if (expected != actual)
                throw new InvalidDataException($"'{folder}' was trained on base weights {expected[..12]}..., but '{baseWeights}' holds {actual[..12]}...");
        }
        var model = sharedBase is not null ? LoraAdapters.SharingBaseOf(sharedBase) : HfCheckpoint.Load(baseWeights, device);
        return PeftAdapter.Load(model, folder);
    }

    /// <summary>A LoRA run's round 0: the base's weights unmerged, its adapter beside them, and the weights' hash (answered too).</summary>
    public static string SaveBase(DecoderLM model, string folder, string baseName, IEnumerable<(string Name, string Content)> tokenizerFiles)
    {
        string weights;
        using (model.AdaptersOff()) weights = HfCheckpoint.Save(model, folder, tokenizerFiles);
        PeftAdapter.Save(model, folder, baseName);
        File.WriteAllText(Path.Combine(folder, WeightsHashFile), weights);
        return weights;
    }

    /// <summary>A LoRA run's later rounds: the adapter (a PEFT folder), config and tokenizer files, and which base it needs.</summary>
    public static void SaveAdapter(DecoderLM model, string folder, string baseName, string baseFolder,
        IEnumerable<(string Name, string Content)> tokenizerFiles)
    {
        Directory.CreateDirectory(folder);
        PeftAdapter.Save(model, folder, baseName);
        File.WriteAllText(Path.Combine(folder, "config.json"), model.Config.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(folder, BaseFile), new JsonObject { ["weights_sha256"] = WeightsHash(baseFolder) }.ToJsonString());
        foreach (var (name, content) in tokenizerFiles)
            File.WriteAllText(Path.Combine(folder, name), content);
    }

    private static string RequiredBase(string folder)
    {
        string path = Path.Combine(folder, BaseFile);
        if (!File.Exists(path)) throw new InvalidDataException($"'{folder}' holds only a LoRA adapter and no {BaseFile} naming its base");
        return JsonNode.Parse(File.ReadAllText(path))?["weights_sha256"]?.GetValue<string>()
            ?? throw new InvalidDataException($"{path}: no weights_sha256");
    }

    /// <summary>The base weights' sha256: recorded when the folder was saved, computed otherwise (a user's own folder).</summary>
    public static string WeightsHash(string folder)
    {
        string recorded = Path.Combine(folder, WeightsHashFile);
        if (File.Exists(recorded)) return File.ReadAllText(recorded).Trim();
        string weights = Path.Combine(folder, HfCheckpoint.WeightsFile);
        if (!File.Exists(weights)) throw new InvalidDataException($"'{folder}' has no {HfCheckpoint.WeightsFile} to serve as a LoRA base");
        return FileHash(weights);
    }

    private static string FileHash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
