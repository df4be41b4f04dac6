using System.Text.Json;
using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using static TorchSharp.torch;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// The synchronous tensor work behind each phase, run on the worker's model thread. Inputs are local
/// checkpoint folders (by manifest hash) and phase outputs already read from storage; nothing here awaits.
/// </summary>
public static class RoundJob
{
    /// <summary>What a phase job gets: its request, the local folder of each checkpoint it names, and where to report progress.</summary>
    public sealed record Context(PhaseRequest Request, IReadOnlyDictionary<string, string> Folders, Device Device, ModelCache Models,
        Action<string, int, int> Progress, CancellationToken Cancellation)
    {
        public RunSpec Spec => Request.Spec;
        public RoundSettings Settings => RunSpecMapping.ToRoundSettings(Request.Spec) with
        {
            // Judge and evaluation rows can be as long as the context: planned for that.
            Sampling = Spec.Sampling with
            {
                BatchSize = Spec.Sampling.BatchSize > 0 ? Spec.Sampling.BatchSize
                    : BatchRows(Spec, Shared(Request.Policy), Math.Min(4096, Shared(Request.Policy).Config.MaxPositions)),
            },
        };
        public string Folder(BlobRef checkpoint) => Folders[checkpoint.Sha256];
        public DecoderLM Shared(BlobRef checkpoint) => Models.Shared(Folder(checkpoint), checkpoint.Sha256, Device, Folder(Request.Initial));
        public ITextTokenizer Tokenizer => TokenizerLoader.Load(Folder(Request.Policy), Spec.Model.ChatTemplate);
    }

    /// <summary>
    /// The round-0 checkpoint: the model folder's weights, or a built-in model after its warm start; in a LoRA run with
    /// the adapter it will train beside them (PEFT's initialisation from the run's seed, or the PEFT folder it starts from).
    /// </summary>
    public static void Prepare(RunSpec spec, Device device, string outputFolder, CancellationToken cancellationToken)
    {
        ITextTokenizer tokenizer;
        DecoderLM model;
        if (!string.IsNullOrEmpty(spec.Model.HfFolder))
        {
            tokenizer = TokenizerLoader.Load(spec.Model.HfFolder, spec.Model.ChatTemplate);
            model = HfCheckpoint.Load(spec.Model.HfFolder, device);
        }
        else
        {
            tokenizer = new ByteTokenizer();
            var config = BuiltinModels.ByName(spec.Model.Builtin);
            model = (spec.SftSteps > 0
                ? WarmStart.Train(config, tokenizer, BuiltinTasks.ByName(spec.Prompts.Task), RunSpecMapping.WarmStartSettings(spec), (int)(spec.Seed % int.MaxValue), out _,
                    cancellationToken)
                : BuiltinModels.Create(config, (long)spec.Seed)).Place(device);
        }
        using (model)
        {
            // The folder may have changed since the spec check: its tokenizer's ids must fit the model as loaded.
            if (!string.IsNullOrEmpty(spec.Model.HfFolder))
                VocabularyCheck.Require(tokenizer, model.Config, VocabularyCheck.Source(spec.Model.HfFolder), Path.Combine(spec.Model.HfFolder, "config.json"));
            if (spec.Model.Lora?.AdapterFolder is { } adapter) PeftAdapter.Load(model, adapter);
            else if (RunSpecMapping.Lora(spec) is { } lora)
                using (var generator = new Generator(Seeds.For(spec.Seed, 0, -3, 0))) model.AddAdapters(lora, generator);
            Save(model, tokenizer, spec, 0, outputFolder, null, baseFolder: null);
        }
    }

    /// <summary>
    /// M0: the model a built-in run's warm start began from (the same seed gives the same weights), or null where
    /// there was no warm start (a Hugging Face model, or sft_steps 0).
    /// </summary>
    public static DecoderLM? BeforeWarmStart(RunSpec spec, Device device) =>
        string.IsNullOrEmpty(spec.Model.HfFolder) && spec.SftSteps > 0
            ? BuiltinModels.Create(BuiltinModels.ByName(spec.Model.Builtin), (int)(spec.Seed % int.MaxValue)).Place(device)
            : null;

    /// <summary>Samples the responses of some of the round's prompts (a shard); the result is the same whichever replica runs it.</summary>
    /// <param name="initialFolder">the run's round-0 folder (the base of a LoRA run's adapter-only checkpoints)</param>
    public static List<List<int[]>> Generate(GenerationRequest request, string policyFolder, string? initialFolder, Device device, ModelCache models,
        CancellationToken cancellationToken)
    {
        var policy = models.Shared(policyFolder, request.Policy.Sha256, device, initialFolder);
        var tokenizer = TokenizerLoader.Load(policyFolder, request.Spec.Model.ChatTemplate);
        var (_, prompts, indices) = RoundPrompts(request.Spec, request.Round);
        var shard = request.PromptPositions.Select(p => prompts[p]).ToList();
        // Planning the batch needs the longest prompt's tokens; a spec's fixed batch size does not.
        int longest = request.Spec.Sampling.BatchSize > 0 || shard.Count == 0 ? 1
            : shard.Max(p => Alignment.Training.Examples.PromptIds(tokenizer, p.Prompt).Length);
        var settings = RunSpecMapping.ToRoundSettings(request.Spec) with
        {
            Sampling = request.Spec.Sampling with { BatchSize = BatchRows(request.Spec, policy, longest + request.Spec.Sampling.MaxNewTokens) },
        };
        var groups = RoundPhases.Generate(policy, tokenizer, shard, request.PromptPositions.Select(p => indices[p]).ToList(), settings,
            request.Spec.Seed, request.Round, cancellationToken);
        return groups.Select(g => g.ResponseIds.ToList()).ToList();
    }

    /// <summary>The round's responses with their prompts, as text and ids (what a remote judge is asked about).</summary>
    public static IReadOnlyList<ResponseGroup> Groups(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses) =>
        RoundPhases.Groups(c.Tokenizer, RoundPrompts(c.Spec, c.Request.Round).Prompts, responses);

    /// <param name="remote">judge.kind remote: the scores read from the remote judge's answers (asked by the worker)</param>
    public static JudgeOutcome Judge(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, JudgeResult? remote = null)
    {
        var r = c.Request;
        var tokenizer = c.Tokenizer;
        var (task, prompts, _) = RoundPrompts(c.Spec, r.Round);
        var groups = RoundPhases.Groups(tokenizer, prompts, responses);
        if (c.Spec.Judge.Kind == "remote")
        {
            // A fixed judge outside the policy: no previous round's judge to compare with, and no drift to probe.
            var judged = RoundPhases.Judge(groups, new ScoredJudge("remote", remote ?? throw new ArgumentException(
                "judge.kind 'remote' is asked over HTTP by the cluster's worker; a run in one process (InProcessRun) cannot use it")),
                null, c.Settings, task, tokenizer.Chat.EndOfResponse, c.Cancellation);
            judged.Metrics[HealthSignals.JudgeDriftTau] = double.NaN;
            return judged;
        }
        // CREAM's first round: the warm-started policy M1 was trained from M0, so round 1 already compares M1's
        // implicit reward (log pi_M1 - log pi_M0) with M0's length-normalised log-likelihood ranking; self_consistent's
        // implicit reward in round 1 is the same log pi_M1 - log pi_M0. Round 2: the previous judge is M1 judging as it
        // did in round 1, so M0 is needed again. A model folder has no M0: the policy's likelihood stands in.
        // The judge-drift probe's round-0 judge is round 1's, which needs M0 in every round.
        bool needsM0 = c.Settings.Judge.Kind is "implicit" or "self_consistent"
            && (r.TrainedFrom is null || r.TrainedFromBefore is null || c.Spec.Guard.ProbePrompts > 0);
        using var beforeWarmStart = needsM0 ? BeforeWarmStart(c.Spec, c.Device) : null;
        var trainedFrom = r.TrainedFrom is null ? beforeWarmStart : c.Shared(r.TrainedFrom);
        var trainedFromBefore = r.TrainedFromBefore is not null ? c.Shared(r.TrainedFromBefore) : r.TrainedFrom is null ? null : beforeWarmStart;
        var initial = c.Shared(r.Initial);
        using var reward = c.Spec.Judge.Kind == "reward_model" ? RewardModel.Load(c.Spec.Judge.RewardModelFolder!, c.Device) : null;
        if (reward is not null)
            VocabularyCheck.Require(tokenizer, reward.backbone.Config, "the policy's tokenizer", Path.Combine(c.Spec.Judge.RewardModelFolder!, "config.json"));
        c.Progress("judge", 0, groups.Count);
        IJudge JudgeAt(int round) => JudgeFactory.Create(c.Settings, c.Shared(r.Policy),
            JudgeFactory.ImplicitReference(c.Spec.Reference, trainedFrom, initial, r.Policy.Sha256 == r.Initial.Sha256), tokenizer, task, reward, c.Spec.Seed, round, initial);
        var outcome = RoundPhases.Judge(groups, JudgeAt(r.Round),
            // M0 was trained from nothing: its judgement is its length-normalised log-likelihood.
            JudgeFactory.Previous(c.Settings, trainedFrom, r.TrainedFrom is null ? null
                : JudgeFactory.ImplicitReference(c.Spec.Reference, trainedFromBefore, initial, r.TrainedFrom.Sha256 == r.Initial.Sha256), tokenizer, task, c.Spec.Seed, r.Round),
            c.Settings, task, tokenizer.Chat.EndOfResponse, c.Cancellation);
        outcome.Metrics[HealthSignals.JudgeDriftTau] = JudgeProbe.DriftTau(c, tokenizer, initial, JudgeAt,
            () => JudgeFactory.Create(c.Settings, initial, JudgeFactory.ImplicitReference(c.Spec.Reference, beforeWarmStart, initial, policyIsInitial: true),
                tokenizer, task, reward, c.Spec.Seed, 1, initial));
        return outcome;
    }

    public static PairsOutcome Pairs(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, JudgeOutcome judged)
    {
        var tokenizer = c.Tokenizer;
        var (_, prompts, _) = RoundPrompts(c.Spec, c.Request.Round);
        c.Progress("pairs", 0, prompts.Count);
        return RoundPhases.Pairs(RoundPhases.Groups(tokenizer, prompts, responses), judged, c.Settings, c.Shared(c.Request.Reference),
            c.Spec.Seed, c.Request.Round, Math.Max(0, tokenizer.PadId), c.Cancellation);
    }

    /// <summary>Trains a private copy of P_r and writes P_{r+1}'s checkpoint folder (weights, optimiser state, run state).</summary>
    public static TrainOutcome Train(Context c, PairsOutcome pairs, string outputFolder)
    {
        var tokenizer = c.Tokenizer;
        string policyFolder = c.Folder(c.Request.Policy);
        using var policy = c.Models.Owned(policyFolder, c.Device, c.Folder(c.Request.Initial));
        policy.GradientCheckpointing = c.Spec.Optimizer.GradientCheckpointing;
        using var optimizer = c.Spec.Optimizer.CarryState ? OptimizerState.Load(Path.Combine(policyFolder, OptimizerState.FileName)) : new OptimizerState();
        c.Progress("train", 0, 1);
        var trained = RoundPhases.Train(policy, pairs, c.Settings, c.Spec.Seed, c.Request.Round, Math.Max(0, tokenizer.PadId),
            (done, total) => c.Progress("train", done, total), optimizer, c.Cancellation);
        Save(policy, tokenizer, c.Spec, c.Request.Round, outputFolder, optimizer, c.Folder(c.Request.Initial));
        TrainingSteps.Write(Path.Combine(outputFolder, TrainingSteps.FileName), trained.Steps);
        return trained;
    }

    public static Dictionary<string, double> Evaluate(Context c)
    {
        var r = c.Request;
        var task = RunSpecMapping.Task(c.Spec);
        var evalPrompts = RunSpecMapping.EvalPrompts(c.Spec);
        c.Progress("evaluate", 0, evalPrompts.Count);
        return RoundPhases.Evaluate(c.Shared(r.Trained!), c.Shared(c.Request.Reference), c.Shared(r.Initial), c.Tokenizer, task, evalPrompts,
            c.Spec.Sampling.MaxNewTokens, c.Spec.Seed + (ulong)r.Round, c.Settings.Sampling.BatchSize, c.Cancellation);
    }

    /// <summary>The planned decode batch for a loaded model (one owner: <see cref="MemoryPlanning.GenerationRows"/>).</summary>
    public static int BatchRows(RunSpec spec, DecoderLM model, int tokensPerRow) =>
        MemoryPlanning.GenerationRows(spec, model.Config, MemoryPlanning.DTypeBytes(model.DType), tokensPerRow, DeviceMemory.Total(model.Device));

    /// <summary>The round's prompts: positions 0..P-1 map to indices into the run's fixed, seeded prompt order.</summary>
    public static (IVerifiableTask? Task, List<PromptItem> Prompts, List<int> Indices) RoundPrompts(RunSpec spec, int round)
    {
        var (task, all) = RunSpecMapping.TrainingPrompts(spec);
        // The data cursor is the round: round r uses prompts [(r-1)P, rP) of a fixed, seeded order (wrapping around).
        var indices = Enumerable.Range((round - 1) * spec.PromptsPerRound, spec.PromptsPerRound).Select(i => i % all.Count).ToList();
        return (task, indices.Select(i => all[i]).ToList(), indices);
    }

    /// <param name="baseFolder">a LoRA run's round-0 folder, whose base the adapter is saved against (null: this is round 0)</param>
    private static void Save(DecoderLM model, ITextTokenizer tokenizer, RunSpec spec, int round, string folder, OptimizerState? optimizer, string? baseFolder)
    {
        // A LoRA run's checkpoints after round 0 hold only the adapter (a PEFT folder), megabytes where the base is gigabytes.
        string baseName = spec.Model.HfFolder ?? spec.Model.Builtin;
        if (model.Lora is null) HfCheckpoint.Save(model, folder, tokenizer.HfFiles());
        else if (baseFolder is null) PolicyCheckpoint.SaveBase(model, folder, baseName, tokenizer.HfFiles());
        else PolicyCheckpoint.SaveAdapter(model, folder, baseName, baseFolder, tokenizer.HfFiles());
        if (optimizer is { IsEmpty: false }) optimizer.Save(Path.Combine(folder, OptimizerState.FileName));
        // What resuming needs besides the weights and the optimiser: every random draw is derived from
        // (seed, round, prompt, sample), and the data cursor is the round index.
        File.WriteAllText(Path.Combine(folder, "onlinealign_state.json"), JsonSerializer.Serialize(new
        {
            round, seed = spec.Seed, data_cursor = round * spec.PromptsPerRound, reference = spec.Reference,
            rng = "every sample's generator is seeded from (seed, round, prompt index, sample index); pair and batch orders from (seed, round)",
            optimizer = spec.Optimizer.CarryState ? $"AdamW moments in {OptimizerState.FileName}, carried into the next round"
                : $"AdamW moments of this round's update in {OptimizerState.FileName}; the next round starts a fresh optimiser",
        }));
    }
}
