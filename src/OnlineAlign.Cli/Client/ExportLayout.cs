using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Checkpoints;

namespace OnlineAlign.Cli.Client;

/// <summary>
/// Lays out a downloaded LoRA checkpoint the way transformers and PEFT load it on the user's machine. The silo stores a
/// LoRA run's round 0 as base weights with the adapter beside them; with PEFT installed, transformers then follows
/// adapter_config.json's base_model_name_or_path (a silo-local path or a built-in name) instead of loading the folder.
/// So: round 0 becomes a plain base folder with its adapter in <see cref="AdapterFolder"/>; a later round (adapter
/// only) gets its base in <see cref="BaseFolder"/>; and each adapter_config.json names its base by the absolute path
/// it has on this machine (PEFT resolves the name against the working directory, so a relative one would only work
/// from inside the export).
/// </summary>
public static class ExportLayout
{
    /// <summary>In a round-0 export: the adapter the run started from (PEFT's adapter_config.json + weights).</summary>
    public const string AdapterFolder = "adapter";
    /// <summary>In a later round's export: the run's base model (a plain Hugging Face folder).</summary>
    public const string BaseFolder = "base";

    /// <summary>True for a downloaded round 0 of a LoRA run: base weights with a PEFT adapter beside them.</summary>
    public static bool IsLoraBase(string folder) => PolicyCheckpoint.HasWeights(folder) && PeftAdapter.IsAdapterFolder(folder);

    /// <summary>
    /// Moves round 0's adapter files into <see cref="AdapterFolder"/>, leaving a plain base, and points the adapter at
    /// the base's final path <paramref name="finalFolder"/> (the folder is staged elsewhere until it is complete).
    /// </summary>
    public static void SplitBase(string folder, string finalFolder)
    {
        string adapter = Path.Combine(folder, AdapterFolder);
        Directory.CreateDirectory(adapter);
        foreach (var name in new[] { PeftAdapter.ConfigFile, PeftAdapter.WeightsFile })
            File.Move(Path.Combine(folder, name), Path.Combine(adapter, name));
        NameBase(adapter, Path.GetFullPath(finalFolder));
    }

    /// <summary>
    /// A later round: <paramref name="baseDownload"/> (the same run's round 0, as downloaded) becomes
    /// <see cref="BaseFolder"/> without its round-0 adapter (what this folder holds is the later round's), and the
    /// adapter names the base's final path.
    /// </summary>
    public static void AttachBase(string folder, string finalFolder, string baseDownload)
    {
        string target = Path.Combine(folder, BaseFolder);
        Directory.Move(baseDownload, target);
        foreach (var name in new[] { PeftAdapter.ConfigFile, PeftAdapter.WeightsFile })
            File.Delete(Path.Combine(target, name));
        NameBase(folder, Path.Combine(Path.GetFullPath(finalFolder), BaseFolder));
    }

    /// <summary>Rewrites base_model_name_or_path in the adapter folder's adapter_config.json.</summary>
    public static void NameBase(string adapterFolder, string basePath)
    {
        string path = Path.Combine(adapterFolder, PeftAdapter.ConfigFile);
        var config = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
            ?? throw new InvalidDataException($"{path}: the top level must be a JSON object");
        config["base_model_name_or_path"] = basePath;
        File.WriteAllText(path, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
