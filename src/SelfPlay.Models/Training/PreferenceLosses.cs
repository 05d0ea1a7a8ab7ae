using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfPlay.Models.Training;

/// <summary>
/// Pair losses (algorithms.md §1, §6, §7, §11). Pure tensor functions: every one returns the per-pair loss [B],
/// the caller reduces. "Summed" and "mean" log-probs are over the completion (scored) tokens.
/// </summary>
public static class PreferenceLosses
{
    /// <summary>DPO margin h = (πw − refw) − (πl − refl).</summary>
    public static Tensor Margin(Tensor policyChosen, Tensor policyRejected, Tensor refChosen, Tensor refRejected) =>
        (policyChosen - refChosen) - (policyRejected - refRejected);

    /// <summary>
    /// Sigmoid DPO, −logσ(βh); with label smoothing ε the conservative form −(1−ε)logσ(βh) − ε·logσ(−βh)
    /// (cDPO; MCTS-DPO passes a per-pair ε derived from visit counts).
    /// </summary>
    public static Tensor Dpo(Tensor margin, double beta, Tensor? labelSmoothing = null) => Smoothed(margin * beta, labelSmoothing);

    /// <summary>Robust DPO, [−(1−ε)logσ(βh) + ε·logσ(−βh)] / (1−2ε): unbiased under label-flip noise ε ∈ [0, 0.5).</summary>
    public static Tensor Robust(Tensor margin, double beta, double epsilon)
    {
        if (epsilon is < 0 or >= 0.5) throw new ArgumentOutOfRangeException(nameof(epsilon), "robust DPO needs 0 <= epsilon < 0.5");
        var z = margin * beta;
        return (-(1 - epsilon) * F.logsigmoid(z) + epsilon * F.logsigmoid(-z)) / (1 - 2 * epsilon);
    }

    /// <summary>Hinge (SLiC), max(0, 1 − βh).</summary>
    public static Tensor Hinge(Tensor margin, double beta) => (1 - margin * beta).clamp_min(0);

    /// <summary>IPO, (h_avg − 1/(2β))², where h_avg is the margin of token-averaged log-probs (TRL PR #1265).</summary>
    public static Tensor Ipo(Tensor averagedMargin, double beta) => (averagedMargin - 1 / (2 * beta)).square();

    /// <summary>SimPO: −(1−ε)logσ(β·z) − ε·logσ(−β·z), z = mean_w − mean_l − γ/β. No reference model.</summary>
    public static Tensor SimPo(Tensor chosenMean, Tensor rejectedMean, double beta, double gamma, Tensor? labelSmoothing = null) =>
        Smoothed(beta * (chosenMean - rejectedMean - gamma / beta), labelSmoothing);

    /// <summary>
    /// ORPO: NLL(chosen) − β·logσ(log-odds), log-odds = (ℓw − ℓl) − (log(1−e^ℓw) − log(1−e^ℓl)) on token-mean log-probs ℓ.
    /// </summary>
    public static Tensor Orpo(Tensor chosenMean, Tensor rejectedMean, Tensor chosenNll, double beta)
    {
        // log(1 − e^ℓ) needs ℓ < 0; a completion with probability 1 would make it −∞.
        var w = chosenMean.clamp_max(-1e-6);
        var l = rejectedMean.clamp_max(-1e-6);
        var logOdds = (w - l) - ((-w.exp()).log1p() - (-l.exp()).log1p());
        return chosenNll - beta * F.logsigmoid(logOdds);
    }

    /// <summary>
    /// KTO (unpaired): desirable λD·(1 − σ(β(r − z0))), undesirable λU·(1 − σ(β(z0 − r))), r = summed log-ratio.
    /// z0 is the (detached, non-negative) KL estimate the caller supplies.
    /// </summary>
    public static Tensor Kto(Tensor logRatio, Tensor desirable, double z0, double beta, double desirableWeight = 1, double undesirableWeight = 1)
    {
        var good = desirableWeight * (1 - (beta * (logRatio - z0)).sigmoid());
        var bad = undesirableWeight * (1 - (beta * (z0 - logRatio)).sigmoid());
        return where(desirable, good, bad);
    }

    /// <summary>
    /// Step-APO (CPL): −(1−ε)logσ(βh + α(Ql − Qw)) − ε·logσ(−βh − α(Ql − Qw)): the implicit-reward margin must
    /// exceed the MCTS advantage gap.
    /// </summary>
    public static Tensor StepApo(Tensor margin, Tensor qChosen, Tensor qRejected, double beta, double alpha, Tensor? labelSmoothing = null) =>
        Smoothed(beta * margin + alpha * (qRejected - qChosen), labelSmoothing);

    /// <summary>Eurus reward-model objective: L_BT = −logσ(rc − rr), plus L_DR = −logσ(rc) − logσ(−rr) where <paramref name="absolute"/>.</summary>
    public static Tensor EurusRm(Tensor rewardChosen, Tensor rewardRejected, Tensor? absolute = null)
    {
        var bt = -F.logsigmoid(rewardChosen - rewardRejected);
        var dr = -F.logsigmoid(rewardChosen) - F.logsigmoid(-rewardRejected);
        return absolute is null ? bt + dr : bt + dr * absolute.to(dr.dtype);
    }

    /// <summary>
    /// Verifier / PRM step ranking (Tree-PLV): −Σ_i logσ(r⁺_i − r⁻_i) over the steps i from the divergence on,
    /// r_i the score of the prefix ending at step i. Inputs [B,S]; mask marks the steps compared.
    /// </summary>
    public static Tensor VerifierStepRanking(Tensor chosenPrefixScores, Tensor rejectedPrefixScores, Tensor stepMask) =>
        (-F.logsigmoid(chosenPrefixScores - rejectedPrefixScores) * stepMask).sum(-1);

    /// <summary>Value regression, (prediction − target)² per example.</summary>
    public static Tensor ValueRegression(Tensor prediction, Tensor target) => (prediction - target).square();

    /// <summary>Token-mean negative log-likelihood of a completion, from its summed log-prob and length.</summary>
    public static Tensor MeanNll(Tensor summedLogProb, Tensor tokens) => -summedLogProb / tokens.clamp_min(1);

    /// <summary>−(1−ε)logσ(z) − ε·logσ(−z); plain −logσ(z) without smoothing.</summary>
    static Tensor Smoothed(Tensor z, Tensor? labelSmoothing)
    {
        var loss = -F.logsigmoid(z);
        if (labelSmoothing is null) return loss;
        return (1 - labelSmoothing) * loss - labelSmoothing * F.logsigmoid(-z);
    }
}
