using System.Text.Json;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using static TorchSharp.torch;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// The synchronous tensor work behind the worker grain, run on its model thread: build the initial
/// policy, or run one round from checkpoint folders and write the new policy's folder.
/// </summary>
public static class RoundJob
{
    public static void Prepare(RunSpec spec, Device device, string outputFolder)
    {
        if (!string.IsNullOrEmpty(spec.HfFolder))
        {
            using var loaded = HfCheckpoint.Load(spec.HfFolder, device);
            Save(loaded, TokenizerLoader.Load(spec.HfFolder), spec, 0, outputFolder);
            return;
        }
        var tokenizer = new ByteTokenizer();
        var config = BuiltinModels.ByName(spec.BuiltinModel);
        using var model = spec.SftSteps > 0
            ? WarmStart.Train(config, tokenizer, BuiltinTasks.ByName(spec.Task), new WarmStart.Settings(Steps: spec.SftSteps, Noise: spec.SftNoise), (int)(spec.Seed % int.MaxValue), out _)
            : BuiltinModels.Create(config, (long)spec.Seed);
        Save(model.Place(device), tokenizer, spec, 0, outputFolder);
    }

    /// <summary>The round's prompts: positions 0..P-1 map to indices into the run's fixed, seeded prompt order.</summary>
    private static (IVerifiableTask? Task, List<PromptItem> Prompts, List<int> Indices) RoundPrompts(RunSpec spec, int round)
    {
        var (task, all) = Prompts(spec);
        // The data cursor is the round: round r uses prompts [(r-1)P, rP) of a fixed, seeded order (wrapping around).
        var indices = Enumerable.Range((round - 1) * spec.PromptsPerRound, spec.PromptsPerRound).Select(i => i % all.Count).ToList();
        return (task, indices.Select(i => all[i]).ToList(), indices);
    }

    /// <summary>Samples the responses of some of the round's prompts (a shard); the result is the same whichever replica runs it.</summary>
    public static List<List<int[]>> Generate(GenerationRequest request, string policyFolder, Device device)
    {
        using var policy = HfCheckpoint.Load(policyFolder, device);
        var tokenizer = TokenizerLoader.Load(policyFolder);
        var (_, prompts, indices) = RoundPrompts(request.Spec, request.Round);
        var groups = RoundPhases.Generate(policy, tokenizer, request.PromptPositions.Select(p => prompts[p]).ToList(),
            request.PromptPositions.Select(p => indices[p]).ToList(), RunSpecMapping.ToRoundSettings(request.Spec), request.Spec.Seed, request.Round);
        return groups.Select(g => g.ResponseIds.ToList()).ToList();
    }

    public static RoundReport Run(RoundRequest request, IReadOnlyDictionary<string, string> folders, Device device, string outputFolder,
        Action<string, int, int> progress, IReadOnlyList<IReadOnlyList<int[]>>? responses = null)
    {
        var spec = request.Spec;
        DecoderLM Load(ModelPointer p) => HfCheckpoint.Load(folders[p.Sha256], device);
        var tokenizer = TokenizerLoader.Load(folders[request.Policy.Sha256]);
        using var models = new RunModels
        {
            Policy = Load(request.Policy),
            Initial = Load(request.Initial),
            TrainedFrom = request.TrainedFrom is null ? null : Load(request.TrainedFrom),
            TrainedFromBefore = request.TrainedFromBefore is null ? null : Load(request.TrainedFromBefore),
        };
        var (task, prompts, indices) = RoundPrompts(spec, request.Round);
        var evalPrompts = task is null ? [] : task.Prompts(spec.EvalPrompts, (int)(spec.Seed % int.MaxValue), "eval");
        var earlier = request.Earlier.Select(r => new RoundReport(r.Round, r.Metrics, r.Warnings, [])).ToList();
        using var reward = spec.Judge == "reward_model" ? RewardModel.Load(spec.RewardModelFolder!, device) : null;
        var report = OnlineRound.Run(models, new OnlineRound.Inputs(RunSpecMapping.ToRoundSettings(spec), tokenizer, task,
            prompts, indices, evalPrompts, spec.Reference, spec.Seed, request.Round, earlier, responses, reward), progress);
        Save(models.Policy, tokenizer, spec, request.Round, outputFolder);
        return report;
    }

    private static (IVerifiableTask? Task, IReadOnlyList<PromptItem> Prompts) Prompts(RunSpec spec)
    {
        if (!string.IsNullOrEmpty(spec.PromptsJsonl))
            return (null, JsonlPrompts.Parse(File.ReadLines(spec.PromptsJsonl), spec.PromptsJsonl));
        var task = BuiltinTasks.ByName(spec.Task);
        return (task, task.Prompts(spec.Rounds * spec.PromptsPerRound, (int)(spec.Seed % int.MaxValue) + 1000, "train"));
    }

    private static void Save(DecoderLM model, ITextTokenizer tokenizer, RunSpec spec, int round, string folder)
    {
        HfCheckpoint.Save(model, folder, tokenizer.HfFiles());
        // What resuming needs besides the weights: every random draw is derived from (seed, round, prompt, sample),
        // the data cursor is the round index, and the optimiser starts fresh each round.
        File.WriteAllText(Path.Combine(folder, "onlinealign_state.json"), JsonSerializer.Serialize(new
        {
            round, seed = spec.Seed, data_cursor = round * spec.PromptsPerRound, reference = spec.Reference,
            optimizer = "AdamW state starts fresh each round; none carried between rounds",
        }));
    }
}
