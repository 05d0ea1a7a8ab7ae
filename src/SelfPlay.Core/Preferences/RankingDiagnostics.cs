namespace SelfPlay.Core.Preferences;

/// <summary>Log-probs of one pair under the policy and the reference (summed over the completion, with lengths).</summary>
public readonly record struct PairScores(double PolicyChosen, double PolicyRejected, double RefChosen, double RefRejected,
    int ChosenTokens, int RejectedTokens, double Alpha = 0.75);

/// <summary>
/// Learner diagnostics of algorithms.md §12 (Chen et al. 2405.19534): reward accuracy is what trainers log, ranking
/// accuracy uses the policy's own likelihoods, the idealized ranking accuracy is what the DPO optimum would reach.
/// </summary>
public static class RankingDiagnostics
{
    /// <summary>1[r̂w &gt; r̂l] with r̂ = β·(log π − log π_ref); β does not change the sign.</summary>
    public static double RewardAccuracy(IReadOnlyList<PairScores> pairs) =>
        Mean(pairs, p => (p.PolicyChosen - p.RefChosen) - (p.PolicyRejected - p.RefRejected) > 0);

    /// <summary>Mean implicit-reward margin β·h.</summary>
    public static double RewardMargin(IReadOnlyList<PairScores> pairs, double beta) =>
        pairs.Count == 0 ? double.NaN : pairs.Average(p => beta * ((p.PolicyChosen - p.RefChosen) - (p.PolicyRejected - p.RefRejected)));

    /// <summary>1[π(yw|x) ≥ π(yl|x)], on summed or token-mean log-probs.</summary>
    public static double RankingAccuracy(IReadOnlyList<PairScores> pairs, bool lengthNormalized) =>
        Mean(pairs, p => Ranked(p.PolicyChosen, p.PolicyRejected, p, lengthNormalized));

    /// <summary>
    /// R* = mean 1[log π_ref(yw) − log π_ref(yl) + (1/β)·log(α/(1−α)) &gt; 0], α the share of raters preferring yw
    /// (here the pair's confidence; α = 1 counts as correct, the optimum being at infinity).
    /// </summary>
    public static double IdealizedRankingAccuracy(IReadOnlyList<PairScores> pairs, double beta) =>
        Mean(pairs, p => IdealizedCorrect(p.RefChosen - p.RefRejected, p.Alpha, beta));

    public static bool IdealizedCorrect(double refLogRatio, double alpha, double beta) =>
        alpha >= 1 || (alpha > 0 && refLogRatio + Math.Log(alpha / (1 - alpha)) / beta > 0);

    /// <summary>The DPO loss a pair must fall to before the policy ranks it correctly: −logσ(β·(log π_ref(yl) − log π_ref(yw))).</summary>
    public static double FlipThreshold(double refChosen, double refRejected, double beta) => Softplus(-beta * (refRejected - refChosen));

    /// <summary>How many pairs changed ranking between two evaluations: (wrong → right, right → wrong).</summary>
    public static (int ToCorrect, int ToIncorrect) Flips(IReadOnlyList<bool> before, IReadOnlyList<bool> after)
    {
        int up = 0, down = 0;
        for (var i = 0; i < before.Count; i++)
        {
            if (!before[i] && after[i]) up++;
            if (before[i] && !after[i]) down++;
        }
        return (up, down);
    }

    public static bool Ranked(double chosen, double rejected, PairScores p, bool lengthNormalized) =>
        lengthNormalized ? chosen / Math.Max(1, p.ChosenTokens) >= rejected / Math.Max(1, p.RejectedTokens) : chosen >= rejected;

    static double Softplus(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));

    static double Mean(IReadOnlyList<PairScores> pairs, Func<PairScores, bool> test) =>
        pairs.Count == 0 ? double.NaN : pairs.Count(test) / (double)pairs.Count;
}
