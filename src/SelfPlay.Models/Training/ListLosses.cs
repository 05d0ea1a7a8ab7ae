using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfPlay.Models.Training;

/// <summary>How Tree Preference Optimization's Adaptive Step Reward weighs a step (algorithms.md §3.3).</summary>
public enum StepWeighting
{
    /// <summary>Every step counts once: the ordinary summed log-ratio.</summary>
    None,
    /// <summary>The paper's intent: w = 1 − mean cosine to the same step of the other responses (shared steps count little).</summary>
    Dissimilar,
    /// <summary>The released code: w = cos(step, same step of the best response) + 1 (similar steps count more).</summary>
    Similar,
}

/// <summary>
/// List losses over ranked candidates (algorithms.md §3, §4). Inputs are [B,K] with candidates best-first and a
/// 0/1 validity mask (lists shorter than K are padded at the end). Each returns the per-list loss [B].
/// </summary>
public static class ListLosses
{
    /// <summary>
    /// AlphaZero policy distillation: −Σ_a π(a)·log p̂(a), p̂ = softmax over the node's children of the policy's summed
    /// log-probs log p(a|s) of each child's step (the policy's sequence probabilities normalised over the children),
    /// π the children's visit shares (summing to 1 over each row's valid entries). Per row [B].
    /// </summary>
    public static Tensor PolicyCrossEntropy(Tensor sequenceLogProbs, Tensor visitShares, Tensor mask)
    {
        var valid = mask > 0.5;
        var normalised = sequenceLogProbs.masked_fill(valid.logical_not(), double.NegativeInfinity).log_softmax(1);
        return -(visitShares * normalised.masked_fill(valid.logical_not(), 0)).sum(1);
    }

    /// <summary>
    /// Tree Preference Optimization, λ-weighted list ranking (LambdaRank): −Σ_{v_i > v_j} λ_ij·logσ(r_i − r_j),
    /// λ_ij = |G_i − G_j|·|1/D(τ_i) − 1/D(τ_j)|, G = 2^v − 1, D(τ) = log2(1 + τ), τ the rank by the current rewards.
    /// λ carries no gradient. <paramref name="values"/> should lie in [0, 1].
    /// </summary>
    public static Tensor TreePreference(Tensor rewards, Tensor values, Tensor mask)
    {
        var valid = mask > 0.5;
        Tensor lambda;
        using (no_grad())
        {
            var ranked = rewards.detach().masked_fill(valid.logical_not(), double.NegativeInfinity);
            var tau = ranked.argsort(-1, descending: true).argsort(-1).to(rewards.dtype) + 1;
            var inverseDiscount = 1 / (1 + tau).log2();
            var gain = pow(2.0, values.to(rewards.dtype)) - 1;
            lambda = (gain.unsqueeze(2) - gain.unsqueeze(1)).abs() * (inverseDiscount.unsqueeze(2) - inverseDiscount.unsqueeze(1)).abs();
            var preferred = (values.unsqueeze(2) > values.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1);
            lambda = lambda * preferred.to(rewards.dtype);
        }
        var terms = -F.logsigmoid(rewards.unsqueeze(2) - rewards.unsqueeze(1)) * lambda;
        return terms.sum([1, 2]);
    }

    /// <summary>
    /// Adaptive Step Reward: r_n = β·Σ_s w̄_{n,s}·Z_{n,s}, Z the summed log-ratio of step s, w̄ the step weights
    /// rescaled to mean 1 over the candidate's steps (uniform weights give the ordinary DPO reward). Weights come
    /// from the cosine similarity of step embeddings [B,K,S,D] (no gradient).
    /// </summary>
    public static Tensor AdaptiveStepRewards(Tensor stepLogRatios, Tensor? stepEmbeddings, Tensor stepMask, StepWeighting weighting, double beta)
    {
        if (weighting == StepWeighting.None || stepEmbeddings is null) return beta * (stepLogRatios * stepMask).sum(-1);
        Tensor weights;
        using (no_grad())
        {
            var unit = F.normalize(stepEmbeddings.detach(), p: 2, dim: -1);
            var cos = einsum("bnsd,bmsd->bnms", unit, unit);                       // [B,K,K,S]
            var k = stepMask.shape[1];
            if (weighting == StepWeighting.Dissimilar)
            {
                var others = (stepMask.unsqueeze(2) * stepMask.unsqueeze(1)) * (1 - eye(k, dtype: stepMask.dtype, device: stepMask.device)).unsqueeze(0).unsqueeze(-1);
                var count = others.sum(2);
                var meanCos = (cos * others).sum(2) / count.clamp_min(1);
                weights = where(count > 0, 1 - meanCos, ones_like(meanCos));
            }
            else
            {
                var best = stepMask[.., 0..1, ..];                                   // [B,1,S]
                weights = where((best * stepMask) > 0, cos[.., .., 0, ..] + 1, ones_like(stepMask));
            }
            weights = weights.clamp_min(0) * stepMask;
            var total = weights.sum(-1, keepdim: true);
            var steps = stepMask.sum(-1, keepdim: true);
            weights = where(total > 1e-8, weights * steps / total.clamp_min(1e-8), stepMask);
        }
        return beta * (weights * stepLogRatios * stepMask).sum(-1);
    }

    /// <summary>
    /// PRO: Σ_k [log(1e−10 + e^{s_k·pos_k} + Σ_{j>k} e^{s_j·(r_k − r_j)}) − s_k·pos_k], pos_k = max_j (r_k − r_j),
    /// s the token-mean log-probs, r the external rewards (descending); plus sftWeight·(n−1)²·(−Σ log p of the best).
    /// </summary>
    public static Tensor Pro(Tensor scores, Tensor rewards, Tensor mask, Tensor? bestSummedLogProb = null, double sftWeight = 0)
    {
        var k = (int)scores.shape[1];
        var total = zeros(scores.shape[0], dtype: scores.dtype, device: scores.device);
        for (var i = 0; i < k - 1; i++)
        {
            var later = mask[.., (i + 1)..];
            var gaps = rewards[.., i..(i + 1)] - rewards[.., (i + 1)..];
            var pos = gaps.masked_fill(later < 0.5, double.NegativeInfinity).amax([1]);
            var stage = (mask[.., i] > 0.5) & (later.sum(1) > 0.5);
            pos = where(stage, pos, zeros_like(pos));
            var own = (scores[.., i] * pos).exp();
            var others = ((scores[.., (i + 1)..] * gaps).exp() * later).sum(1);
            var loss = (own + others + 1e-10).log() - scores[.., i] * pos;
            total = total + loss * stage.to(scores.dtype);
        }
        if (bestSummedLogProb is not null && sftWeight > 0)
        {
            var n = mask.sum(1);
            total = total + sftWeight * (n - 1).square() * -bestSummedLogProb;
        }
        return total;
    }
}
