using OnlineAlign.Specs;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace OnlineAlign.Alignment.Losses;

/// <summary>Sequence log-probs of a batch of pairs: [B] tensors.</summary>
/// <param name="ChosenLength">response lengths in tokens (IPO normalises by them, RPO averages over them)</param>
/// <param name="Consistency">CREAM's per-pair consistency rate C (1 = hard label)</param>
/// <param name="WinChosen">SPPO's soft target: the estimated probability that the chosen response beats the prompt's
/// responses (null: 1, a hard label)</param>
/// <param name="WinRejected">the same for the rejected response (null: 0)</param>
/// <param name="PolicyExplore">SELM: log pi(y) of a response y sampled from the reference, with its log pi_ref(y) next</param>
public sealed record PairLogProbs(Tensor PolicyChosen, Tensor PolicyRejected, Tensor ReferenceChosen, Tensor ReferenceRejected,
    Tensor ChosenLength, Tensor RejectedLength, Tensor Consistency, Tensor? WinChosen = null, Tensor? WinRejected = null,
    Tensor? PolicyExplore = null, Tensor? ReferenceExplore = null);

/// <summary>
/// Preference losses on log-ratio differences, l(z) = -log sigmoid(z),
/// h = [log pi(y_w) - log pi_ref(y_w)] - [log pi(y_l) - log pi_ref(y_l)]:
/// DPO l(bh); cDPO (1-e) l(bh) + e l(-bh); robust [(1-e) l(bh) - e l(-bh)] / (1-2e); hinge max(0, 1 - bh);
/// IPO (h_norm - 1/(2b))^2 on length-normalised ratios;
/// SPPO [(r_w - (P_w - 1/2)/b)^2 + (r_l - (P_l - 1/2)/b)^2] / 2 with P the win rates (SPPO's own trainer, loss_type "sppo");
/// SPPO-hard (r_w - 1/(2b))^2 + (r_l + 1/(2b))^2 (P_w = 1, P_l = 0, without the 1/2);
/// CREAM C l(bh) + (1-C) l(-bh); RFT NLL(y_w) per token (rejection-sampling fine-tuning, a control);
/// plus RPO's alpha * NLL(y_w) per token when set; plus SELM's optimism term
/// alpha b [log pi(y) - log pi_ref(y)] for a response y from the reference when set (SELM's optimistic_dpo_loss:
/// minimising it lowers the likelihood of what the reference already says, pushing exploration elsewhere).
/// </summary>
public static class PreferenceLoss
{
    /// <summary>Per-pair losses [B].</summary>
    public static Tensor PerPair(LossSpec s, PairLogProbs x)
    {
        double b = s.Beta, e = s.LabelSmoothing;
        var chosenRatio = x.PolicyChosen - x.ReferenceChosen;
        var rejectedRatio = x.PolicyRejected - x.ReferenceRejected;
        var h = chosenRatio - rejectedRatio;
        Tensor L(Tensor z) => -F.logsigmoid(z);
        var loss = s.Kind switch
        {
            "dpo" => L(b * h),
            "cdpo" => (1 - e) * L(b * h) + e * L(-b * h),
            "robust" => ((1 - e) * L(b * h) - e * L(-b * h)) / (1 - 2 * e),
            "hinge" => (1 - b * h).relu(),
            "ipo" => (chosenRatio / x.ChosenLength - rejectedRatio / x.RejectedLength - 1 / (2 * b)).pow(2),
            "sppo" => ((chosenRatio - ((x.WinChosen ?? ones_like(chosenRatio)) - 0.5) / b).pow(2)
                       + (rejectedRatio - ((x.WinRejected ?? zeros_like(rejectedRatio)) - 0.5) / b).pow(2)) / 2,
            "sppo_hard" => (chosenRatio - 1 / (2 * b)).pow(2) + (rejectedRatio + 1 / (2 * b)).pow(2),
            "cream" => x.Consistency * L(b * h) + (1 - x.Consistency) * L(-b * h),
            // RFT: supervised fine-tuning on the judge's best sample (its NLL per token); the rejected response is not used.
            "rft" => -x.PolicyChosen / x.ChosenLength,
            _ => throw new ArgumentException($"loss.kind '{s.Kind}' is not one of {string.Join(", ", LossSpec.Kinds)}"),
        };
        if (s.RpoAlpha > 0) loss = loss - s.RpoAlpha * x.PolicyChosen / x.ChosenLength;
        if (s.SelmAlpha > 0)
        {
            if (x.PolicyExplore is null || x.ReferenceExplore is null)
                throw new ArgumentException("loss.selm_alpha needs a sampled response's log-probs per pair");
            loss = loss + s.SelmAlpha * b * (x.PolicyExplore - x.ReferenceExplore);
        }
        return loss;
    }
}
