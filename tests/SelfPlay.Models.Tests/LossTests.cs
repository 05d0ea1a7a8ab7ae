using SelfPlay.Core.Preferences;
using SelfPlay.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

/// <summary>Every loss against the worked values of algorithms.md (β = 0.1; policy w/l −12/−15, reference −13/−14, 10/12 tokens).</summary>
public class LossTests
{
    const int Digits = 5; // 1e-5

    static Tensor T(params double[] v) => tensor(v, dtype: ScalarType.Float64);
    static double V(Tensor t) => t.ToDouble();
    static Tensor H() => PreferenceLosses.Margin(T(-12), T(-15), T(-13), T(-14));

    [Fact]
    public void Dpo_family_matches_section_11()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(2.0, V(H()), Digits);
        Assert.Equal(0.598139, V(PreferenceLosses.Dpo(H(), 0.1)), Digits);
        Assert.Equal(0.618139, V(PreferenceLosses.Dpo(H(), 0.1, T(0.1))), Digits);
        Assert.Equal(0.648139, V(PreferenceLosses.Dpo(H(), 0.1, T(SiblingPairs.VisitLabelSmoothing(6, 2)))), Digits); // MCTS-DPO conservative
        Assert.Equal(0.573139, V(PreferenceLosses.Robust(H(), 0.1, 0.1)), Digits);
        Assert.Equal(0.8, V(PreferenceLosses.Hinge(H(), 0.1)), Digits);
        Assert.Equal(0.0, V(PreferenceLosses.Hinge(T(20), 0.1)), Digits);
        var averaged = (-12.0 + 13) / 10 - (-15.0 + 14) / 12;
        Assert.Equal(0.183333, averaged, Digits);
        Assert.Equal(23.200278, V(PreferenceLosses.Ipo(T(averaged), 0.1)), Digits);
        Assert.Equal(9.0, V(PreferenceLosses.Ipo(H(), 0.1)), Digits); // summed (pre-#1265) form
    }

    [Fact]
    public void Policy_cross_entropy_is_the_visit_shares_against_the_softmax_over_the_children()
    {
        using var scope = NewDisposeScope();
        // Children with summed log-probs −1, −2, −3 and visit shares 0.6, 0.3, 0.1; a fourth, padded entry is masked out.
        var logProbs = tensor(new[] { -1.0, -2, -3, -0.5 }, [1, 4], dtype: ScalarType.Float64);
        var shares = tensor(new[] { 0.6, 0.3, 0.1, 0 }, [1, 4], dtype: ScalarType.Float64);
        var mask = tensor(new[] { 1.0, 1, 1, 0 }, [1, 4], dtype: ScalarType.Float64);
        // log p̂ = l − logsumexp(l) = [−0.407606, −1.407606, −2.407606]; −Σ π·log p̂ = 0.907606.
        Assert.Equal(0.907606, V(ListLosses.PolicyCrossEntropy(logProbs, shares, mask).sum()), Digits);
        // At its minimum the policy over the children is the visit shares: the loss is then their entropy.
        var matched = tensor(new[] { Math.Log(0.6), Math.Log(0.3), Math.Log(0.1), 5 }, [1, 4], dtype: ScalarType.Float64);
        Assert.Equal(-(0.6 * Math.Log(0.6) + 0.3 * Math.Log(0.3) + 0.1 * Math.Log(0.1)), V(ListLosses.PolicyCrossEntropy(matched, shares, mask).sum()), Digits);
    }

    [Fact]
    public void Dpo_gradient_matches_section_11()
    {
        using var scope = NewDisposeScope();
        var h = T(2.0).requires_grad_();
        PreferenceLosses.Dpo(h, 0.1).sum().backward();
        Assert.Equal(-0.045017, V(h.grad!), Digits);
    }

    [Fact]
    public void Reference_free_losses_match_section_11()
    {
        using var scope = NewDisposeScope();
        var (meanW, meanL) = (T(-12.0 / 10), T(-15.0 / 12));
        Assert.Equal(1.241154, V(PreferenceLosses.SimPo(meanW, meanL, 2.0, 1.0)), Digits);
        Assert.Equal(0.970968, V(PreferenceLosses.SimPo(meanW, meanL, 0.1, 0.5)), Digits);
        Assert.Equal(1.265837, V(PreferenceLosses.Orpo(meanW, meanL, -meanW, 0.1)), Digits);
    }

    [Fact]
    public void Kto_matches_section_11()
    {
        using var scope = NewDisposeScope();
        var loss = PreferenceLosses.Kto(T(1, -1), tensor(new[] { true, false }), 0.5, 0.1);
        Assert.Equal(0.487503, V(loss[0]), Digits);
        Assert.Equal(0.462570, V(loss[1]), Digits);
    }

    [Fact]
    public void Step_apo_eurus_verifier_and_spar_match_their_sections()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(1.037488, V(PreferenceLosses.StepApo(H(), T(0.8), T(-0.4), 0.3, 1.0)), Digits);    // §6.6
        Assert.Equal(0.437488, V(PreferenceLosses.StepApo(H(), T(0.8), T(-0.4), 0.3, 0.0)), Digits);    // α = 0: plain DPO at β .3
        Assert.Equal(1.488752, V(PreferenceLosses.EurusRm(T(1.5), T(0.5))), Digits);                    // §7.5
        Assert.Equal(0.313262, V(PreferenceLosses.EurusRm(T(1.5), T(0.5), tensor(new[] { false }))), Digits); // L_BT only
        Assert.Equal(0.403186, V(PreferenceLosses.VerifierStepRanking(T(0.8).reshape(1, 1), T(0.1).reshape(1, 1), T(1).reshape(1, 1))), Digits); // §5.5
        Assert.Equal(0.718139, V(PreferenceLosses.Dpo(H(), 0.1) + 0.1 * PreferenceLosses.MeanNll(T(-12), T(10))), Digits); // §2.7
        Assert.Equal(0.25, V(PreferenceLosses.ValueRegression(T(0.5), T(1.0))), Digits);
    }

    [Fact]
    public void Tree_preference_optimization_matches_section_3()
    {
        using var scope = NewDisposeScope();
        var loss = ListLosses.TreePreference(T(0.2, 0.1, -0.1).reshape(1, 3), T(1.0, 0.6, 0.0).reshape(1, 3), T(1, 1, 1).reshape(1, 3));
        Assert.Equal(0.432742, V(loss), Digits);
        // A padded fourth slot changes nothing.
        var padded = ListLosses.TreePreference(T(0.2, 0.1, -0.1, 5).reshape(1, 4), T(1.0, 0.6, 0.0, 0.3).reshape(1, 4), T(1, 1, 1, 0).reshape(1, 4));
        Assert.Equal(0.432742, V(padded), Digits);
    }

    [Fact]
    public void Pro_matches_section_4()
    {
        using var scope = NewDisposeScope();
        var s = T(-1.0, -1.2, -1.5).reshape(1, 3);
        var r = T(0.9, 0.5, 0.1).reshape(1, 3);
        var m = T(1, 1, 1).reshape(1, 3);
        Assert.Equal(1.114304 + 0.634946, V(ListLosses.Pro(s, r, m)), Digits);
        Assert.Equal(5.749251, V(ListLosses.Pro(s, r, m, T(-20), 0.05)), Digits);
    }

    [Fact]
    public void Adaptive_step_reward_weighs_dissimilar_steps_up_or_similar_ones_as_released()
    {
        using var scope = NewDisposeScope();
        // Two responses of two steps: step 0 shared (same embedding), step 1 orthogonal.
        var ratios = T(1, 2, 3, 5).reshape(1, 2, 2);
        var mask = T(1, 1, 1, 1).reshape(1, 2, 2);
        var e = T(1, 0, 1, 0, /*resp 1*/ 1, 0, 0, 1).reshape(1, 2, 2, 2);
        var none = ListLosses.AdaptiveStepRewards(ratios, e, mask, StepWeighting.None, 0.5);
        Assert.Equal(new[] { 1.5, 4.0 }, none.data<double>().ToArray());
        // Paper intent: w = 1 − cos → [0, 1], rescaled to mean 1 → [0, 2]: only the divergent step counts.
        var dissimilar = ListLosses.AdaptiveStepRewards(ratios, e, mask, StepWeighting.Dissimilar, 0.5).data<double>().ToArray();
        Assert.Equal(0.5 * 2 * 2, dissimilar[0], 9);
        Assert.Equal(0.5 * 2 * 5, dissimilar[1], 9);
        // Released code: w = cos(step, best's step) + 1 → best [2, 2] → [1, 1]; other [2, 1] → [4/3, 2/3].
        var similar = ListLosses.AdaptiveStepRewards(ratios, e, mask, StepWeighting.Similar, 0.5).data<double>().ToArray();
        Assert.Equal(0.5 * (1 + 2), similar[0], 9);
        Assert.Equal(0.5 * (3 * 4.0 / 3 + 5 * 2.0 / 3), similar[1], 9);
    }

    [Fact]
    public void Ppo_clip_takes_the_pessimistic_side()
    {
        using var scope = NewDisposeScope();
        var logp = T(-1, -1).reshape(1, 2);
        var old = T(-1.5, -1.5).reshape(1, 2);
        var one = T(1, 1).reshape(1, 2);
        Assert.Equal(-1.28, V(PolicyGradientLosses.PpoClip(logp, old, T(1), one)), Digits);          // ratio e^.5 clipped to 1.28
        Assert.Equal(Math.Exp(0.5), V(PolicyGradientLosses.PpoClip(logp, old, T(-1), one)), Digits); // negative advantage: unclipped
        Assert.Equal(-1.28, V(PolicyGradientLosses.PpoClip(T(-1, -1, 9).reshape(1, 3), T(-1.5, -1.5, 0).reshape(1, 3), T(1), T(1, 1, 0).reshape(1, 3))), Digits);
    }

    [Fact]
    public void Ranking_diagnostics_match_section_12()
    {
        Assert.Equal(0.474077, RankingDiagnostics.FlipThreshold(refChosen: -10, refRejected: -5, beta: 0.1), Digits);
        Assert.True(RankingDiagnostics.IdealizedCorrect(-5, 0.75, 0.1));    // −5 + 10·log 3 = 5.986
        Assert.False(RankingDiagnostics.IdealizedCorrect(-5, 0.55, 0.1));   // −2.993
        Assert.True(RankingDiagnostics.IdealizedCorrect(0.3, 0.5, 0.1));    // tie: the reference decides
        var pairs = new[] { new PairScores(-12, -15, -13, -14, 10, 12), new PairScores(-12, -11, -13, -14, 10, 2) };
        Assert.Equal(0.5, RankingDiagnostics.RankingAccuracy(pairs, lengthNormalized: false));
        Assert.Equal(1.0, RankingDiagnostics.RankingAccuracy(pairs, lengthNormalized: true)); // −1.2 ≥ −1.25 and −1.2 ≥ −5.5
        Assert.Equal(0.5, RankingDiagnostics.RewardAccuracy(pairs));
        Assert.Equal((1, 1), RankingDiagnostics.Flips([false, true, true], [true, false, true]));
    }

    /// <summary>Autograd gradients of every loss agree with central finite differences (float64).</summary>
    [Fact]
    public void Loss_gradients_agree_with_finite_differences()
    {
        using var scope = NewDisposeScope();
        var gen = new Random(3);
        Tensor R(params long[] shape) => tensor(Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => gen.NextDouble() * 2 - 1).ToArray(), shape, ScalarType.Float64);
        var fixedQ = R(4);
        var mask = T(1, 1, 1, 1, 1, 1, 1, 0).reshape(2, 4);
        var values = T(1, 0.5, 0.2, 0, 0.9, 0.3, 0.1, 0).reshape(2, 4);
        var embeddings = R(2, 4, 3, 5);
        var cases = new (string Name, Tensor X, Func<Tensor, Tensor> F)[]
        {
            ("dpo", R(4), h => PreferenceLosses.Dpo(h, 0.5, T(0.1, 0.2, 0, 0.3))),
            ("robust", R(4), h => PreferenceLosses.Robust(h, 0.5, 0.2)),
            ("ipo", R(4), h => PreferenceLosses.Ipo(h, 0.5)),
            ("simpo", R(4), x => PreferenceLosses.SimPo(x, x.flip(0) - 1, 2, 1)),
            ("orpo", R(4), x => PreferenceLosses.Orpo(x.abs().neg() - 0.1, x.flip(0).abs().neg() - 0.2, -x, 0.1)),
            ("kto", R(4), x => PreferenceLosses.Kto(x, tensor(new[] { true, false, true, false }), 0.2, 0.5)),
            ("step-apo", R(4), h => PreferenceLosses.StepApo(h, fixedQ, fixedQ.flip(0), 0.3, 1.0)),
            ("eurus", R(4), x => PreferenceLosses.EurusRm(x, x.flip(0) * 0.5)),
            ("verifier", R(2, 3), x => PreferenceLosses.VerifierStepRanking(x, x.flip(1) * 0.3, T(1, 1, 0, 1, 1, 1).reshape(2, 3))),
            ("tpo", R(2, 4), r => ListLosses.TreePreference(r, values, mask)),
            ("pro", R(2, 4), s => ListLosses.Pro(s.abs().neg(), values, mask, s[.., 0], 0.05)),
            ("asr", R(2, 4, 3), z => ListLosses.AdaptiveStepRewards(z.reshape(2, 4, 3), embeddings, ones(2, 4, 3, dtype: ScalarType.Float64), StepWeighting.Dissimilar, 0.5)),
            ("ppo", R(2, 3), l => PolicyGradientLosses.PpoClip(l * 0.1, zeros(2, 3, dtype: ScalarType.Float64), T(1, -1), ones(2, 3, dtype: ScalarType.Float64))),
        };
        foreach (var (name, x0, f) in cases)
        {
            var x = x0.clone().requires_grad_();
            f(x).sum().backward();
            var analytic = x.grad!.flatten().data<double>().ToArray();
            var flat = x0.flatten();
            for (var i = 0; i < analytic.Length; i++)
            {
                double At(double delta)
                {
                    using var _ = no_grad();
                    var y = flat.clone();
                    y[i] = y[i] + delta;
                    return f(y.reshape(x0.shape)).sum().ToDouble();
                }
                var numeric = (At(1e-6) - At(-1e-6)) / 2e-6;
                Assert.True(Math.Abs(numeric - analytic[i]) < 1e-5 * Math.Max(1, Math.Abs(numeric)), $"{name}[{i}]: autograd {analytic[i]}, finite difference {numeric}");
            }
        }
    }
}
