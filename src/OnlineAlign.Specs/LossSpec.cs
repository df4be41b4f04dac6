namespace OnlineAlign.Specs;

/// <summary>The preference loss and its coefficients (runs.proto LossSpec; the defaults are the ones stated there).</summary>
public sealed record LossSpec
{
    /// <summary>"rft": rejection-sampling fine-tuning, the chosen (judge's best) response's NLL per token alone (a control for DPO).</summary>
    public static readonly string[] Kinds = ["dpo", "ipo", "cdpo", "robust", "hinge", "sppo", "sppo_hard", "cream", "rft"];

    public string Kind { get; init; } = "sppo";
    public double Beta { get; init; } = 0.1;
    /// <summary>cDPO / robust DPO: the assumed probability that a label is flipped.</summary>
    public double LabelSmoothing { get; init; }
    /// <summary>RPO: weight of the NLL of the chosen response (0 = off).</summary>
    public double RpoAlpha { get; init; }
    /// <summary>SELM's optimism: + alpha beta [log pi(y) - log pi_ref(y)] for a response y sampled from the round's start policy (0 = off).</summary>
    public double SelmAlpha { get; init; }

    /// <summary>Every bad field, named by its path ("loss.beta must be > 0, got -1"); empty when valid.</summary>
    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("loss");
        p.OneOf("kind", Kind, Kinds, limits.TextLength);
        p.Real("beta", Beta, 0, minIncluded: false, limits.Coefficient);
        if (double.IsFinite(LabelSmoothing) && LabelSmoothing >= 0.5) p.Add($"loss.label_smoothing must be below 0.5, got {LabelSmoothing}");
        else p.Real("label_smoothing", LabelSmoothing, 0, minIncluded: true, 0.5);
        p.Real("rpo_alpha", RpoAlpha, 0, minIncluded: true, limits.Coefficient);
        p.Real("selm_alpha", SelmAlpha, 0, minIncluded: true, limits.Coefficient);
        return p.List;
    }
}
