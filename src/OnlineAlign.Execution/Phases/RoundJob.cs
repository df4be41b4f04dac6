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
    /// <param name="pretrainedCache">where a built-in run's M0 is kept between phases (<see cref="PretrainedBaseCache"/>)</param>
    /// <returns>the sha256 of the folder's large files, by name, taken as they were written (<see cref="Save"/>)</returns>
    public static IReadOnlyDictionary<string, string> Prepare(RunSpec spec, Device device, string outputFolder, string pretrainedCache,
        CancellationToken cancellationToken)
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
                ? WarmStart.Train(config, tokenizer, BuiltinTasks.ByName(spec.Prompts.Task),
                    RunSpecMapping.WarmStartSettings(spec), (int)(spec.Seed % int.MaxValue), out _,
                    cancellationToken, BeforeWarmStartOnCpu(spec, pretrainedCache, cancellationToken))
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
            return Save(model, tokenizer, spec, 0, outputFolder, null, baseFolder: null);
        }
    }

    /// <summary>A built-in run's M0 on the CPU, where the warm start trains: the copy the judge phases load (PretrainedBaseCache).</summary>
    private static DecoderLM BeforeWarmStartOnCpu(RunSpec spec, string pretrainedCache, CancellationToken cancellationToken) =>
        PretrainedBaseCache.Load(pretrainedCache, BuiltinModels.ByName(spec.Model.Builtin), spec.Model.Builtin, BuiltinTasks.ByName(spec.Prompts.Task),
            RunSpecMapping.WarmStartSettings(spec), (int)(spec.Seed % int.MaxValue), CPU, cancellationToken);

    /// <summary>
    /// M0: the model a built-in run's warm start began from, its pretraining on the task's unformatted text (model.pretrain_steps;
    /// the same seed gives the same weights, so it is built once per cache folder: PretrainedBaseCache); a Hugging Face run's model.base_folder; or null
    /// where there is none (a Hugging Face model without base_folder, or sft_steps 0).
    /// </summary>
    public static DecoderLM? BeforeWarmStart(RunSpec spec, Device device, string pretrainedCache, CancellationToken cancellationToken = default)
    {
        if (!string.IsNullOrEmpty(spec.Model.HfFolder))
            return string.IsNullOrEmpty(spec.Model.BaseFolder) ? null : HfCheckpoint.Load(spec.Model.BaseFolder, device);
        if (spec.SftSteps <= 0) return null;
        return PretrainedBaseCache.Load(pretrainedCache, BuiltinModels.ByName(spec.Model.Builtin), spec.Model.Builtin, BuiltinTasks.ByName(spec.Prompts.Task),
            RunSpecMapping.WarmStartSettings(spec), (int)(spec.Seed % int.MaxValue), device, cancellationToken);
    }

    /// <summary>The folder of a built-in run's M0 in <paramref name="pretrainedCache"/> once the warm start built it (null: none, or not cached).</summary>
    public static string? BeforeWarmStartFolder(RunSpec spec, string pretrainedCache) =>
        !string.IsNullOrEmpty(spec.Model.HfFolder) || spec.SftSteps <= 0 ? null
            : PretrainedBaseCache.VerifiedFolder(pretrainedCache, BuiltinModels.ByName(spec.Model.Builtin), spec.Model.Builtin,
                BuiltinTasks.ByName(spec.Prompts.Task), RunSpecMapping.WarmStartSettings(spec), (int)(spec.Seed % int.MaxValue));

    /// <summary>
    /// Whether a judge phase compares with M0 (the implicit reward's reference in round 1, CREAM's previous judge in round 2,
    /// the drift probe's round-0 judge; with the likelihood judge, CREAM's previous judge in round 1): only then does it
    /// read the run's stored M0.
    /// </summary>
    public static bool JudgesWithBeforeWarmStart(RunSpec spec, PhaseRequest r) =>
        spec.Judge.ScoresImplicitReward() && (r.TrainedFrom is null || r.TrainedFromBefore is null || spec.Guard.ProbePrompts > 0)
        || spec.Judge.Kind == "likelihood" && spec.Consistency != "none" && r.TrainedFrom is null;

    /// <summary>Samples the responses of some of the round's prompts (a shard); the result is the same whichever replica runs it.</summary>
    /// <param name="initialFolder">the run's round-0 folder (the base of a LoRA run's adapter-only checkpoints)</param>
    public static List<List<int[]>> Generate(GenerationRequest request, string policyFolder, string? initialFolder, Device device, ModelCache models,
        CancellationToken cancellationToken)
    {
        var policy = models.Shared(policyFolder, request.Policy.Sha256, device, initialFolder);
        var tokenizer = TokenizerLoader.Load(policyFolder, request.Spec.Model.ChatTemplate);
        var (_, prompts, indices) = RoundPrompts(request.Spec, request.Round);
        var shard = request.PromptPositions.Select(p => prompts[p]).ToList();
        // Planning the batch needs the longest prompt's tokens (the whole round's, so that every shard plans the batch the
        // unsharded round has); a spec's fixed batch size does not.
        int longest = request.Spec.Sampling.BatchSize > 0 || shard.Count == 0 ? 1
            : prompts.Max(p => Alignment.Training.Examples.PromptIds(tokenizer, p.Prompt).Length);
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
        JudgeGroups(c, c.Tokenizer, responses).Groups;

    /// <summary>The whole judge phase on one worker: every prompt scored here, then summarised (InProcessRun, and a round with one judge shard).</summary>
    public static JudgeOutcome Judge(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses) => Judge(c, responses, shards: null);

    /// <summary>
    /// The judge phase's outcome: the shards' scores merged (every prompt exactly once; null: scored here, unsharded),
    /// then C, the metrics and the judge-drift probe computed once from the merged arrays.
    /// </summary>
    /// <param name="remote">judge.kind remote: the scores read from the remote judge's answers (asked by the worker, never sharded)</param>
    public static JudgeOutcome Judge(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, IReadOnlyList<JudgeScores>? shards,
        JudgeResult? remote = null)
    {
        var tokenizer = c.Tokenizer;
        var (task, groups) = JudgeGroups(c, tokenizer, responses);
        if (c.Spec.Judge.Kind == "remote")
        {
            // A fixed judge outside the policy: no previous round's judge to compare with, and no drift to probe.
            var judged = RoundPhases.Judge(groups, new ScoredJudge("remote", remote ?? throw new ArgumentException(
                "judge.kind 'remote' is asked over HTTP by the cluster's worker; a run in one process (InProcessRun) cannot use it")),
                null, c.Settings, task, tokenizer.Chat.EndOfResponse, c.Cancellation);
            judged.Metrics[HealthSignals.JudgeDriftTau] = double.NaN;
            return judged;
        }
        c.Progress("judge", 0, groups.Count);
        var merged = shards is null ? null : JudgeScores.Merge(shards, groups.Count);
        if (merged?.DriftTau is { } drift)
        {
            // Shard 0 ran the drift probe beside its prompts: the merge loads no model and judges nothing.
            var summary = RoundPhases.Summarize(groups, merged, c.Settings, task, tokenizer.Chat.EndOfResponse);
            summary.Metrics[HealthSignals.JudgeDriftTau] = drift;
            foreach (var (name, value) in merged.Pairwise ?? []) summary.Metrics[name] = value;
            return summary;
        }
        using var judges = new RoundJudges(c, tokenizer, task);
        var scored = merged ?? RoundPhases.ScoreShard(groups, Enumerable.Range(0, groups.Count).ToList(), judges.Current, judges.Previous, c.Cancellation);
        var outcome = RoundPhases.Summarize(groups, scored, c.Settings, task, tokenizer.Chat.EndOfResponse);
        outcome.Metrics[HealthSignals.JudgeDriftTau] = JudgeProbe.DriftTau(c, tokenizer, judges.Initial, judges.At, judges.Round0);
        foreach (var (name, value) in JudgePairwise.Metrics(c, tokenizer, judges.Current)) outcome.Metrics[name] = value;
        return outcome;
    }

    /// <summary>
    /// One judge shard: this round's and the previous round's judges' scores of shard <paramref name="shard"/> of
    /// <paramref name="shards"/> of the round's prompts, cut on the judges' batch boundaries (<see cref="ShardUnits.Judge"/>).
    /// </summary>
    public static JudgeScores JudgeShard(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, int shard, int shards)
    {
        var positions = ShardPlan.Cut(c.Spec.PromptsPerRound, shards, ShardUnits.Judge(c.Spec)).ElementAtOrDefault(shard) ?? [];
        var tokenizer = c.Tokenizer;
        var (task, groups) = JudgeGroups(c, tokenizer, responses);
        using var judges = new RoundJudges(c, tokenizer, task);
        c.Progress("judge", 0, positions.Count);
        var scores = RoundPhases.ScoreShard(groups, positions, judges.Current, judges.Previous, c.Cancellation);
        // The drift probe (the same numbers on any replica: its own seeds, no prompt of this round) runs beside shard 0's prompts,
        // the smallest shard (ShardPlan gives later shards the extra units), instead of after every shard on the merge's replica.
        return shard == 0 ? scores with
        {
            DriftTau = JudgeProbe.DriftTau(c, tokenizer, judges.Initial, judges.At, judges.Round0),
            Pairwise = JudgePairwise.Metrics(c, tokenizer, judges.Current),
        } : scores;
    }

    /// <summary>The round's response groups, each with its prompt's index in the run's order (what judge seeds come from).</summary>
    private static (IVerifiableTask? Task, List<ResponseGroup> Groups) JudgeGroups(Context c, ITextTokenizer tokenizer,
        IReadOnlyList<IReadOnlyList<int[]>> responses)
    {
        var (task, prompts, indices) = RoundPrompts(c.Spec, c.Request.Round);
        return (task, RoundPhases.Groups(tokenizer, prompts, responses, indices));
    }

    public static PairsOutcome Pairs(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, JudgeOutcome judged)
        => Pairs(c, responses, judged, shards: null);

    /// <summary>
    /// The pairs phase's outcome: the round's pairs planned here, their reference log-probs from the shards (every pair exactly
    /// once; null: computed here, unsharded), and the metrics computed once over the whole round.
    /// </summary>
    public static PairsOutcome Pairs(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, JudgeOutcome judged, IReadOnlyList<PairShard>? shards)
    {
        var plan = PlanPairs(c, responses, judged);
        c.Progress("pairs", 0, plan.Pairs.Count);
        var sums = shards is null
            ? RoundPhases.ReferenceLogProbs(plan, Enumerable.Range(0, plan.Pairs.Count).ToList(),
                c.Shared(c.Request.Reference), Math.Max(0, c.Tokenizer.PadId), c.Cancellation)
            : ShardPlan.Merge(shards.Select(s => ((IReadOnlyList<int>)s.Positions, (IReadOnlyList<double[]>)s.Sums)),
                plan.Pairs.Count, "pairs reference log-probs");
        return RoundPhases.SummarizePairs(plan, sums);
    }

    /// <summary>
    /// One pairs shard: the reference log-probs of shard <paramref name="shard"/> of <paramref name="shards"/> of the round's pairs,
    /// cut on the scorer's chunks of the whole round's rows. Every shard plans the same pairs (a cheap, seeded computation).
    /// </summary>
    public static PairShard PairsShard(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, JudgeOutcome judged, int shard, int shards)
    {
        var plan = PlanPairs(c, responses, judged);
        var positions = ShardPlan.Cut(plan.Pairs.Count, shards, ShardPlan.Unit(plan.RowsPerPair, RoundPhases.PairChunkRows)).ElementAtOrDefault(shard) ?? [];
        c.Progress("pairs", 0, positions.Count);
        return new PairShard(positions, positions.Count == 0 ? []
            : RoundPhases.ReferenceLogProbs(plan, positions, c.Shared(c.Request.Reference), Math.Max(0, c.Tokenizer.PadId), c.Cancellation));
    }

    private static PairPlan PlanPairs(Context c, IReadOnlyList<IReadOnlyList<int[]>> responses, JudgeOutcome judged)
    {
        var (_, prompts, _) = RoundPrompts(c.Spec, c.Request.Round);
        return RoundPhases.PlanPairs(RoundPhases.Groups(c.Tokenizer, prompts, responses), judged, c.Settings, c.Spec.Seed, c.Request.Round);
    }

    /// <summary>Trains a private copy of P_r and writes P_{r+1}'s checkpoint folder (weights, optimiser state, run state).</summary>
    public static TrainOutcome Train(Context c, PairsOutcome pairs, string outputFolder)
    {
        var (trained, state, _) = TrainKeeping(c, pairs, outputFolder);
        state.Dispose();
        return trained;
    }

    /// <summary>
    /// <see cref="Train"/>, handing the trained state back (the caller owns it): once the checkpoint written from it has its
    /// hash, <see cref="ModelCache.Adopt"/> keeps it for the phases after, so they do not read the checkpoint back. The
    /// private copy of P_r comes from the model cache when it holds P_r (copied in memory), else from P_r's folder; so do
    /// carried AdamW moments (<see cref="ModelCache.CarriedOptimizer"/>). Hashes: the folder's large files' sha256, by name
    /// (<see cref="Save"/>).
    /// </summary>
    public static (TrainOutcome Outcome, TrainedState State, IReadOnlyDictionary<string, string> Hashes) TrainKeeping(Context c, PairsOutcome pairs, string outputFolder)
    {
        var tokenizer = c.Tokenizer;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var policy = c.Models.Owned(c.Folder(c.Request.Policy), c.Request.Policy.Sha256, c.Device, c.Folder(c.Request.Initial));
        OptimizerState? optimizer = null;
        try
        {
            policy.GradientCheckpointing = c.Spec.Optimizer.GradientCheckpointing;
            optimizer = CarriedOptimizer(c);
            double load = clock.Elapsed.TotalSeconds;
            c.Progress("train", 0, 1);
            var trained = RoundPhases.Train(policy, pairs, c.Settings, c.Spec.Seed, c.Request.Round, Math.Max(0, tokenizer.PadId),
                (done, total) => c.Progress("train", done, total), CaptureInto(c.Spec, optimizer), c.Cancellation);
            clock.Restart();
            var hashes = Save(policy, tokenizer, c.Spec, c.Request.Round, outputFolder, optimizer, c.Folder(c.Request.Initial));
            TrainingSteps.Write(Path.Combine(outputFolder, TrainingSteps.FileName), trained.Steps);
            // Parts of time/train (not added to the round's phase times again): the private copy's load and the folder's write.
            trained.Metrics["time/train/load"] = load;
            trained.Metrics["time/train/save"] = clock.Elapsed.TotalSeconds;
            return (trained, Keeping(c.Spec, policy, ref optimizer), hashes);
        }
        catch
        {
            policy.Dispose();
            optimizer?.Dispose();
            throw;
        }
    }

    /// <summary>The AdamW state a train phase starts from: P_r's carried moments (optimizer.carry_state), else a fresh one.</summary>
    internal static OptimizerState CarriedOptimizer(Context c) =>
        c.Spec.Optimizer.CarryState ? c.Models.CarriedOptimizer(c.Folder(c.Request.Policy), c.Request.Policy.Sha256) : new OptimizerState();

    /// <summary>
    /// The state training copies its moments into after its last step: only where the next round starts from them
    /// (optimizer.carry_state). A fresh optimiser's moments are neither copied to the host nor written: nothing reads them,
    /// and they are two float32 values a trained weight (4 GB of a 0.5B model's 4.9 GB checkpoint).
    /// </summary>
    internal static OptimizerState? CaptureInto(RunSpec spec, OptimizerState state) => spec.Optimizer.CarryState ? state : null;

    /// <summary>What stays in memory after training: the model, and the moments only where the next round starts from them.</summary>
    internal static TrainedState Keeping(RunSpec spec, DecoderLM policy, ref OptimizerState? optimizer)
    {
        if (!spec.Optimizer.CarryState) optimizer?.Dispose();
        var kept = new TrainedState(policy, spec.Optimizer.CarryState ? optimizer : null);
        optimizer = null;
        return kept;
    }

    public static Dictionary<string, double> Evaluate(Context c) => Evaluate(c, shards: null);

    /// <summary>The evaluation metrics: from the shards' per-prompt results merged (every prompt exactly once; null: all evaluated here).</summary>
    public static Dictionary<string, double> Evaluate(Context c, IReadOnlyList<EvalShard>? shards)
    {
        var evalPrompts = RunSpecMapping.EvalPrompts(c.Spec);
        var all = shards is null ? EvaluateAt(c, evalPrompts, Enumerable.Range(0, evalPrompts.Count).ToList()) : EvalShard.Merge(shards, evalPrompts.Count);
        var metrics = RoundPhases.SummarizeEvaluation(all, RunSpecMapping.Task(c.Spec) is not null, c.Spec.Prompts.EvalStream);
        if (c.Request.Round == 0) foreach (var (name, value) in Round0Pairwise(c)) metrics[name] = value;
        return metrics;
    }

    /// <summary>
    /// Round 0's judge/pairwise_accuracy: the round-0 judge's (the initial policy judging, as round 1's judge does), so the
    /// metric has a value before any round; every later round measures its own judge in its judge phase. A remote judge
    /// is asked only by the judge phase's worker: not measured.
    /// </summary>
    private static Dictionary<string, double> Round0Pairwise(Context c)
    {
        if (c.Spec.Guard.PairwisePairs <= 0 || c.Spec.Judge.Kind == "remote") return [];
        var tokenizer = c.Tokenizer;
        using var judges = new RoundJudges(c, tokenizer, RunSpecMapping.Task(c.Spec));
        return JudgePairwise.Metrics(c, tokenizer, judges.Round0());
    }

    /// <summary>One evaluation shard: shard <paramref name="shard"/> of <paramref name="shards"/> of the evaluation prompts,
    /// cut on the KL scorer's chunks.</summary>
    public static EvalShard EvaluateShard(Context c, int shard, int shards)
    {
        var evalPrompts = RunSpecMapping.EvalPrompts(c.Spec);
        return EvaluateAt(c, evalPrompts, ShardPlan.Cut(evalPrompts.Count, shards, ShardUnits.Evaluation).ElementAtOrDefault(shard) ?? []);
    }

    private static EvalShard EvaluateAt(Context c, IReadOnlyList<PromptItem> evalPrompts, List<int> positions)
    {
        var r = c.Request;
        c.Progress("evaluate", 0, positions.Count);
        if (positions.Count == 0) return new EvalShard([], [], [], [], [], [], [], []);
        return RoundPhases.EvaluateShard(c.Shared(r.Trained!), c.Shared(c.Request.Reference), c.Shared(r.Initial), c.Tokenizer, RunSpecMapping.Task(c.Spec),
            evalPrompts, positions, c.Spec.Sampling.MaxNewTokens, c.Spec.Seed + (ulong)r.Round, c.Settings.Sampling.BatchSize, c.Cancellation);
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

    /// <summary>
    /// Writes a policy checkpoint folder, answering the sha256 of its large files (the weights, the moments) by file name,
    /// taken as they were written: the checkpoint's plan need not read them back (CheckpointStore.PlanFolderAsync).
    /// </summary>
    /// <param name="baseFolder">a LoRA run's round-0 folder, whose base the adapter is saved against (null: this is round 0)</param>
    internal static Dictionary<string, string> Save(DecoderLM model, ITextTokenizer tokenizer, RunSpec spec, int round, string folder,
        OptimizerState? optimizer, string? baseFolder)
    {
        var written = new Dictionary<string, string>(StringComparer.Ordinal);
        // A LoRA run's checkpoints after round 0 hold only the adapter (a PEFT folder), megabytes where the base is gigabytes.
        string baseName = spec.Model.HfFolder ?? spec.Model.Builtin;
        if (model.Lora is null) written[HfCheckpoint.WeightsFile] = HfCheckpoint.Save(model, folder, tokenizer.HfFiles());
        else if (baseFolder is null) written[HfCheckpoint.WeightsFile] = PolicyCheckpoint.SaveBase(model, folder, baseName, tokenizer.HfFiles());
        else PolicyCheckpoint.SaveAdapter(model, folder, baseName, baseFolder, tokenizer.HfFiles());
        if (optimizer is { IsEmpty: false }) written[OptimizerState.FileName] = optimizer.Save(Path.Combine(folder, OptimizerState.FileName));
        // What resuming needs besides the weights and the optimiser: every random draw is derived from
        // (seed, round, prompt, sample), and the data cursor is the round index.
        File.WriteAllText(Path.Combine(folder, "onlinealign_state.json"), JsonSerializer.Serialize(new
        {
            round, seed = spec.Seed, data_cursor = round * spec.PromptsPerRound, reference = spec.Reference,
            rng = "every sample's generator is seeded from (seed, round, prompt index, sample index); pair and batch orders from (seed, round)",
            optimizer = spec.Optimizer.CarryState ? $"AdamW moments in {OptimizerState.FileName}, carried into the next round"
                : "a fresh AdamW every round (optimizer.carry_state false): no moments to keep",
        }));
        return written;
    }
}
