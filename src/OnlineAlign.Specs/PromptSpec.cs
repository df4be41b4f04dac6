namespace OnlineAlign.Specs;

/// <summary>Where a run's prompts come from (runs.proto PromptSpec): a built-in task, or a JSONL file of prompts.</summary>
public sealed record PromptSpec
{
    /// <summary>The evaluation streams of a built-in task's prompt space (OnlineAlign.Alignment.Tasks.PromptStreams): validation, for
    /// choosing recipes, rounds and hyperparameters; test, reported only. Training prompts come from a third, disjoint part.</summary>
    public static readonly string[] EvalStreams = ["validation", "test"];

    /// <summary>A built-in task (sort, add, reverse): prompts, a checker, and held-out evaluation prompts.</summary>
    public string Task { get; init; } = "sort";
    /// <summary>{"prompt": ..., "answer": ...} per line; when set it is the prompt set, not Task.</summary>
    public string? JsonlPath { get; init; }
    /// <summary>A built-in task's held-out prompts, evaluated after every round (a JSONL prompt set has none).</summary>
    public int EvalPrompts { get; init; } = 200;
    /// <summary>Which held-out stream a built-in task's run evaluates on after every round (its metrics say which:
    /// eval/validation/accuracy or eval/test/accuracy, beside eval/accuracy).</summary>
    public string EvalStream { get; init; } = "validation";

    /// <summary>
    /// Every bad field, named by its path. Whether Task names a built-in task, and what the file holds, are the file
    /// checks' (they need the tasks and the silo's data roots).
    /// </summary>
    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("prompts");
        p.Length("task", Task, limits.TextLength);
        p.Length("jsonl_path", JsonlPath, limits.PathLength);
        p.Range("eval_prompts", EvalPrompts, 0, limits.EvalPrompts);
        p.OneOf("eval_stream", EvalStream, EvalStreams, limits.TextLength);
        return p.List;
    }
}
