using OnlineAlign.Alignment.Consistency;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Pairs;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>
/// The phases of one online round as pure functions of their inputs, so that a phase can be re-run
/// after a crash and give the same output: generate, judge, consistency, pairs, reference log-probs,
/// train, evaluate. <see cref="OnlineRound"/> chains them in-process; the grains persist each output.
/// </summary>
public static class RoundPhases
{
    /// <summary>N samples per prompt; each sample's seed depends only on (seed, round, prompt index, sample).</summary>
    public static List<ResponseGroup> Generate(DecoderLM policy, ITextTokenizer tokenizer, IReadOnlyList<PromptItem> prompts,
        IReadOnlyList<int> promptIndices, RoundSettings s, ulong seed, int round, int batchSize = 64)
    {
        var promptIds = prompts.Select(p => Examples.PromptIds(tokenizer, p.Prompt)).ToList();
        var jobs = prompts.SelectMany((p, i) => Enumerable.Range(0, s.SamplesPerPrompt).Select(k => (Prompt: i, Sample: k))).ToList();
        var options = s.Sampling with { StopTokenIds = [tokenizer.EosId], PadTokenId = Math.Max(0, tokenizer.PadId) };
        var outputs = new List<Continuation>(jobs.Count);
        for (int start = 0; start < jobs.Count; start += batchSize)
        {
            var chunk = jobs.Skip(start).Take(batchSize).ToList();
            outputs.AddRange(TextGenerator.Generate(policy, chunk.Select(j => promptIds[j.Prompt]).ToList(), options,
                chunk.Select(j => Seeds.For(seed, round, promptIndices[j.Prompt], j.Sample)).ToList()));
        }
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

    /// <summary>CREAM's per-prompt consistency between this round's and the previous judge's scores.</summary>
    /// <returns>C per prompt (1 where no previous scores), and the mean Kendall tau over prompts.</returns>
    public static (double[] C, double MeanTau) Consistency(IReadOnlyList<double[]> current, IReadOnlyList<double[]>? previous, string mode)
    {
        if (mode == "none" || previous is null) return (Enumerable.Repeat(1.0, current.Count).ToArray(), double.NaN);
        var taus = current.Select((c, i) => RankAgreement.KendallTauB(c, previous[i])).ToArray();
        var rates = taus.Select(RankAgreement.ConsistencyRate).ToArray();
        if (mode == "avg") rates = Enumerable.Repeat(rates.Average(), rates.Length).ToArray();
        return (rates, taus.Average());
    }

    /// <summary>Pairs with their prompt's C, and reference log-probs computed once for the whole round.</summary>
    public static (List<PairExample> Examples, PairStatistics Statistics, List<PreferencePair> Pairs) BuildPairs(
        IReadOnlyList<ResponseGroup> groups, IReadOnlyList<double[]> scores, double[] consistency, RoundSettings s,
        DecoderLM reference, int seed, int padTokenId)
    {
        // NaN scores (unparsable judgements) are excluded: treat them as absent by mapping to the group's minimum.
        var usable = scores.Select(row => row.Any(double.IsNaN)
            ? row.Select(v => double.IsNaN(v) ? (row.Where(x => !double.IsNaN(x)).DefaultIfEmpty(0).Min()) : v).ToArray() : row).ToList();
        var (pairs, stats) = PairBuilder.Build(usable.Select(r => (IReadOnlyList<double>)r).ToList(), s.PairStrategy, s.MinScoreGap, seed);
        var rows = pairs.SelectMany(p => new[]
        {
            new PromptResponse(groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[p.Chosen]),
            new PromptResponse(groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[p.Rejected]),
        }).ToList();
        var logProbs = ResponseLogProbs.Score(reference, rows, 32, padTokenId);
        var examples = pairs.Select((p, i) => new PairExample(
            groups[p.PromptIndex].PromptIds, groups[p.PromptIndex].ResponseIds[p.Chosen], groups[p.PromptIndex].ResponseIds[p.Rejected],
            logProbs[2 * i].Sum, logProbs[2 * i + 1].Sum, consistency[p.PromptIndex])).ToList();
        return (examples, stats, pairs);
    }

    /// <summary>Held-out accuracy (greedy), lengths, EOS rate, and KL estimates from one sample per prompt.</summary>
    public static Dictionary<string, double> Evaluate(DecoderLM policy, DecoderLM reference, DecoderLM initial, ITextTokenizer tokenizer,
        IVerifiableTask? task, IReadOnlyList<PromptItem> evalPrompts, int maxNewTokens, ulong seed)
    {
        var metrics = new Dictionary<string, double>();
        if (evalPrompts.Count == 0) return metrics;
        var ids = evalPrompts.Select(p => Examples.PromptIds(tokenizer, p.Prompt)).ToList();
        var stop = new SamplingOptions { MaxNewTokens = maxNewTokens, Temperature = 0, StopTokenIds = [tokenizer.EosId], PadTokenId = Math.Max(0, tokenizer.PadId) };
        var greedy = TextGenerator.Generate(policy, ids, stop);
        if (task is not null)
            metrics["eval/accuracy"] = evalPrompts.Select((p, i) => task.Verify(p, tokenizer.Decode(greedy[i].Tokens)) ? 1.0 : 0.0).Average();
        metrics["eval/length_mean"] = greedy.Average(g => g.Tokens.Length);
        metrics["eval/eos_rate"] = greedy.Average(g => g.Stopped ? 1.0 : 0.0);

        // KL(pi || ref) ~ E_{y ~ pi}[log pi(y) - log ref(y)] with y sampled at temperature 1.
        var samples = TextGenerator.Generate(policy, ids, stop with { Temperature = 1.0 },
            Enumerable.Range(0, ids.Count).Select(i => Seeds.For(seed, -1, i, 0)).ToList());
        var rows = ids.Select((p, i) => new PromptResponse(p, samples[i].Tokens)).ToList();
        var own = ResponseLogProbs.Score(policy, rows);
        metrics["kl/reference"] = own.Zip(ResponseLogProbs.Score(reference, rows), (a, b) => a.Sum - b.Sum).Average();
        metrics["kl/initial"] = own.Zip(ResponseLogProbs.Score(initial, rows), (a, b) => a.Sum - b.Sum).Average();
        return metrics;
    }
}
