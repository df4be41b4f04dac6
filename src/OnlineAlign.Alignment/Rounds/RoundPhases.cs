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
            (IReadOnlyList<int[]>)outputs.Skip(i * s.SamplesPerPrompt).Take(s.SamplesPerPrompt).Select(o => o.Tokens).ToList()).ToList());
    }

    /// <summary>Response groups from already sampled token ids (one list per prompt).</summary>
    public static List<ResponseGroup> Groups(ITextTokenizer tokenizer, IReadOnlyList<PromptItem> prompts, IReadOnlyList<IReadOnlyList<int[]>> responses)
    {
        if (responses.Count != prompts.Count)
            throw new ArgumentException($"{responses.Count} response lists for {prompts.Count} prompts");
        return prompts.Select((p, i) => new ResponseGroup(p, Examples.PromptIds(tokenizer, p.Prompt), responses[i],
            responses[i].Select(r => tokenizer.Decode(r)).ToList())).ToList();
    }

    /// <summary>
    /// The judge phase: scores from this round's judge and (for CREAM) the previous round's, the per-prompt
    /// consistency C, and the round's generation and judge metrics.
    /// </summary>
    public static JudgeOutcome Judge(IReadOnlyList<ResponseGroup> groups, IJudge judge, IJudge? previousJudge, RoundSettings s,
        IVerifiableTask? task, int eosId, CancellationToken cancellationToken = default)
    {
        var metrics = new Dictionary<string, double>();
        metrics["generation/length_mean"] = groups.SelectMany(g => g.ResponseIds.Select(r => (double)r.Length)).Average();
        metrics["generation/eos_rate"] = groups.SelectMany(g => g.ResponseIds).Average(r => r.Length > 0 && r[^1] == eosId ? 1.0 : 0.0);

        var current = judge.Score(groups, cancellationToken);
        var previous = previousJudge?.Score(groups, cancellationToken);
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
        var (consistency, meanTau) = Consistency(current.Scores.ToList(), previous?.Scores.ToList(), s.Consistency);
        metrics["consistency/C"] = consistency.Average();
        metrics["consistency/tau"] = meanTau;
        return new JudgeOutcome(current.Scores.Select(r => r.ToArray()).ToArray(), consistency, metrics, current.Agreement?.Select(r => r.ToArray()).ToArray());
    }

    /// <summary>The pairs phase: preference pairs from the judge's scores, with reference log-probs and C.</summary>
    public static PairsOutcome Pairs(IReadOnlyList<ResponseGroup> groups, JudgeOutcome judged, RoundSettings s, DecoderLM reference,
        ulong seed, int round, int padTokenId, CancellationToken cancellationToken = default)
    {
        var (examples, stats, _) = BuildPairs(groups, judged.Scores, judged.Consistency, s, reference, (int)(seed % int.MaxValue) + round, padTokenId,
            cancellationToken, judged.Agreement);
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
            steps.AddRange(PreferenceTrainer.Train(policy, examples,
                new PreferenceTrainer.Settings(s.Loss, Optimizer(s.Optimizer), s.Optimizer.Epochs, s.Optimizer.BatchSize, (int)(seed % int.MaxValue) + round + 7919 * stage.Key), padTokenId,
                progress, optimizerState, cancellationToken));
        }
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
        // NaN scores (no valid judgement) take part in no pair: PairBuilder leaves those responses out.
        var (pairs, stats) = PairBuilder.Build(scores.Select(r => (IReadOnlyList<double>)r).ToList(), s.PairStrategy, s.MinScoreGap, seed);
        if (agreement is not null)
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
        bool explore = s.Loss.SelmAlpha > 0;
        int perPair = explore ? 3 : 2;
        var rows = pairs.SelectMany(p => new[]
        {
            new PromptResponse(groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[p.Chosen]),
            new PromptResponse(groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[p.Rejected]),
            new PromptResponse(groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[0]),
        }.Take(perPair)).ToList();
        // The plain pass, the training forward's arithmetic: where the reference is the policy itself (a round's first
        // step), its rewards are then exactly zero, as in TRL, not float noise that would decide rewards/accuracies.
        var logProbs = ResponseLogProbs.Score(reference, rows, 32, padTokenId, cancellationToken, sharePrompts: false);
        var examples = pairs.Select((p, i) => new PairExample(
            groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[p.Chosen], groups[p.PromptIndex].ResponseIds[p.Rejected],
            logProbs[perPair * i].Sum, logProbs[perPair * i + 1].Sum, consistency[p.PromptIndex], p.Stage,
            WinRate(scores[p.PromptIndex], p.Chosen), WinRate(scores[p.PromptIndex], p.Rejected),
            explore ? groups[p.PromptIndex].ResponseIds[0] : null, explore ? logProbs[perPair * i + 2].Sum : 0)).ToList();
        return (examples, stats, pairs);
    }

    /// <summary>Held-out accuracy (greedy), lengths, EOS rate, and KL estimates from one sample per prompt.</summary>
    public static Dictionary<string, double> Evaluate(DecoderLM policy, DecoderLM reference, DecoderLM initial, ITextTokenizer tokenizer,
        IVerifiableTask? task, IReadOnlyList<PromptItem> evalPrompts, int maxNewTokens, ulong seed, int batchSize,
        CancellationToken cancellationToken = default)
    {
        var metrics = new Dictionary<string, double>();
        if (evalPrompts.Count == 0) return metrics;
        var ids = evalPrompts.Select(p => Examples.PromptIds(tokenizer, p.Prompt)).ToList();
        var stop = new SamplingOptions { MaxNewTokens = maxNewTokens, Temperature = 0, StopTokenIds = [.. tokenizer.Chat.StopIds], PadTokenId = Math.Max(0, tokenizer.PadId) };
        var greedy = TextGenerator.Generate(policy, ids, stop, maxBatch: batchSize, cancellationToken: cancellationToken);
        if (task is not null)
            metrics["eval/accuracy"] = evalPrompts.Select((p, i) => task.Verify(p, tokenizer.Decode(greedy[i].Tokens)) ? 1.0 : 0.0).Average();
        metrics["eval/length_mean"] = greedy.Average(g => g.Tokens.Length);
        metrics["eval/eos_rate"] = greedy.Average(g => g.Stopped ? 1.0 : 0.0);

        // KL(pi || ref) ~ E_{y ~ pi}[log pi(y) - log ref(y)] with y sampled at temperature 1.
        var samples = TextGenerator.Generate(policy, ids, stop with { Temperature = 1.0 },
            Enumerable.Range(0, ids.Count).Select(i => Seeds.For(seed, -1, i, 0)).ToList(), batchSize, cancellationToken);
        var rows = ids.Select((p, i) => new PromptResponse(p, samples[i].Tokens)).ToList();
        var own = ResponseLogProbs.Score(policy, rows, cancellationToken: cancellationToken);
        metrics["kl/reference"] = own.Zip(ResponseLogProbs.Score(reference, rows, cancellationToken: cancellationToken), (a, b) => a.Sum - b.Sum).Average();
        var initialLogProbs = ResponseLogProbs.Score(initial, rows, cancellationToken: cancellationToken);
        metrics["kl/initial"] = own.Zip(initialLogProbs, (a, b) => a.Sum - b.Sum).Average();
        // The guard's KL (per sequence, on the same samples) and the sampled length health/length_drift is measured by.
        metrics[HealthSignals.KlInitial] = HealthSignals.Kl(own.Select(o => o.Sum).ToList(), initialLogProbs.Select(o => o.Sum).ToList());
        metrics[HealthSignals.SampleLength] = samples.Average(g => g.Tokens.Length);
        return metrics;
    }

    /// <summary>The generator's options for the spec's sampling section (the per-call seed, stop and pad ids are added by the caller).</summary>
    public static SamplingOptions Options(SamplingSpec s) =>
        new() { Temperature = s.Temperature, TopP = s.TopP, TopK = s.TopK, MaxNewTokens = s.MaxNewTokens };

    /// <summary>AdamW for the spec's optimizer section (PyTorch's betas and epsilon, a constant schedule after warmup).</summary>
    public static OptimizerSettings Optimizer(OptimizerSpec o) =>
        new() { LearningRate = o.LearningRate, WeightDecay = o.WeightDecay, MaxGradNorm = o.MaxGradNorm, WarmupSteps = o.WarmupSteps };
}
