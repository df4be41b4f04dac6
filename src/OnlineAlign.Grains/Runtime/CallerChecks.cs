using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Grains.Runtime;

/// <summary>
/// What a grain checks again of what a caller hands it, though the API has checked it: any cluster member can
/// call a grain, and a run id and spec become paths and allocations.
/// </summary>
public static class CallerChecks
{
    /// <summary>
    /// Throws for a bad run id, or an <see cref="ArgumentException"/> listing every problem of the spec's counts,
    /// names and numbers against the limits (cheap: no model or prompt set is built; the API checked the rest).
    /// </summary>
    public static void Require(string runId, RunSpec spec, SpecLimits limits)
    {
        RunIds.Require(runId);
        if (RunSpecMapping.Problems(spec, limits, roots: null, readFiles: false, countsOnly: true) is { Count: > 0 } problems)
            throw new ArgumentException("invalid run spec: " + string.Join("; ", problems));
    }
}
