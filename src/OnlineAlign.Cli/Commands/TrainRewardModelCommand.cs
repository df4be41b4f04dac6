using System.CommandLine;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using Spectre.Console;

namespace OnlineAlign.Cli.Commands;

/// <summary>`onlinealign train-reward-model`: Bradley-Terry training from a JSONL preference file, with held-out accuracy.</summary>
public static class TrainRewardModelCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "JSONL file: {\"prompt\", \"chosen\", \"rejected\"} per line", Required = true };
        var output = new Option<string>("--out") { Description = "folder to write the reward model to", Required = true };
        var model = new Option<string>("--model") { Description = "backbone: a built-in model name (tiny) or a Hugging Face folder",
            DefaultValueFactory = _ => "tiny" };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 300 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 16 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var heldOut = new Option<double>("--held-out") { Description = "fraction of pairs kept for evaluation", DefaultValueFactory = _ => 0.2 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "auto" };
        var command = new Command("train-reward-model", "Train a Bradley-Terry reward model from preference pairs and report held-out accuracy")
        {
            data, output, model, steps, batch, lr, heldOut, seed, device,
        };
        command.SetAction(parse =>
        {
            string file = parse.GetValue(data)!;
            if (!File.Exists(file)) throw new FileNotFoundException($"--data: file '{file}' does not exist");
            var pairs = PreferenceJsonl.Parse(File.ReadLines(file), file);
            string source = parse.GetValue(model)!;
            var dev = DeviceSetting.Resolve(parse.GetValue(device));
            bool folder = Directory.Exists(source);
            using var confined = folder ? CommandFiles.Confine(source) : null;
            ITextTokenizer tokenizer = folder ? TokenizerLoader.Load(source) : new ByteTokenizer();
            var backbone = folder ? HfCheckpoint.Load(source, dev) : BuiltinModels.Create(BuiltinModels.ByName(source), parse.GetValue(seed)).Place(dev);
            using var rm = new RewardModel(backbone);
            var result = RewardModelTrainer.Train(rm, tokenizer, pairs, parse.GetValue(heldOut),
                new OptimizerSettings { LearningRate = parse.GetValue(lr), WeightDecay = 0 }, parse.GetValue(steps), parse.GetValue(batch),
                    parse.GetValue(seed));
            rm.Save(parse.GetValue(output)!, tokenizer.HfFiles());
            AnsiConsole.MarkupLine($"trained on {result.TrainPairs} pairs: loss {result.Losses[0]:F3} -> {result.Losses[^1]:F3}, " +
                                   $"train accuracy {result.TrainAccuracy:P1}, held-out accuracy [bold]{result.HeldOutAccuracy:P1}[/] on " +
                                       $"{result.HeldOutPairs} pairs");
            AnsiConsole.MarkupLine($"reward model: {Path.GetFullPath(parse.GetValue(output)!)}");
            return 0;
        });
        return command;
    }
}
