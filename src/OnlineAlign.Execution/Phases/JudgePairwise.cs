using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Specs;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// The run's pairwise set (guard.pairwise_pairs, guard.pairwise_jsonl) and the judge's accuracy on it: built again, identically,
/// wherever it is judged (the judge phase's shard 0, round 0's evaluation), so no phase needs another's output.
/// </summary>
public static class JudgePairwise
{
    /// <summary>The most UTF-8 bytes of one field of a guard.pairwise_jsonl line.</summary>
    public const int FieldBytes = 64 << 10;

    /// <summary>guard.pairwise_jsonl's first guard.pairwise_pairs pairs, else a built-in task's own set; empty when off or there is none.</summary>
    /// <param name="context">the model's context (positions): a file's rows must fit it as a round's rows do</param>
    public static IReadOnlyList<JudgePair> Set(RunSpec spec, ITextTokenizer tokenizer, int context)
    {
        if (spec.Guard.PairwisePairs <= 0) return [];
        if (!string.IsNullOrEmpty(spec.Guard.PairwiseJsonl)) return FromFile(spec, tokenizer, context);
        return RunSpecMapping.Task(spec) is { } task ? PairwiseSet.Builtin(task, spec.Guard.PairwisePairs, (int)(spec.Seed % int.MaxValue)) : [];
    }

    /// <summary>
    /// The file's first guard.pairwise_pairs pairs (it may hold at most <see cref="GuardSpec.PairwisePairsLimit"/>); a row whose
    /// prompt leaves no room for sampling.max_new_tokens, or whose chosen or rejected is longer than a round's sample can be,
    /// is refused naming the file and the line, as is any malformed line (<see cref="PreferenceJsonl"/>).
    /// </summary>
    public static IReadOnlyList<JudgePair> FromFile(RunSpec spec, ITextTokenizer tokenizer, int context)
    {
        string path = spec.Guard.PairwiseJsonl!;
        int most = spec.Sampling.MaxNewTokens;
        var rows = PreferenceJsonl.Parse(SpecFiles.ReadLines(path, SpecLimits.Default.PromptLineCharacters), path, GuardSpec.PairwisePairsLimit, FieldBytes);
        var pairs = new List<JudgePair>();
        foreach (var (line, item) in rows.Take(spec.Guard.PairwisePairs))
        {
            int prompt = Examples.PromptIds(tokenizer, item.Prompt).Length;
            if (prompt + most > context)
                throw new InvalidDataException($"{path}:{line}: the prompt is {prompt} tokens; " +
                    $"with sampling.max_new_tokens {most} it exceeds the model's context of {context}");
            foreach (var (name, text) in new[] { ("chosen", item.Chosen), ("rejected", item.Rejected) })
            {
                int tokens = Examples.ResponseIds(tokenizer, text).Length;
                if (tokens > most)
                    throw new InvalidDataException($"{path}:{line}: '{name}' is {tokens} tokens with its end of turn; " +
                        $"sampling.max_new_tokens is {most}, the longest a round's sample is");
            }
            pairs.Add(new JudgePair(new PromptItem(item.Prompt, null, line), item.Chosen, item.Rejected, "jsonl"));
        }
        return pairs;
    }

    /// <summary>judge/pairwise_accuracy and judge/pairwise_count of <paramref name="judge"/>; none where the set is empty.</summary>
    public static Dictionary<string, double> Metrics(RoundJob.Context c, ITextTokenizer tokenizer, IJudge judge) =>
        PairwiseJudging.Measure(Set(c.Spec, tokenizer, c.Shared(c.Request.Policy).Config.MaxPositions), tokenizer, judge, c.Cancellation);
}
