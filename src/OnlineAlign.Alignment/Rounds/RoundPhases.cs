using OnlineAlign.Modeling.Lora;
using OnlineAlign.Alignment.Consistency;
using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Pairs;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Specs;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>
/// The phases of one online round as pure functions of their inputs, so that a phase can be re-run
/// after a crash and give the same output: generate, judge, consistency, pairs, reference log-probs,
/// train, evaluate. OnlineAlign.Execution chains them over checkpoint folders (RoundJob): the cluster's worker
/// grains persist each phase's output, and InProcessRun drives the same chain in one process for experiments.
/// </summary>
public static class RoundPhases
{
    /// <summary>N samples per prompt; each sample's seed depends only on (seed, round, prompt index, sample).</summary>
    public static List<ResponseGroup> Generate(DecoderLM policy, ITextTokenizer tokenizer, IReadOnlyList<PromptItem> prompts,
        IReadOnlyList<int> promptIndices, RoundSettings s, ulong seed, int round, CancellationToken cancellationToken = default)
    {
        var promptIds = prompts.Select(p => Examples.PromptIds(tokenizer, p.Prompt)).ToList();
        var jobs = prompts.SelectMany((p, i) => Enumerable.Range(0, s.SamplesPerPrompt).Select(k => (Prompt: i, Sample: k))).ToList();
        var options = Options(s.Sampling) with { StopTokenIds = [.. tokenizer.Chat.StopIds], PadTokenId = Math.Max(0, tokenizer.PadId) };
        var outputs = TextGenerator.Generate(policy, jobs.Select(j => promptIds[j.Prompt]).ToList(), options,
            jobs.Select(j => Seeds.For(seed, round, promptIndices[j.Prompt], j.Sample)).ToList(), s.Sampling.BatchSize, cancellationToken);
        return Groups(tokenizer, prompts, prompts.Select((_, i) =>
            (IReadOnlyList<int[]>)outputs.Skip(i * s.SamplesPerPrompt).Take(s.SamplesPerPrompt).Select(o => o.Tokens).ToList()).ToList(), promptIndices);
    }

    /// <summary>Response groups from already sampled token ids (one list per prompt).</summary>
    /// <param name="promptIndices">each prompt's index in the run's prompt order (default: its position)</param>
    public static List<ResponseGroup> Groups(ITextTokenizer tokenizer, IReadOnlyList<PromptItem> prompts, IReadOnlyList<IReadOnlyList<int[]>> responses,
        IReadOnlyList<int>? promptIndices = null)
    {
        if (responses.Count != prompts.Count)
            throw new ArgumentException($"{responses.Count} response lists for {prompts.Count} prompts");
        return prompts.Select((p, i) => new ResponseGroup(p, Examples.PromptIds(tokenizer, p.Prompt), responses[i],
            responses[i].Select(r => tokenizer.Decode(r)).ToList(), promptIndices?[i] ?? i)).ToList();
    }

    /// <summary>
    /// The judge phase: scores from this round's judge and (for CREAM) the previous round's, the per-prompt
    /// consistency C, and the round's generation and judge metrics.
    /// </summary>
    public static JudgeOutcome Judge(IReadOnlyList<ResponseGroup> groups, IJudge judge, IJudge? previousJudge, RoundSettings s,
        IVerifiableTask? task, int eosId, CancellationToken cancellationToken = default) =>
        Summarize(groups, ScoreShard(groups, Enumerable.Range(0, groups.Count).ToList(), judge, previousJudge, cancellationToken), s, task, eosId);

    /// <summary>One shard of the judge phase: this round's judge's and the previous judge's scores of the prompts at <paramref name="positions"/>.</summary>
    public static JudgeScores ScoreShard(IReadOnlyList<ResponseGroup> groups, IReadOnlyList<int> positions, IJudge judge, IJudge? previousJudge,
        CancellationToken cancellationToken = default)
    {
        var current = judge.ScoreShard(groups, positions, cancellationToken);
        var previous = previousJudge?.ScoreShard(groups, positions, cancellationToken);
        return new JudgeScores(positions.ToList(), [.. current.Scores], previous is null ? null : [.. previous.Scores],
            current.Agreement is null ? null : [.. current.Agreement], current.ParseFailures);
    }

    /// <summary>
    /// The judge phase's outcome from the whole round's scores (one shard's or several merged): CREAM's consistency C and
    /// every metric, computed once from the merged arrays, never averaged over shards.
    /// </summary>
    public static JudgeOutcome Summarize(IReadOnlyList<ResponseGroup> groups, JudgeScores scored, RoundSettings s, IVerifiableTask? task, int eosId)
    {
        if (scored.Scores.Length != groups.Count) throw new ArgumentException($"{scored.Scores.Length} score lists for {groups.Count} prompts");
        var metrics = new Dictionary<string, double>();
        metrics["generation/length_mean"] = groups.SelectMany(g => g.ResponseIds.Select(r => (double)r.Length)).Average();
        metrics["generation/eos_rate"] = groups.SelectMany(g => g.ResponseIds).Average(r => r.Length > 0 && r[^1] == eosId ? 1.0 : 0.0);

        var current = new JudgeResult(scored.Scores, scored.ParseFailures, scored.Agreement);
        var previous = scored.Previous is null ? null : new JudgeResult(scored.Previous);
        var finite = current.Scores.SelectMany(v => v).Where(double.IsFinite).ToList();
        metrics["judge/score_mean"] = finite.Count > 0 ? finite.Average() : double.NaN;
        metrics["judge/score_std"] = finite.Count > 0 ? Math.Sqrt(finite.Average(v => Math.Pow(v - finite.Average(), 2))) : double.NaN;
        metrics["judge/parse_failures"] = current.ParseFailures;
        // Responses the judge left unscored (an unparsable or cut-off judgement) take part in no pair.
        metrics["judge/unscored_rate"] = current.Scores.SelectMany(v => v).Average(v => double.IsFinite(v) ? 0.0 : 1.0);
        if (task is not null)
        {
            var truth = new VerifierJudge(task).Score(groups).Scores;
            if (s.Judge.Kind != "verifier")
            {
                // How well the self-judge ranks like the verifier, on prompts where the verifier separates responses.
                var taus = truth.Select((t, i) => (t, i)).Where(p => p.t.Distinct().Count() > 1 && RankAgreement.Ranks(current.Scores[p.i], p.t))
                    .Select(p => RankAgreement.KendallTauB(current.Scores[p.i], p.t)).ToList();
                metrics["judge/tau_vs_verifier"] = taus.Count > 0 ? taus.Average() : double.NaN;
            }
            metrics["generation/accuracy"] = truth.SelectMany(v => v).Average();
        }
        // Label-free health signals (the guard reads them; docs/watching.md#health-signals).
        var scores = current.Scores.Select(v => (IReadOnlyList<double>)v).ToList();
        metrics[HealthSignals.ScoreEntropy] = HealthSignals.NormalisedScoreEntropy(scores);
        metrics[HealthSignals.UnscoredRate] = HealthSignals.Unscored(scores);
        if (current.Agreement is { } implicitReward)
            metrics[HealthSignals.ImplicitAgreement] = HealthSignals.Agreement(scores, implicitReward.Select(v => (IReadOnlyList<double>)v).ToList());
        if (s.Judge.Kind != "majority")
            metrics[HealthSignals.MajorityAgreement] = HealthSignals.VoteAgreement(scores, new MajorityJudge().Score(groups).Scores.Select(v => (IReadOnlyList<double>)v).ToList());
        var (consistency, meanTau) = Consistency(current.Scores.ToList(), previous?.Scores.ToList(), s.Consistency);
        metrics["consistency/C"] = consistency.Average();
        metrics["consistency/tau"] = meanTau;
        return new JudgeOutcome(current.Scores.Select(r => r.ToArray()).ToArray(), consistency, metrics, current.Agreement?.Select(r => r.ToArray()).ToArray());
    }

    /// <summary>The pairs phase: preference pairs from the judge's scores, with reference log-probs and C.</summary>
    public static PairsOutcome Pairs(IReadOnlyList<ResponseGroup> groups, JudgeOutcome judged, RoundSettings s, DecoderLM reference,
        ulong seed, int round, int padTokenId, CancellationToken cancellationToken = default)
    {
        var plan = PlanPairs(groups, judged, s, seed, round);
        return SummarizePairs(plan, ReferenceLogProbs(plan, Enumerable.Range(0, plan.Pairs.Count).ToList(), reference, padTokenId, cancellationToken));
    }

    /// <summary>The round's pair plan from the judge phase's outcome (the pairs phase's seed is the run's and the round's).</summary>
    public static PairPlan PlanPairs(IReadOnlyList<ResponseGroup> groups, JudgeOutcome judged, RoundSettings s, ulong seed, int round) =>
        PlanPairs(groups, judged.Scores, judged.Consistency, s, (int)(seed % int.MaxValue) + round, judged.Agreement);

    /// <summary>The pairs phase's outcome from every pair's reference log-prob sums: metrics computed once, over the whole round.</summary>
    public static PairsOutcome SummarizePairs(PairPlan plan, IReadOnlyList<double[]> sums)
    {
        var (examples, stats) = (AssemblePairs(plan, sums), plan.Statistics);
        var metrics = new Dictionary<string, double>
        {
            ["pairs/kept"] = stats.Pairs,
            ["pairs/dropped_all_equal"] = stats.AllEqual,
            ["pairs/dropped_min_gap"] = stats.BelowMinimumGap,
            ["pairs/dropped_disagreement"] = stats.Disagreements,
            ["lengths/chosen"] = examples.Count > 0 ? examples.Average(e => e.Chosen.Length) : double.NaN,
            ["lengths/rejected"] = examples.Count > 0 ? examples.Average(e => e.Rejected.Length) : double.NaN,
        };
        return new PairsOutcome(examples, metrics);
    }

    /// <summary>
    /// The train phase: the policy is updated in place; metrics are the means over the round's steps. Curriculum
    /// pairs (Curry-DPO) train stage after stage, never shuffled across stages, and each stage after the first
    /// takes the model the previous stage ended with as its reference (its log-probs computed here).
    /// </summary>
    public static TrainOutcome Train(DecoderLM policy, PairsOutcome pairs, RoundSettings s, ulong seed, int round, int padTokenId,
        Action<int, int>? progress = null, OptimizerState? optimizerState = null, CancellationToken cancellationToken = default)
    {
        var steps = new List<StepMetrics>();
        // LoRA dropout draws its masks from a generator of the round's own, so a resumed round trains the same way.
        using var dropoutGenerator = policy.Lora is { Dropout: > 0 } ? new TorchSharp.torch.Generator(Seeds.For(seed, round, -2, 0)) : null;
        using var dropout = dropoutGenerator is null ? null : policy.AdapterDropout(dropoutGenerator);
        foreach (var stage in pairs.Examples.GroupBy(e => e.Stage).OrderBy(g => g.Key))
        {
            var examples = stage.Key == 0 ? stage.ToList() : WithReference(policy, stage.ToList(), padTokenId, cancellationToken);
            steps.AddRange(PreferenceTrainer.Train(policy, examples, TrainerSettings(s, seed, round, stage.Key), padTokenId,
                progress, optimizerState, cancellationToken));
        }
        return Trained(steps);
    }

    /// <summary>The preference trainer's settings for a round's curriculum stage (0 without a curriculum).</summary>
    public static PreferenceTrainer.Settings TrainerSettings(RoundSettings s, ulong seed, int round, int stage) =>
        new(s.Loss, Optimizer(s.Optimizer), s.Optimizer.Epochs, s.Optimizer.BatchSize, (int)(seed % int.MaxValue) + round + 7919 * stage);

    /// <summary>
    /// Whether the train phase can run data-parallel, bit-identical to one replica: one curriculum stage (a later stage's
    /// reference comes from the model the stage before ended with), no LoRA dropout (its masks come from one generator
    /// drawn in micro-batch order), and a gradient that fits one .NET array (the exchange's unit; full fine-tuning past
    /// about 2.1B parameters trains on one replica).
    /// </summary>
    public static bool DataParallelizable(DecoderLM policy, PairsOutcome pairs) =>
        policy.Lora is not { Dropout: > 0 } && pairs.Examples.All(e => e.Stage == 0)
        && policy.parameters().Where(p => p.requires_grad).Sum(p => p.NumberOfElements) <= Array.MaxLength;

    /// <summary>The train phase's outcome from its steps: the metrics are the means over the steps.</summary>
    public static TrainOutcome Trained(List<StepMetrics> steps)
    {
        var metrics = new Dictionary<string, double>();
        foreach (var key in steps.FirstOrDefault()?.Named().Keys ?? [])
            metrics[key] = steps.Average(st => st.Named()[key]);
        return new TrainOutcome(steps, metrics);
    }

    /// <summary>The pairs with their reference log-probs under another model (a curriculum stage's starting point).</summary>
    private static List<PairExample> WithReference(DecoderLM reference, List<PairExample> pairs, int padTokenId, CancellationToken cancellationToken)
    {
        var rows = pairs.SelectMany(p => new[] { new PromptResponse(p.Prompt, p.Chosen), new PromptResponse(p.Prompt, p.Rejected),
            new PromptResponse(p.Prompt, p.Explore ?? p.Chosen) }).ToList();
        var logProbs = ResponseLogProbs.Score(reference, rows, 32, padTokenId, cancellationToken, sharePrompts: false);
        return pairs.Select((p, i) => p with
        {
            ReferenceChosen = logProbs[3 * i].Sum, ReferenceRejected = logProbs[3 * i + 1].Sum,
            ReferenceExplore = p.Explore is null ? 0 : logProbs[3 * i + 2].Sum,
        }).ToList();
    }

    /// <summary>
    /// SPPO's estimate of P(y_i beats the policy): the mean over the prompt's scored responses j of
    /// sigmoid(s_i - s_j), the response itself included (0.5), as SPPO's compute_prob.py does with PairRM scores.
    /// </summary>
    public static double WinRate(IReadOnlyList<double> scores, int i)
    {
        var scored = scores.Where(double.IsFinite).ToList();
        return scored.Average(sj => 1 / (1 + Math.Exp(sj - scores[i])));
    }

    /// <summary>CREAM's per-prompt consistency between this round's and the previous judge's scores.</summary>
    /// <returns>C per prompt (1 where no previous scores), and the mean Kendall tau over prompts.</returns>
    public static (double[] C, double MeanTau) Consistency(IReadOnlyList<double[]> current, IReadOnlyList<double[]>? previous, string mode)
    {
        if (mode == "none" || previous is null) return (Enumerable.Repeat(1.0, current.Count).ToArray(), double.NaN);
        var taus = current.Select((c, i) => RankAgreement.Ranks(c, previous[i]) ? RankAgreement.KendallTauB(c, previous[i]) : double.NaN).ToArray();
        var ranked = taus.Where(double.IsFinite).ToList();
        // A prompt the two judges do not both rank gets the round's mean C, as CREAM's data.py does (not C = 0.5);
        // with none ranked there is no evidence either way, as without a previous judge.
        double meanC = ranked.Count > 0 ? ranked.Average(RankAgreement.ConsistencyRate) : 1.0;
        // Per prompt; "avg" is averaged over the prompts that yield a pair when the pairs are built.
        return (taus.Select(t => double.IsFinite(t) ? RankAgreement.ConsistencyRate(t) : meanC).ToArray(), ranked.Count > 0 ? ranked.Average() : double.NaN);
    }

    /// <summary>Pairs with their prompt's C, and reference log-probs computed once for the whole round.</summary>
    public static (List<PairExample> Examples, PairStatistics Statistics, List<PreferencePair> Pairs) BuildPairs(
        IReadOnlyList<ResponseGroup> groups, IReadOnlyList<double[]> scores, double[] consistency, RoundSettings s,
        DecoderLM reference, int seed, int padTokenId, CancellationToken cancellationToken = default, IReadOnlyList<double[]>? agreement = null)
    {
        var plan = PlanPairs(groups, scores, consistency, s, seed, agreement);
        var sums = ReferenceLogProbs(plan, Enumerable.Range(0, plan.Pairs.Count).ToList(), reference, padTokenId, cancellationToken);
        return (AssemblePairs(plan, sums), plan.Statistics, plan.Pairs);
    }

    /// <summary>The round's pairs and each pair's C, before any model runs (cheap: every pairs shard plans the same).</summary>
    public static PairPlan PlanPairs(IReadOnlyList<ResponseGroup> groups, IReadOnlyList<double[]> scores, double[] consistency, RoundSettings s,
        int seed, IReadOnlyList<double[]>? agreement = null)
    {
        // NaN scores (no valid judgement) take part in no pair: PairBuilder leaves those responses out. The plan keeps the
        // scores the pairs were built on (shuffled for that control), so SPPO's targets read the same ones.
        var (pairs, stats) = PairBuilder.Build(scores.Select(r => (IReadOnlyList<double>)r).ToList(), s.PairStrategy, s.MinScoreGap, seed);
        scores = PairBuilder.ScoresSeenBy(s.PairStrategy, scores, seed);
        if (agreement is not null && s.Judge.Kind == "self_consistent")   // kind llm only measures the implicit reward's agreement
        {
            int before = pairs.Count;
            pairs = pairs.Where(p => AgreementJudge.Agrees(agreement[p.PromptIndex], p.Chosen, p.Rejected)).ToList();
            stats = stats with { Pairs = pairs.Count, Disagreements = before - pairs.Count };
        }
        if (s.Consistency == "avg")
        {
            // CREAM's "avg": one C for the round, the mean over the prompts that yield a pair (as its code computes it).
            double mean = pairs.Select(p => p.PromptIndex).Distinct().Select(i => consistency[i]).DefaultIfEmpty(1.0).Average();
            consistency = Enumerable.Repeat(mean, consistency.Length).ToArray();
        }
        // SELM's y: the prompt's first sample, a draw from the policy at the round's start (the reference with previous_round).
        return new PairPlan(groups, scores, consistency, pairs, stats, s.Loss.SelmAlpha > 0 ? 3 : 2);
    }

    /// <summary>
    /// The reference log-prob sums of some pairs' rows (chosen, rejected, and SELM's y): the pairs at <paramref name="positions"/>,
    /// contiguous and starting on a chunk boundary of the whole round's rows (a pairs shard), [pair][row].
    /// </summary>
    public static double[][] ReferenceLogProbs(PairPlan plan, IReadOnlyList<int> positions, DecoderLM reference, int padTokenId,
        CancellationToken cancellationToken = default)
    {
        var rows = positions.Select(i => plan.Pairs[i]).SelectMany(p => new[]
        {
            new PromptResponse(plan.Groups[p.PromptIndex].PromptIds, plan.Groups[p.PromptIndex].ResponseIds[p.Chosen]),
            new PromptResponse(plan.Groups[p.PromptIndex].PromptIds, plan.Groups[p.PromptIndex].ResponseIds[p.Rejected]),
            new PromptResponse(plan.Groups[p.PromptIndex].PromptIds, plan.Groups[p.PromptIndex].ResponseIds[0]),
        }.Take(plan.RowsPerPair)).ToList();
        // The plain pass, the training forward's arithmetic: where the reference is the policy itself (a round's first
        // step), its rewards are then exactly zero, as in TRL, not float noise that would decide rewards/accuracies.
        var logProbs = ResponseLogProbs.Score(reference, rows, PairChunkRows, padTokenId, cancellationToken, sharePrompts: false);
        return positions.Select((_, i) => Enumerable.Range(0, plan.RowsPerPair).Select(k => logProbs[plan.RowsPerPair * i + k].Sum).ToArray()).ToArray();
    }

    /// <summary>The rows one reference log-prob forward takes in the pairs phase: its shards are cut on these chunks.</summary>
    public const int PairChunkRows = 32;

    /// <summary>The training examples, from the plan and every pair's reference log-prob sums (merged from the shards).</summary>
    public static List<PairExample> AssemblePairs(PairPlan plan, IReadOnlyList<double[]> sums)
    {
        if (sums.Count != plan.Pairs.Count) throw new ArgumentException($"{sums.Count} reference log-prob rows for {plan.Pairs.Count} pairs");
        bool explore = plan.RowsPerPair == 3;
        var (groups, scores) = (plan.Groups, plan.Scores);
        return plan.Pairs.Select((p, i) => new PairExample(
            groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[p.Chosen], groups[p.PromptIndex].ResponseIds[p.Rejected],
            sums[i][0], sums[i][1], plan.Consistency[p.PromptIndex], p.Stage,
            WinRate(scores[p.PromptIndex], p.Chosen), WinRate(scores[p.PromptIndex], p.Rejected),
            explore ? groups[p.PromptIndex].ResponseIds[0] : null, explore ? sums[i][2] : 0)).ToList();
    }

    /// <summary>Held-out accuracy (greedy), lengths, EOS rate, and KL estimates from one sample per prompt.</summary>
    public static Dictionary<string, double> Evaluate(DecoderLM policy, DecoderLM reference, DecoderLM initial, ITextTokenizer tokenizer,
        IVerifiableTask? task, IReadOnlyList<PromptItem> evalPrompts, int maxNewTokens, ulong seed, int batchSize,
        CancellationToken cancellationToken = default) =>
        SummarizeEvaluation(EvaluateShard(policy, reference, initial, tokenizer, task, evalPrompts, Enumerable.Range(0, evalPrompts.Count).ToList(),
            maxNewTokens, seed, batchSize, cancellationToken), task is not null);

    /// <summary>The rows one KL log-prob forward takes in evaluation: its shards are cut on these chunks.</summary>
    public const int EvalChunkRows = 16;

    /// <summary>
    /// One evaluation shard: for the evaluation prompts at <paramref name="positions"/> (contiguous, starting on a chunk
    /// boundary), the greedy answer's check and length, and one temperature-1 sample's log-probs under the policy, the
    /// reference and the initial model. A sample's seed is its prompt's index, whichever shard draws it.
    /// </summary>
    public static EvalShard EvaluateShard(DecoderLM policy, DecoderLM reference, DecoderLM initial, ITextTokenizer tokenizer,
        IVerifiableTask? task, IReadOnlyList<PromptItem> evalPrompts, IReadOnlyList<int> positions, int maxNewTokens, ulong seed, int batchSize,
        CancellationToken cancellationToken = default)
    {
        if (positions.Count == 0) return new EvalShard([], [], [], [], [], [], [], []);
        var prompts = positions.Select(p => evalPrompts[p]).ToList();
        var ids = prompts.Select(p => Examples.PromptIds(tokenizer, p.Prompt)).ToList();
        var stop = new SamplingOptions { MaxNewTokens = maxNewTokens, Temperature = 0,
            StopTokenIds = [.. tokenizer.Chat.StopIds], PadTokenId = Math.Max(0, tokenizer.PadId) };
        var greedy = TextGenerator.Generate(policy, ids, stop, maxBatch: batchSize, cancellationToken: cancellationToken);
        var correct = task is null ? prompts.Select(_ => double.NaN).ToArray()
            : prompts.Select((p, i) => task.Verify(p, tokenizer.Decode(greedy[i].Tokens)) ? 1.0 : 0.0).ToArray();

        // KL(pi || ref) ~ E_{y ~ pi}[log pi(y) - log ref(y)] with y sampled at temperature 1.
        var samples = TextGenerator.Generate(policy, ids, stop with { Temperature = 1.0 },
            positions.Select(i => Seeds.For(seed, -1, i, 0)).ToList(), batchSize, cancellationToken);
        var rows = ids.Select((p, i) => new PromptResponse(p, samples[i].Tokens)).ToList();
        double[] Sums(DecoderLM model) => [.. ResponseLogProbs.Score(model, rows, EvalChunkRows, cancellationToken: cancellationToken).Select(o => o.Sum)];
        var own = Sums(policy);
        var referenceSums = Sums(reference);
        var initialSums = Sums(initial);
        return new EvalShard(positions.ToList(), correct, [.. greedy.Select(g => g.Tokens.Length)], [.. greedy.Select(g => g.Stopped)],
            own, referenceSums, initialSums, [.. samples.Select(g => g.Tokens.Length)]);
    }

    /// <summary>The evaluation metrics, computed once from every evaluation prompt's results (the shards merged, in prompt order).</summary>
    /// <param name="stream">the evaluation stream (validation or test): its accuracy is also written as eval/{stream}/accuracy, so a
    /// reader can tell which stream eval/accuracy measured</param>
    public static Dictionary<string, double> SummarizeEvaluation(EvalShard all, bool hasTask, string? stream = null)
    {
        var metrics = new Dictionary<string, double>();
        if (all.Positions.Count == 0) return metrics;
        if (hasTask) metrics["eval/accuracy"] = all.Correct.Average();
        if (hasTask && stream is not null) metrics[$"eval/{stream}/accuracy"] = all.Correct.Average();
        metrics["eval/length_mean"] = all.GreedyLengths.Average();
        metrics["eval/eos_rate"] = all.Stopped.Average(s => s ? 1.0 : 0.0);
        metrics["kl/reference"] = all.Own.Zip(all.Reference, (a, b) => a - b).Average();
        metrics["kl/initial"] = all.Own.Zip(all.Initial, (a, b) => a - b).Average();
        // The guard's KL (per sequence and per response token, on the same samples: no other forward) and the sampled length
        // health/length_drift is measured by.
        metrics[HealthSignals.KlInitial] = HealthSignals.Kl(all.Own, all.Initial);
        metrics[HealthSignals.KlInitialPerToken] = HealthSignals.KlPerToken(all.Own, all.Initial, all.SampleLengths);
        metrics[HealthSignals.SampleLength] = all.SampleLengths.Average();
        return metrics;
    }

    /// <summary>The generator's options for the spec's sampling section (the per-call seed, stop and pad ids are added by the caller).</summary>
    public static SamplingOptions Options(SamplingSpec s) =>
        new() { Temperature = s.Temperature, TopP = s.TopP, TopK = s.TopK, MaxNewTokens = s.MaxNewTokens };

    /// <summary>AdamW for the spec's optimizer section (PyTorch's betas and epsilon, a constant schedule after warmup).</summary>
    public static OptimizerSettings Optimizer(OptimizerSpec o) =>
        new()
        {
            LearningRate = o.LearningRate, WeightDecay = o.WeightDecay, MaxGradNorm = o.MaxGradNorm, WarmupSteps = o.WarmupSteps,
            GradientAccumulation = o.GradientAccumulation,
        };
}
