using System.CommandLine;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Checkpoints;

namespace OnlineAlign.Cli.Commands;

/// <summary>
/// `onlinealign merge-adapter`: a LoRA run's exported round (a PEFT adapter folder) merged into its base, written as a
/// plain Hugging Face folder (W + scaling B A) for tools that know no adapters (vLLM without LoRA, llama.cpp).
/// </summary>
public static class MergeAdapterCommand
{
    private static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"];

    public static Command Create()
    {
        var baseFolder = new Option<string>("--base") { Description = "the base model folder: the export's base/ subfolder (or the run's " +
            "model.hf_folder, or its exported round 0, a plain base)", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "a PEFT adapter folder (an exported later round of a LoRA run, round 0's " +
            "adapter/ subfolder, or PEFT's save_pretrained)", Required = true };
        var output = new Option<string>("--out") { Description = "the merged folder to write (must not exist yet)", Required = true };
        var command = new Command("merge-adapter", "Merge a LoRA adapter into its base model and write a Hugging Face folder") { baseFolder, adapter, output };
        command.SetAction(parse =>
        {
            string target = parse.GetValue(output)!;
            if (Directory.Exists(target) || File.Exists(target))
                throw new ArgumentException($"--out '{target}' already exists; name a new folder (nothing is overwritten)");
            string source = parse.GetValue(baseFolder)!;
            string adapterFolder = parse.GetValue(adapter)!;
            using var confined = CommandFiles.Confine(source, adapterFolder);
            using var model = PeftAdapter.Load(HfCheckpoint.Load(source, TorchSharp.torch.CPU), adapterFolder);
            // Written beside the target and renamed, so an interrupted merge never leaves a folder that looks complete.
            string staging = target + ".partial-" + Guid.NewGuid().ToString("N")[..8];
            var tokenizerFiles = TokenizerFiles
                .Select(name => Path.Combine(source, name)).Where(File.Exists).Select(path => (Path.GetFileName(path), ModelFile.ReadAllText(path))).ToList();
            HfCheckpoint.Save(model, staging, tokenizerFiles);
            Directory.Move(staging, target);
            Console.WriteLine($"merged {model.Adapted().Count()} adapted layers (r {model.Lora!.Rank}, scaling {model.Lora.Scaling:G4}) into " +
                $"{Path.GetFullPath(target)}");
            return 0;
        });
        return command;
    }
}
