using OnlineAlign.Alignment.Tasks;

namespace OnlineAlign.Alignment.Health;

/// <summary>One pair of the pairwise set: a prompt, a response the checker (or the file's author) prefers, and one it does not.</summary>
/// <param name="Kind">how the rejected response was made (a built-in set's kind of wrong answer; "jsonl" for a user's file)</param>
public sealed record JudgePair(PromptItem Item, string Chosen, string Rejected, string Kind);

/// <summary>
/// The RewardBench-style pairwise set behind judge/pairwise_accuracy: the judge's accuracy on pairs that are not the
/// policy's own samples, reported only (no guard threshold reads it, nothing is chosen by it). A built-in task's set is
/// drawn from its validation stream (never a training prompt), chosen is the answer, rejected a wrong answer of one of
/// several kinds in turn, each label confirmed by the task's checker; the same seed gives the same set.
/// </summary>
public static class PairwiseSet
{
    public const string Accuracy = "judge/pairwise_accuracy";
    public const string Count = "judge/pairwise_count";

    /// <summary>
    /// The kinds of wrong answer, taken in turn: the warm start's own near-miss corruption is one kind in six, so the set
    /// does not only test the error modes the judge was trained on (eft_source corruptions). other_answer: a well-formed
    /// answer to another prompt; echo: the prompt's input copied back; truncated, extended: the answer one character
    /// short or long; shuffled: the answer's characters in another order.
    /// </summary>
    public static readonly string[] Kinds = ["near_miss", "other_answer", "echo", "truncated", "extended", "shuffled"];

    /// <summary>
    /// <paramref name="count"/> pairs on the task's validation prompts (a draw apart from the evaluation's prompts of the same
    /// seed). A prompt none of whose kinds gives a wrong answer is passed over.
    /// </summary>
    public static IReadOnlyList<JudgePair> Builtin(IVerifiableTask task, int count, int seed)
    {
        if (count <= 0) return [];
        // Twice as many prompts as pairs: other_answer borrows from the next one, and a few prompts give no pair.
        var prompts = task.Prompts(2 * count + 1, seed ^ 0x5041495, PromptStreams.Validation);
        var random = new Random((int)(PromptStreams.StableHash($"{task.Name}/pairwise/{seed}") & 0x7fffffff));
        var pairs = new List<JudgePair>(count);
        for (int i = 0; i < prompts.Count && pairs.Count < count; i++)
        {
            var item = prompts[i];
            if (item.Answer is null || !task.Verify(item, item.Answer)) continue;
            string other = prompts[(i + 1) % prompts.Count].Answer ?? "";
            for (int k = 0; k < Kinds.Length; k++)
            {
                string kind = Kinds[(pairs.Count + k) % Kinds.Length];
                string? rejected = Wrong(kind, task, item, other, random);
                if (string.IsNullOrEmpty(rejected) || rejected == item.Answer || task.Verify(item, rejected)) continue;
                pairs.Add(new JudgePair(item, item.Answer, rejected, kind));
                break;
            }
        }
        return pairs;
    }

    private static string? Wrong(string kind, IVerifiableTask task, PromptItem item, string otherAnswer, Random random)
    {
        string answer = item.Answer!;
        return kind switch
        {
            "near_miss" => task.Demonstrate(item, random, noise: 1),
            "other_answer" => otherAnswer,
            "echo" => Echo(item.Prompt),
            "truncated" => answer.Length > 1 ? answer[..^1] : null,
            "extended" => answer + answer[^1],
            "shuffled" => Shuffled(answer, random),
            _ => throw new ArgumentException($"no kind of wrong answer '{kind}'"),
        };
    }

    /// <summary>The prompt's input (between the task word and '='), its letters and digits only: "sort 4 1 3=" gives "413".</summary>
    private static string Echo(string prompt)
    {
        int start = prompt.IndexOf(' ', StringComparison.Ordinal) + 1, end = prompt.LastIndexOf('=');
        return end > start ? string.Concat(prompt[start..end].Where(char.IsLetterOrDigit)) : "";
    }

    private static string? Shuffled(string answer, Random random)
    {
        for (int attempt = 0; attempt < 8; attempt++)
        {
            var chars = answer.ToCharArray();
            random.Shuffle(chars);
            var shuffled = new string(chars);
            if (shuffled != answer) return shuffled;
        }
        return null;   // every character alike: no other order
    }

    /// <summary>
    /// The share of pairs whose chosen response the judge scores above the rejected one, per pair [chosen, rejected]: a tie
    /// counts half, and so does a pair with either response unscored (a judge that does not decide is at chance, not
    /// wrong). NaN without pairs.
    /// </summary>
    public static double AccuracyOf(IReadOnlyList<IReadOnlyList<double>> scores)
    {
        if (scores.Count == 0) return double.NaN;
        double correct = 0;
        foreach (var pair in scores)
        {
            if (pair.Count != 2) throw new ArgumentException($"a pair has {pair.Count} scores, not 2");
            double chosen = pair[0], rejected = pair[1];
            correct += !double.IsFinite(chosen) || !double.IsFinite(rejected) || chosen == rejected ? 0.5 : chosen > rejected ? 1 : 0;
        }
        return correct / scores.Count;
    }
}
