using static TorchSharp.torch;

namespace SelfPlay.Models.Training;

/// <summary>Policy-gradient losses for tree-rollout advantages (algorithms.md §9).</summary>
public static class PolicyGradientLosses
{
    /// <summary>
    /// PPO-clip surrogate per sequence: the token mean of max(−A·ρ, −A·clip(ρ, 1−ε_low, 1+ε_high)), ρ = e^{logπ − logπ_old},
    /// A the sequence's advantage (clipped to ±<paramref name="advantageClip"/>). Inputs [B,T] with a 0/1 token mask.
    /// </summary>
    public static Tensor PpoClip(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor mask,
        double epsilonLow = 0.2, double epsilonHigh = 0.28, double advantageClip = double.PositiveInfinity)
    {
        var a = advantages.clamp(-advantageClip, advantageClip).unsqueeze(1);
        var ratio = (logProbs - oldLogProbs).exp();
        var perToken = maximum(-a * ratio, -a * ratio.clamp(1 - epsilonLow, 1 + epsilonHigh));
        return (perToken * mask).sum(1) / mask.sum(1).clamp_min(1);
    }
}
