using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfPlay.Models.Training;

/// <summary>Preference losses over summed log-probs (see algorithms.md §11). All return per-pair losses.</summary>
public static class PreferenceLosses
{
    /// <summary>DPO margin h = (πw − refw) − (πl − refl).</summary>
    public static Tensor Margin(Tensor policyChosen, Tensor policyRejected, Tensor refChosen, Tensor refRejected) =>
        (policyChosen - refChosen) - (policyRejected - refRejected);

    /// <summary>
    /// Sigmoid DPO, −logσ(βh); with label smoothing ε the conservative form −(1−ε)logσ(βh) − ε·logσ(−βh)
    /// (cDPO; MCTS-DPO passes a per-pair ε derived from visit counts).
    /// </summary>
    public static Tensor Dpo(Tensor margin, double beta, Tensor? labelSmoothing = null)
    {
        var z = margin * beta;
        var loss = -F.logsigmoid(z);
        if (labelSmoothing is null) return loss;
        return (1 - labelSmoothing) * loss - labelSmoothing * F.logsigmoid(-z);
    }
}
