using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Specs;

namespace OnlineAlign.Execution.Specs;

/// <summary>Turns a user's run spec into round settings, and lists everything wrong with it, by field.</summary>
public static class RunSpecMapping
{
    public static readonly string[] ReferenceStrategies = ["previous_round", "initial"];

    public static RoundSettings ToRoundSettings(RunSpec s) => new()
    {
        SamplesPerPrompt = s.SamplesPerPrompt,
        Consistency = s.Consistency,
        PairStrategy = s.PairStrategy,
        MinScoreGap = s.MinScoreGap,
        Sampling = s.Sampling,
        Judge = s.Judge with { Template = JudgeTemplate(s) },
        Loss = s.Loss,
        Optimizer = s.Optimizer,
    };

    /// <summary>
    /// Every problem with the spec, each starting with the field's name. Checked before any work starts:
    /// counts and their products first (in 64-bit, before anything is allocated), then the model and prompts.
    /// Never throws: whatever goes wrong while checking is itself reported as a problem.
    /// </summary>
    /// <param name="roots">the silo's data roots, under which the spec's files must lie; null: anywhere (in-process runs)</param>
    /// <param name="readFiles">false: only what needs no file (the API silo's first pass before the silo that reads them checks them)</param>
    /// <param name="device">the device the run would train on: a spec whose memory plan exceeds it is refused</param>
    /// <param name="countsOnly">only the counts, names and numbers against the limits, no model or prompt set built:
    /// what a grain re-checks cheaply on every call (the API has checked the rest)</param>
    public static List<string> Problems(RunSpec s, SpecLimits? limits = null, Files.DataRoots? roots = null, bool readFiles = true,
        MemoryPlanning.DeviceBudget? device = null, bool countsOnly = false)
    {
        var problems = new List<string>();
        try { Check(s, limits ?? SpecLimits.Default, roots, readFiles && !countsOnly, device, problems, countsOnly); }
        catch (Exception e) { problems.Add($"spec: could not be checked ({e.GetType().Name}: {e.Message})"); }
        // A problem may quote the value it is about: a huge one is cut, so the answer stays small (gRPC sends it in a header).
        return problems.Select(p => p.Length <= MaxProblemLength ? p : $"{p[..MaxProblemLength]}... ({p.Length} characters)").ToList();
    }

    /// <summary>
    /// Long enough for the longest message that quotes no value, the token budget's refusal with every term named (an LLM judge's
    /// template and judgement, consistency, the pairwise set, the drift probe, the evaluation: under 1100 characters with every count at
    /// its limit), so its end is never cut.
    /// </summary>
    private const int MaxProblemLength = 1200;

    private static void Check(RunSpec s, SpecLimits l, Files.DataRoots? roots, bool readFiles, MemoryPlanning.DeviceBudget? device, List<string> problems,
        bool countsOnly)
    {
        void Range(string field, long value, long min, long max)
        {
            if (value < min || value > max) problems.Add($"{field} must be between {min} and {max}, got {value}");
        }
        void Length(string field, string? value, int max)
        {
            if (value is not null && value.Length > max) problems.Add($"{field} is {value.Length} characters long; the limit is {max}");
        }
        Range("rounds", s.Rounds, 1, l.Rounds);
        Range("prompts_per_round", s.PromptsPerRound, 1, l.PromptsPerRound);
        Range("sft_steps", s.SftSteps, 0, l.SftSteps);
        Range("eft_examples", s.EftExamples, 0, l.EftExamples);
        if (!WarmStart.EftSources.Contains(s.EftSource))
            problems.Add($"eft_source '{s.EftSource}' is not one of {string.Join(", ", WarmStart.EftSources)}");
        Range("generation_replicas", s.GenerationReplicas, 0, l.GenerationReplicas);
        Range("max_phase_attempts", s.MaxPhaseAttempts, 1, l.MaxPhaseAttempts);
        Length("name", s.Name, l.NameLength);
        foreach (var (field, text) in new[] { ("reference", s.Reference), ("device", s.Device) })
            Length(field, text, l.TextLength);
        // Real numbers: finite, and below a bound past which a value can only be a typo.
        void Real(string field, double value, double max)
        {
            if (!double.IsFinite(value)) problems.Add($"{field} must be a finite number, got {value}");
            else if (value > max) problems.Add($"{field} must be at most {max}, got {value}");
        }
        Real("sft_noise", s.SftNoise, 1);
        var warmStart = new SpecProblems("");
        warmStart.Real("sft_learning_rate", s.SftLearningRate, 0, minIncluded: false, l.LearningRate);
        problems.AddRange(warmStart.List);
        // The sections' and the round fields' own checks: every bad field, each named by its path.
        problems.AddRange(s.Model.Problems(l));
        problems.AddRange(s.Prompts.Problems(l));
        problems.AddRange(ToRoundSettings(s).Problems(l));
        long totalPrompts = (long)s.Rounds * s.PromptsPerRound;
        if (totalPrompts > l.TotalPrompts)
            problems.Add($"rounds x prompts_per_round is {totalPrompts}; the limit is {l.TotalPrompts}");
        long tokens = (long)s.PromptsPerRound * s.SamplesPerPrompt * s.Sampling.MaxNewTokens;
        if (tokens > l.TokensPerRound)
            problems.Add($"prompts_per_round x samples_per_prompt x sampling.max_new_tokens is {tokens} tokens a round; the limit is {l.TokensPerRound}");
        problems.AddRange(s.Budget.Problems(l));
        problems.AddRange(s.Retention.Problems(l));
        problems.AddRange(s.Guard.Problems(l));
        // A bound on a signal the run never records would never trip: refused rather than silently inert.
        // (An unknown kind is refused by the judge section's own check, which bounds what it echoes.)
        if (s.Guard.MinImplicitAgreement > -1 && JudgeSpec.Kinds.Contains(s.Judge.Kind) && s.Judge.Kind != "self_consistent"
            && !(s.Judge.Kind == "llm" && s.Judge.ImplicitAgreement))
            problems.Add($"guard.min_implicit_agreement reads health/implicit_agreement, which judge.kind '{s.Judge.Kind}' does not record: " +
                "use judge.kind self_consistent, or llm with judge.implicit_agreement true");
        // The token budget with no prompt tokens counted: refused here already, before any file is read.
        if (problems.Count == 0 && TokenBudgetProblem(s, 0) is { } overBudget) problems.Add(overBudget);
        bool countsOutOfRange = problems.Count > 0;
        if (!ReferenceStrategies.Contains(s.Reference)) problems.Add($"reference '{s.Reference}' is not one of {string.Join(", ", ReferenceStrategies)}");
        // SPPO's target is the win rate against the current policy pi_t: its log-ratio must be to pi_t, not to the initial model.
        if (s.Loss.Kind is "sppo" or "sppo_hard" && s.Reference == "initial")
            problems.Add($"reference 'initial' does not fit loss.kind '{s.Loss.Kind}': " +
                "SPPO's log-ratios are to the policy at the round's start (reference previous_round)");
        if (string.IsNullOrEmpty(s.Prompts.JsonlPath) && !BuiltinTasks.Names.Contains(s.Prompts.Task))
            problems.Add($"prompts.task '{s.Prompts.Task}' is not a built-in task ({string.Join(", ", BuiltinTasks.Names)})");
        if (countsOutOfRange || countsOnly) return; // the model and prompt checks allocate in proportion to the counts
        if (!readFiles && Files.SpecFiles.Named(s).Any()) return;
        // Files are read only once they are known to be under the data roots, regular and within their size limits.
        if (roots is not null)
        {
            var fileProblems = Files.SpecFiles.Problems(s, roots, l);
            problems.AddRange(fileProblems);
            if (fileProblems.Count > 0) return;
        }
        if (s.Judge.Kind == "reward_model" && (string.IsNullOrEmpty(s.Judge.RewardModelFolder)
            || !File.Exists(Path.Combine(s.Judge.RewardModelFolder, RewardModel.HeadFile))))
            problems.Add($"judge.reward_model_folder '{s.Judge.RewardModelFolder}' is not a reward model folder " +
                "(train one with `onlinealign train-reward-model`)");
        if (s.Model.Lora?.AdapterFolder is { } adapter)
        {
            try
            {
                Modeling.Checkpoints.PeftAdapter.ReadSettings(adapter);
                // The adapter's weights header, validated like a model's (nothing allocated); shapes are checked against the model when it loads.
                string weights = Path.Combine(adapter, Modeling.Checkpoints.PeftAdapter.WeightsFile);
                if (File.Exists(weights)) Modeling.Checkpoints.SafeTensors.ReadHeader(weights);
            }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException
                or FileNotFoundException) { problems.Add("model.lora.adapter_folder: " + e.Message); }
        }
        var (tokenizer, config) = ModelProblems(s, problems);
        if (config is not null) problems.AddRange(ModelFolderChecks.BaseFolderProblems(s.Model.BaseFolder, config));
        if (tokenizer is not null && s.Judge.Kind == "reward_model"
            && !string.IsNullOrEmpty(s.Judge.RewardModelFolder)
            && File.Exists(Path.Combine(s.Judge.RewardModelFolder, RewardModel.HeadFile)))
            problems.AddRange(ModelFolderChecks.RewardModelProblems(s.Judge.RewardModelFolder, tokenizer, s.Model.HfFolder));
        var prompts = PromptProblems(s, problems);
        if (tokenizer is not null && config is not null) PairwiseProblems(s, tokenizer, config.MaxPositions, problems);
        if (tokenizer is not null && config is not null && prompts is not null)
        {
            var lengths = prompts.Select(p => (p.Line, Tokens: Alignment.Training.Examples.PromptIds(tokenizer, p.Prompt).Length)).ToList();
            problems.AddRange(LengthProblems(s, lengths, config.MaxPositions));
            if (problems.Count == 0 && lengths.Count > 0
                && TokenBudgetProblem(s, lengths.Max(l => l.Tokens), JudgeTemplateTokens(s, tokenizer)) is { } overTokens) problems.Add(overTokens);
            if (device is not null && problems.Count == 0 && lengths.Count > 0
                && PlanProblem(s, config, lengths.Max(l => l.Tokens), device) is { } tooBig)
                problems.Add(tooBig);
            if (problems.Count == 0 && lengths.Count > 0
                && JudgeContextProblem(s, tokenizer, prompts[Enumerable.Range(0, lengths.Count).MaxBy(i => lengths[i].Tokens)].Prompt,
                    config.MaxPositions) is { } judgeTooLong)
                problems.Add(judgeTooLong);
        }
        if (s.Device is not ("auto" or "cpu" or "cuda") && !s.Device.StartsWith("cuda:", StringComparison.Ordinal))
            problems.Add($"device '{s.Device}' is not one of cpu, cuda, cuda:N, auto");
    }

    /// <summary>
    /// Token positions a round of the spec may cost at most, with prompts of up to <paramref name="maxPromptTokens"/> and
    /// a judge template of <paramref name="judgeTemplateTokens"/> (its text without the prompt and response): generated
    /// (P x N sequences of prompt + max_new_tokens), judged (each model pass reads every sequence again; each LLM
    /// judgement also reads the judge template and, where it samples a justification (rubric or a text template),
    /// writes up to judge.max_new_tokens; with consistency on, the previous round's judge does all of it again; the
    /// pairwise set's responses, <see cref="PairwiseResponses"/>, are judged the same way by the round's judge alone, and
    /// the judge-drift probe's, <see cref="ProbeResponses"/>, by the round's judge and the round-0 judge) and trained
    /// (each epoch: the chosen and rejected sequence of up to P pairs). The probe's responses are sampled again each round
    /// from the initial policy (not stored), so they count as generated too. This is the most one round may cost: round 0
    /// (the initial policy's evaluation) judges only the pairwise set, with the round-0 judge, which every round judges
    /// too (<see cref="Round0Tokens"/>). Every round, round 0 included, then evaluates its policy: <see cref="EvaluationTokens"/>, added to
    /// the larger of the two by <see cref="TokenBudgetProblem"/>.
    /// </summary>
    public static (long Generated, long Judged, long Trained, int JudgePasses) RoundTokens(RunSpec s, int maxPromptTokens, int judgeTemplateTokens = 0)
    {
        long sequences = (long)s.PromptsPerRound * s.SamplesPerPrompt;
        long sequence = (long)maxPromptTokens + s.Sampling.MaxNewTokens;
        var (llm, model, perJudgement, judges) = JudgeCost(s, sequence, judgeTemplateTokens);
        long perResponse = model * sequence + llm * perJudgement;
        long probe = ProbeResponses(s);
        long judged = sequences * perResponse * judges + PairwiseResponses(s) * perResponse + probe * perResponse * ProbeJudges;
        return ((sequences + probe) * sequence, judged, (long)s.Optimizer.Epochs * s.PromptsPerRound * 2 * sequence, (llm + model) * judges);
    }

    /// <summary>
    /// Token positions round 0 may judge: the pairwise set (judge/pairwise_accuracy has a value before any round), each response
    /// by the round-0 judge at a round's cost per response; no probe (no round's judge to compare) and no consistency judge.
    /// </summary>
    public static long Round0Tokens(RunSpec s, int maxPromptTokens, int judgeTemplateTokens = 0)
    {
        long sequence = (long)maxPromptTokens + s.Sampling.MaxNewTokens;
        var (llm, model, perJudgement, _) = JudgeCost(s, sequence, judgeTemplateTokens);
        return PairwiseResponses(s) * (model * sequence + llm * perJudgement);
    }

    /// <summary>
    /// Token positions the evaluation after every round (round 0 included) may cost, with evaluation prompts of up to
    /// <paramref name="maxPromptTokens"/> (a built-in task's held-out prompts come from the same generator as its training
    /// prompts): for each of <see cref="EvalPromptCount"/> prompts, <see cref="EvalPasses"/> passes over prompt + max_new_tokens
    /// (<see cref="RoundPhases.EvaluateShard"/>). The task's checker reads text, not tokens: it costs none.
    /// </summary>
    public static long EvaluationTokens(RunSpec s, int maxPromptTokens) =>
        (long)EvalPromptCount(s) * EvalPasses * ((long)maxPromptTokens + s.Sampling.MaxNewTokens);

    /// <summary>The held-out prompts every round evaluates: prompts.eval_prompts of a built-in task; none for a JSONL prompt set.</summary>
    public static int EvalPromptCount(RunSpec s) => string.IsNullOrEmpty(s.Prompts.JsonlPath) ? s.Prompts.EvalPrompts : 0;

    /// <summary>
    /// The evaluation's passes per prompt: the greedy decode (accuracy, lengths, EOS rate) and a temperature-1 sample, then the
    /// sample scored by the policy, the reference and the initial model (the KL estimates), even where two of them are one model.
    /// </summary>
    public const int EvalPasses = 5;

    /// <summary>The judges that score the judge-drift probe each round: the round's own and the round-0 judge (in round 1 they are one).</summary>
    public const int ProbeJudges = 2;

    /// <summary>
    /// Responses of the judge-drift probe (health/judge_drift_tau) each round's judge phase samples from the initial policy and
    /// judges: samples_per_prompt for each of the first guard.probe_prompts of round 1's prompts (at most prompts_per_round);
    /// 0 where it is not measured (0 probe prompts, a remote judge). Counted at the round's sequence length: they are round 1's prompts.
    /// </summary>
    public static long ProbeResponses(RunSpec s) =>
        s.Guard.ProbePrompts <= 0 || s.Judge.Kind == "remote" ? 0 : (long)Math.Min(s.Guard.ProbePrompts, s.PromptsPerRound) * s.SamplesPerPrompt;

    /// <summary>
    /// Responses of the checker-scored pairwise set (judge/pairwise_accuracy) each round's judge phase scores: a chosen and a
    /// rejected per pair of guard.pairwise_pairs, by the round's judge only (no consistency judge); 0 where it is not
    /// measured (0 pairs, a remote judge, a JSONL prompt set without guard.pairwise_jsonl). They are counted at the
    /// round's sequence length: a built-in set's prompts come from the same task, and a file's responses are at most
    /// sampling.max_new_tokens (its prompts are not read by this count).
    /// </summary>
    public static long PairwiseResponses(RunSpec s) =>
        s.Guard.PairwisePairs <= 0 || s.Judge.Kind == "remote"
            || (string.IsNullOrEmpty(s.Guard.PairwiseJsonl) && !string.IsNullOrEmpty(s.Prompts.JsonlPath))
            ? 0 : 2L * s.Guard.PairwisePairs;

    /// <summary>LLM judgements and plain model passes per response, tokens per judgement, and how many judges (2 with consistency).</summary>
    private static (int Llm, int Model, long PerJudgement, int Judges) JudgeCost(RunSpec s, long sequence, int judgeTemplateTokens)
    {
        int llm = s.Judge.Kind is "llm" or "self_consistent" ? s.Judge.Judgements : 0;
        int model = s.Judge.ScoresImplicitReward() ? 2  // the policy and the model it was trained from
            : s.Judge.Kind is "likelihood" or "reward_model" ? 1
            : 0;                                        // llm (counted above), verifier, majority: no other model pass
        bool samples = JudgeTemplate(s) != "compact"; // compact reads the score digit's distribution, sampling nothing
        return (llm, model, sequence + judgeTemplateTokens + (samples ? s.Judge.MaxNewTokens : 0), s.Consistency == "none" ? 1 : 2);
    }

    /// <summary>The refusal of a spec whose round can cost more tokens than budget.max_tokens_per_round; null when within it.</summary>
    public static string? TokenBudgetProblem(RunSpec s, int maxPromptTokens, int judgeTemplateTokens = 0)
    {
        var (generated, judged, trained, passes) = RoundTokens(s, maxPromptTokens, judgeTemplateTokens);
        // Round 0 judges only the pairwise set, a part of what every round judges: counted, and never the larger. Every
        // round, round 0 included, then evaluates the policy it ends with.
        long evaluated = EvaluationTokens(s, maxPromptTokens);
        long total = Math.Max(generated + judged + trained, Round0Tokens(s, maxPromptTokens, judgeTemplateTokens)) + evaluated;
        var (llm, _, perJudgement, judges) = JudgeCost(s, (long)maxPromptTokens + s.Sampling.MaxNewTokens, judgeTemplateTokens);
        string llmCost = llm == 0 || perJudgement == maxPromptTokens + s.Sampling.MaxNewTokens ? ""
            : $" (each LLM judgement reads the sequence and {judgeTemplateTokens} judge template tokens" +
              (JudgeTemplate(s) != "compact" ? $" and writes up to judge.max_new_tokens {s.Judge.MaxNewTokens}" : "") + $": {perJudgement} tokens)";
        string consistency = judges == 2 ? $" (consistency {s.Consistency}: the previous round's judge as well)" : "";
        long pairwise = PairwiseResponses(s);
        string pairwiseCost = pairwise > 0 && passes > 0
            ? $" (with guard.pairwise_pairs {s.Guard.PairwisePairs}: {pairwise} responses of the pairwise set, judged once; round 0 judges only these)" : "";
        long probe = ProbeResponses(s);
        long sequence = (long)maxPromptTokens + s.Sampling.MaxNewTokens;
        string probeGenerated = probe > 0 ? $" and {probe * sequence} for the judge-drift probe" : "";
        string probeCost = probe > 0 && passes > 0
            ? $" (with guard.probe_prompts {s.Guard.ProbePrompts}: {probe} responses of the judge-drift probe, sampled from the initial policy " +
              "and judged by the round's judge and the round-0 judge)" : "";
        return total <= s.Budget.MaxTokensPerRound ? null
            : $"budget.max_tokens_per_round is {s.Budget.MaxTokensPerRound}, but a round of this spec may cost {total} tokens: " +
              $"prompts_per_round {s.PromptsPerRound} x samples_per_prompt {s.SamplesPerPrompt} " +
              $"x (prompt {maxPromptTokens} + sampling.max_new_tokens {s.Sampling.MaxNewTokens}) = {generated - probe * sequence} generated{probeGenerated}, " +
              $"{passes} judge passes ({s.Judge.Kind}) = {judged} judged{llmCost}{consistency}{pairwiseCost}{probeCost}, " +
              $"optimizer.epochs {s.Optimizer.Epochs} x 2 x prompts_per_round = {trained} trained" +
              (evaluated > 0 ? $", prompts.eval_prompts {EvalPromptCount(s)} x {EvalPasses} passes (a greedy and a sampled decode, the sample " +
                  $"scored by the policy, the reference and the initial model) = {evaluated} evaluated" : "") +
              "; raise the budget, or lower the counts";
    }

    /// <summary>
    /// The refusal of a spec whose sampled LLM judgement cannot fit the model's context: the judge reads the template around
    /// the longest prompt and a response of up to sampling.max_new_tokens, then writes up to judge.max_new_tokens (a
    /// justification before its score), and the decoder refuses a row longer than the context once the judge phase runs.
    /// Compact judgements write nothing; a remote judge's context is the endpoint's. Null when it fits.
    /// </summary>
    public static string? JudgeContextProblem(RunSpec s, ITextTokenizer tokenizer, string longestPrompt, int context)
    {
        string template = JudgeTemplate(s);
        if (s.Judge.Kind is not ("llm" or "self_consistent") || template == "compact") return null;
        int read = Alignment.Training.Examples.PromptIds(tokenizer, Alignment.Judges.JudgePrompts.Format(template, longestPrompt, "")).Length
            + s.Sampling.MaxNewTokens;
        if (read + s.Judge.MaxNewTokens <= context) return null;
        string name = Alignment.Judges.JudgePrompts.Templates.Contains(template) ? $"'{template}'" : "(a text template)";
        return $"judge.max_new_tokens {s.Judge.MaxNewTokens}: the LLM judge reads judge.template {name} around the longest prompt and a " +
               $"response of up to sampling.max_new_tokens {s.Sampling.MaxNewTokens} ({read} tokens), then writes its judgement: " +
               $"{read + s.Judge.MaxNewTokens} tokens exceed the model's context of {context}" +
               (context - read >= 1 ? $"; judgements of up to {context - read} tokens fit, but a judgement cut off before its score goes unscored" : "") +
               "; use judge.template compact (the score digit's probabilities, nothing written), a shorter template or a model with a longer context";
    }

    /// <summary>The LLM judge template's own tokens (without the prompt and response it frames); 0 where no LLM judges.</summary>
    private static int JudgeTemplateTokens(RunSpec s, ITextTokenizer tokenizer) =>
        s.Judge.Kind is "llm" or "self_consistent"
            ? tokenizer.Encode(Alignment.Judges.JudgePrompts.Text(JudgeTemplate(s)).Replace("{prompt}", "").Replace("{response}", "")).Length
            : 0;

    /// <summary>The memory plan's refusal; a plan whose bytes pass 64 bits (checked arithmetic) cannot fit any device.</summary>
    private static string? PlanProblem(RunSpec s, ModelConfig config, int maxPromptTokens, MemoryPlanning.DeviceBudget device)
    {
        try
        {
            return MemoryPlanning.Problem(MemoryPlanning.Plan(s, config, maxPromptTokens, device.Cpu, device.Bytes),
                MemoryPlanning.HostPlan(s, config, device.Cpu), device, s.Model.Lora is not null);
        }
        catch (OverflowException) { return "model: the run's memory plan passes 2^63 bytes " +
            $"(model.hf_folder config.json sizes x the spec's counts): it cannot fit {device.Name}"; }
    }

    /// <summary>The run's built-in task (null for a JSONL prompt set, which has no verifier).</summary>
    public static IVerifiableTask? Task(RunSpec spec) => string.IsNullOrEmpty(spec.Prompts.JsonlPath) ? BuiltinTasks.ByName(spec.Prompts.Task) : null;

    /// <summary>The run's held-out evaluation prompts: a built-in task's, from prompts.eval_stream (none for a JSONL prompt set).</summary>
    public static IReadOnlyList<PromptItem> EvalPrompts(RunSpec spec) =>
        string.IsNullOrEmpty(spec.Prompts.JsonlPath)
            ? BuiltinTasks.ByName(spec.Prompts.Task).Prompts(EvalPromptCount(spec), (int)(spec.Seed % int.MaxValue), spec.Prompts.EvalStream)
            : [];

    /// <summary>The spec's memory plan on a device, once the spec is valid (null where its model or prompts cannot be read).</summary>
    public static MemoryPlan? Plan(RunSpec s, bool cpu, long? deviceBytes = null)
    {
        var problems = new List<string>();
        var (tokenizer, config) = ModelProblems(s, problems);
        var prompts = PromptProblems(s, problems);
        if (tokenizer is null || config is null || prompts is null || prompts.Count == 0) return null;
        return MemoryPlanning.Plan(s, config, prompts.Max(p => Alignment.Training.Examples.PromptIds(tokenizer, p.Prompt).Length), cpu, deviceBytes);
    }

    /// <summary>The spec's host memory plan (null where its model cannot be read).</summary>
    public static HostMemoryPlan? HostPlan(RunSpec s, bool cpu)
    {
        var (_, config) = ModelProblems(s, []);
        return config is null ? null : MemoryPlanning.HostPlan(s, config, cpu);
    }

    /// <summary>The adapter a LoRA run trains: the spec's settings, or those of the PEFT folder it starts from; null for full fine-tuning.</summary>
    public static LoraSpec? Lora(RunSpec spec) => spec.Model.Lora switch
    {
        { AdapterFolder: { } folder } => Modeling.Checkpoints.PeftAdapter.ReadSettings(folder),
        var lora => lora,
    };

    /// <summary>The warm start's settings for the spec.</summary>
    public static WarmStart.Settings WarmStartSettings(RunSpec spec) =>
        new(Steps: spec.SftSteps, LearningRate: spec.SftLearningRate, Noise: spec.SftNoise, JudgeExamples: spec.EftExamples, JudgeTemplate: JudgeTemplate(spec),
            EftSource: spec.EftSource, SampleTokens: spec.Sampling.MaxNewTokens, PretrainSteps: spec.Model.PretrainSteps);

    /// <summary>
    /// Everything a run's round-0 checkpoint is made from, by spec path: what RoundJob.Prepare reads (the model, the task, the
    /// seed and the warm start's settings) and what its state file records (reference, optimizer.carry_state). Two specs with
    /// equal parts give the same round 0, so one run's round 0 can stand in for the other's (InProcessRun.PrepareFrom).
    /// </summary>
    /// <returns>each part that differs, by spec path with both values ("seed: 6 here, 5 in the source"); empty: the same round 0</returns>
    public static IReadOnlyList<string> WarmStartDifferences(RunSpec spec, RunSpec source)
    {
        var mine = WarmStartParts(spec);
        var theirs = WarmStartParts(source);
        return mine.Keys.Where(k => mine[k] != theirs[k]).Select(k => $"{k}: {mine[k]} here, {theirs[k]} in the source").ToList();
    }

    private static SortedDictionary<string, string> WarmStartParts(RunSpec spec) => new(StringComparer.Ordinal)
    {
        ["model"] = System.Text.Json.JsonSerializer.Serialize(spec.Model),
        ["prompts.task"] = spec.Prompts.Task,
        ["seed"] = spec.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["warm start (sft_steps, sft_learning_rate, sft_noise, eft_examples, eft_source, judge.template, sampling.max_new_tokens)"] =
            System.Text.Json.JsonSerializer.Serialize(WarmStartSettings(spec)),
        ["reference"] = spec.Reference,
        ["optimizer.carry_state"] = spec.Optimizer.CarryState.ToString(),
    };

    /// <summary>judge.template with "auto" resolved: the compact prompt for built-in tasks (tiny contexts), the paper's rubric otherwise.</summary>
    public static string JudgeTemplate(RunSpec spec) =>
        spec.Judge.Template != "auto" ? spec.Judge.Template : string.IsNullOrEmpty(spec.Prompts.JsonlPath) ? "compact" : "rubric";

    /// <summary>The run's training prompts in their fixed, seeded order: a built-in task's, or the JSONL file's.</summary>
    public static (IVerifiableTask? Task, IReadOnlyList<PromptItem> Prompts) TrainingPrompts(RunSpec spec)
    {
        if (!string.IsNullOrEmpty(spec.Prompts.JsonlPath))
            return (null, JsonlPrompts.Parse(Files.SpecFiles.ReadLines(spec.Prompts.JsonlPath, SpecLimits.Default.PromptLineCharacters),
                spec.Prompts.JsonlPath));
        var task = BuiltinTasks.ByName(spec.Prompts.Task);
        return (task, task.Prompts(spec.Rounds * spec.PromptsPerRound, (int)(spec.Seed % int.MaxValue) + 1000, "train"));
    }

    /// <summary>The model's tokenizer and config, when the model part of the spec is usable.</summary>
    private static (ITextTokenizer? Tokenizer, ModelConfig? Config) ModelProblems(RunSpec s, List<string> problems)
    {
        if (!ModelSpec.ChatTemplates.Contains(s.Model.ChatTemplate)) return (null, null); // named by ModelSpec.Problems
        if (string.IsNullOrEmpty(s.Model.HfFolder))
        {
            try { return (new ByteTokenizer(), BuiltinModels.ByName(s.Model.Builtin)); }
            catch (ArgumentException e) { problems.Add("model.builtin: " + e.Message); return (null, null); }
        }
        if (!Directory.Exists(s.Model.HfFolder)) problems.Add($"model.hf_folder '{s.Model.HfFolder}' does not exist");
        else if (!File.Exists(Path.Combine(s.Model.HfFolder, "config.json"))) problems.Add($"model.hf_folder '{s.Model.HfFolder}' has no config.json");
        else
        {
            ModelConfig config;
            // The config's sizes, then the weights' headers against them (nothing is allocated for a tensor here).
            try { config = ModelFolderChecks.Config(s.Model.HfFolder); }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException
                or FileNotFoundException) { problems.Add("model.hf_folder: " + e.Message); return (null, null); }
            try { return ModelFolderChecks.Tokenizer(s.Model.HfFolder, s.Model.ChatTemplate, config); }
            catch (Exception e) when (e is InvalidDataException or FileNotFoundException or System.Text.Json.JsonException
                or ArgumentException or InvalidOperationException or NotSupportedException)
            {
                problems.Add(e.Message.StartsWith("model.chat_template", StringComparison.Ordinal) || e.Message.Contains("chat template")
                    ? e.Message
                    : $"model.hf_folder '{s.Model.HfFolder}': tokenizer: {e.Message}");
            }
        }
        return (null, null);
    }

    /// <summary>The run's training prompts, when the prompt part of the spec is usable.</summary>
    private static IReadOnlyList<PromptItem>? PromptProblems(RunSpec s, List<string> problems)
    {
        if (string.IsNullOrEmpty(s.Prompts.JsonlPath))
        {
            // A built-in task's prompts all come from one generator: its first round's (at most a few thousand) show
            // whether they fit the context, without building the whole run's prompt order on every request.
            if (!BuiltinTasks.Names.Contains(s.Prompts.Task)) return null; // reported above
            return BuiltinTasks.ByName(s.Prompts.Task).Prompts(Math.Min(s.PromptsPerRound, 4096), (int)(s.Seed % int.MaxValue) + 1000, "train");
        }
        if (s.Judge.Kind == "verifier") problems.Add("judge.kind 'verifier' needs a built-in task (a JSONL prompt set has no verifier)");
        if (!File.Exists(s.Prompts.JsonlPath)) { problems.Add($"prompts.jsonl_path '{s.Prompts.JsonlPath}' does not exist"); return null; }
        try { return TrainingPrompts(s).Prompts; }
        catch (InvalidDataException e) { problems.Add("prompts.jsonl_path: " + e.Message); return null; }
    }

    /// <summary>guard.pairwise_jsonl read as the judge phase reads it: a bad line named with the file and its line.</summary>
    private static void PairwiseProblems(RunSpec s, ITextTokenizer tokenizer, int context, List<string> problems)
    {
        if (string.IsNullOrEmpty(s.Guard.PairwiseJsonl) || s.Guard.PairwisePairs <= 0) return;
        if (!File.Exists(s.Guard.PairwiseJsonl)) { problems.Add($"guard.pairwise_jsonl '{s.Guard.PairwiseJsonl}' does not exist"); return; }
        try { Phases.JudgePairwise.FromFile(s, tokenizer, context); }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException) { problems.Add("guard.pairwise_jsonl: " + e.Message); }
    }

    /// <summary>Prompts that leave no room for max_new_tokens in the model's context, by line (the first few).</summary>
    private static IEnumerable<string> LengthProblems(RunSpec s, IReadOnlyList<(int Line, int Tokens)> prompts, int context)
    {
        var tooLong = prompts.Where(p => p.Tokens + s.Sampling.MaxNewTokens > context).ToList();
        string where = string.IsNullOrEmpty(s.Prompts.JsonlPath) ? $"prompts.task '{s.Prompts.Task}'" : $"prompts.jsonl_path {s.Prompts.JsonlPath}";
        foreach (var (line, tokens) in tooLong.Take(3))
            yield return $"{where}{(line > 0 ? $":{line}" : "")}: the prompt is {tokens} tokens; " +
                $"with sampling.max_new_tokens {s.Sampling.MaxNewTokens} it exceeds the model's context of {context}";
        if (tooLong.Count > 3) yield return $"{where}: {tooLong.Count - 3} more prompts exceed the context";
    }
}
