using SelfPlay.Core.Preferences;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Training;

/// <summary>
/// What a loss reads from one batch: the [B,K] per-candidate sums (candidate 0 is the best, <see cref="Last"/> the worst
/// of each example), their [B,K,S] per-step split, the [B,T] tokens of one-candidate examples, and the best-vs-worst
/// quantities most pair losses need.
/// </summary>
public sealed record LossInputs(IReadOnlyList<PreparedExample> Examples,
    Tensor Sum, Tensor Ref, Tensor Count, Tensor Score, Tensor Mask, Tensor Last,
    Tensor StepSum, Tensor StepRef, Tensor StepMask, Tensor? StepEmbedding,
    Tensor TokenLogProbs, Tensor TokenBehaviour, Tensor TokenMask)
{
    public Tensor First => Sum[.., 0];
    public Tensor LastSum => Sum.gather(1, Last).squeeze(1);
    public Tensor RefFirst => Ref[.., 0];
    public Tensor RefLast => Ref.gather(1, Last).squeeze(1);
    public Tensor CountFirst => Count[.., 0];
    public Tensor CountLast => Count.gather(1, Last).squeeze(1);
    public Tensor ScoreFirst => Score[.., 0];
    public Tensor ScoreLast => Score.gather(1, Last).squeeze(1);
    /// <summary>DPO's margin (log π(w) − log π_ref(w)) − (log π(l) − log π_ref(l)).</summary>
    public Tensor Margin => PreferenceLosses.Margin(First, LastSum, RefFirst, RefLast);
    /// <summary>The constant label smoothing ε of the options as a [B] tensor, or null when it is 0.</summary>
    public Tensor? ConstantSmoothing(LossOptions o) => o.LabelSmoothing > 0 ? full(Examples.Count, o.LabelSmoothing, dtype: Sum.dtype, device: Sum.device) : null;
}

/// <summary>A learner loss by config name (learner.loss): what it trains on, what it needs, and its formula.</summary>
public interface IPreferenceLoss
{
    string Name { get; }
    /// <summary>The example kinds it trains on (pair losses also take lists, as best vs worst).</summary>
    IReadOnlyList<ExampleKind> Accepts { get; }
    /// <summary>It never looks at reference log-probs (no reference model is kept).</summary>
    bool ReferenceFree { get; }
    /// <summary>It compares a chosen and a rejected completion, so the pair diagnostics mean something.</summary>
    bool Pairwise { get; }
    /// <summary>It ranks every candidate of a list, not only the best against the worst.</summary>
    bool Listwise { get; }
    /// <summary>learner.sft-weight adds a token-mean NLL of the best candidate (false: the loss has its own or is one).</summary>
    bool TakesSftTerm { get; }
    /// <summary>It needs the behaviour log-probs stored with the steps (one completion per example).</summary>
    bool NeedsBehaviour { get; }
    /// <summary>It weights steps by their embeddings when the options ask for it.</summary>
    bool UsesStepEmbeddings(LossOptions o);
    /// <summary>The only extractor whose examples carry what it needs, with why (null: any extractor of an accepted kind).</summary>
    (string Extractor, string Why)? OnlyExtractor { get; }
    /// <summary>The per-example loss [B], with gradients.</summary>
    Tensor Compute(LossInputs x, LossOptions o);
}

/// <summary>One loss as its formula and its traits (the defaults are a reference-based pair loss).</summary>
public sealed record PreferenceLoss(string Name, Func<LossInputs, LossOptions, Tensor> Formula) : IPreferenceLoss
{
    public IReadOnlyList<ExampleKind> Accepts { get; init; } = [ExampleKind.Pair, ExampleKind.List];
    public bool ReferenceFree { get; init; }
    public bool Pairwise { get; init; } = true;
    public bool Listwise { get; init; }
    public bool TakesSftTerm { get; init; } = true;
    public bool NeedsBehaviour { get; init; }
    public bool StepEmbeddings { get; init; }
    public (string Extractor, string Why)? OnlyExtractor { get; init; }
    public bool UsesStepEmbeddings(LossOptions o) => StepEmbeddings && o.StepWeights != StepWeighting.None;
    public Tensor Compute(LossInputs x, LossOptions o) => Formula(x, o);
}

/// <summary>
/// Every learner loss, by config name (the formulas: docs/algorithms.md and the pure functions of
/// <see cref="PreferenceLosses"/>, <see cref="ListLosses"/>, <see cref="PolicyGradientLosses"/>). No code outside this
/// list tests a loss's name.
/// </summary>
public static class Losses
{
    public static readonly IReadOnlyList<IPreferenceLoss> All =
    [
        new PreferenceLoss("dpo", (x, o) => PreferenceLosses.Dpo(x.Margin, o.Beta, x.ConstantSmoothing(o))),
        // Per-pair ε from the pair's visit counts (MCTS-DPO's confidence).
        new PreferenceLoss("cdpo", (x, o) => PreferenceLosses.Dpo(x.Margin, o.Beta,
            tensor(x.Examples.Select(e => e.LabelSmoothing).ToArray(), device: x.Sum.device).to(x.Sum.dtype)))
        {
            OnlyExtractor = ("mcts-dpo", "takes its ε from visit counts, which only preferences.extractor = mcts-dpo gives"),
        },
        new PreferenceLoss("robust", (x, o) => PreferenceLosses.Robust(x.Margin, o.Beta, o.LabelSmoothing)),
        new PreferenceLoss("hinge", (x, o) => PreferenceLosses.Hinge(x.Margin, o.Beta)),
        new PreferenceLoss("ipo", (x, o) => PreferenceLosses.Ipo(
            (x.First - x.RefFirst) / x.CountFirst.clamp_min(1) - (x.LastSum - x.RefLast) / x.CountLast.clamp_min(1), o.Beta)),
        new PreferenceLoss("simpo", (x, o) => PreferenceLosses.SimPo(x.First / x.CountFirst.clamp_min(1), x.LastSum / x.CountLast.clamp_min(1),
            o.Beta, o.Gamma, x.ConstantSmoothing(o))) { ReferenceFree = true },
        new PreferenceLoss("orpo", (x, o) => PreferenceLosses.Orpo(x.First / x.CountFirst.clamp_min(1), x.LastSum / x.CountLast.clamp_min(1),
            PreferenceLosses.MeanNll(x.First, x.CountFirst), o.Beta)) { ReferenceFree = true },
        new PreferenceLoss("kto", (x, o) => Kto(x.First - x.RefFirst, x.LastSum - x.RefLast, o)),
        new PreferenceLoss("step-apo", (x, o) => PreferenceLosses.StepApo(x.Margin, x.ScoreFirst, x.ScoreLast, o.Beta, o.Alpha, x.ConstantSmoothing(o))),
        new PreferenceLoss("tpo", (x, o) => ListLosses.TreePreference(
            ListLosses.AdaptiveStepRewards(x.StepSum - x.StepRef, x.StepEmbedding, x.StepMask, o.StepWeights, o.Beta),
            NormalizedScores(x.Score, x.Mask), x.Mask)) { Listwise = true, StepEmbeddings = true },
        new PreferenceLoss("pro", (x, o) => ListLosses.Pro(x.Sum / x.Count.clamp_min(1), x.Score, x.Mask, x.First, o.SftWeight))
            { ReferenceFree = true, Listwise = true, TakesSftTerm = false },
        new PreferenceLoss("eurus-rm", (x, o) => PreferenceLosses.EurusRm(o.Beta * (x.First - x.RefFirst), o.Beta * (x.LastSum - x.RefLast))),
        new PreferenceLoss("verifier", (x, o) => Verifier(x, o.Beta)),
        new PreferenceLoss("value", (x, o) => (PreferenceLosses.ValueRegression(o.Beta * (x.Sum - x.Ref), x.Score) * x.Mask).sum(1) / x.Mask.sum(1))
            { Listwise = true },
        new PreferenceLoss("ppo-clip", (x, o) => PolicyGradientLosses.PpoClip(x.TokenLogProbs, x.TokenBehaviour, x.Score[.., 0], x.TokenMask, o.ClipLow, o.ClipHigh))
            { Accepts = [ExampleKind.Advantage], ReferenceFree = true, Pairwise = false, TakesSftTerm = false, NeedsBehaviour = true },
        // Expert iteration: the token-mean NLL of the verified solution.
        new PreferenceLoss("sft", (x, o) => PreferenceLosses.MeanNll(x.First, x.CountFirst))
            { Accepts = [ExampleKind.Demonstration], ReferenceFree = true, Pairwise = false, TakesSftTerm = false },
        // AlphaZero distillation: the policy over a node's children against their visit shares (the scores).
        new PreferenceLoss("policy-ce", (x, o) => ListLosses.PolicyCrossEntropy(x.Sum, x.Score, x.Mask))
            { Accepts = [ExampleKind.Distribution], ReferenceFree = true, Listwise = true },
    ];

    public static IPreferenceLoss? Find(string name) => All.FirstOrDefault(l => l.Name == name);

    public static IPreferenceLoss Get(string name) => Find(name)
        ?? throw new ArgumentException($"unknown loss '{name}' (known: {string.Join(", ", All.Select(l => l.Name))})");

    /// <summary>KTO on pairs: the chosen completion is desirable, the rejected one undesirable; z0 = max(0, batch-mean log-ratio), detached.</summary>
    static Tensor Kto(Tensor chosenRatio, Tensor rejectedRatio, LossOptions o)
    {
        double z0;
        using (no_grad()) z0 = Math.Max(0, cat([chosenRatio, rejectedRatio]).mean().ToDouble());
        var desirable = PreferenceLosses.Kto(chosenRatio, ones_like(chosenRatio).to(ScalarType.Bool), z0, o.Beta, o.DesirableWeight, o.UndesirableWeight);
        var undesirable = PreferenceLosses.Kto(rejectedRatio, zeros_like(rejectedRatio).to(ScalarType.Bool), z0, o.Beta, o.DesirableWeight, o.UndesirableWeight);
        return desirable + undesirable;
    }

    /// <summary>Tree-PLV step ranking on implicit prefix rewards β·Σ_{steps ≤ i} log-ratio, over the steps both candidates have.</summary>
    static Tensor Verifier(LossInputs t, double beta)
    {
        var prefix = (beta * (t.StepSum - t.StepRef) * t.StepMask).cumsum(2);
        var s = prefix.shape[2];
        var lastIndex = t.Last.unsqueeze(2).expand(-1, -1, s);
        var chosen = prefix[.., 0, ..];
        var rejected = prefix.gather(1, lastIndex).squeeze(1);
        var both = t.StepMask[.., 0, ..] * t.StepMask.gather(1, lastIndex).squeeze(1);
        return PreferenceLosses.VerifierStepRanking(chosen, rejected, both);
    }

    /// <summary>TPO's preference values in [0, 1]: min-max over each list (a list of equal scores gets all ones).</summary>
    static Tensor NormalizedScores(Tensor scores, Tensor mask)
    {
        var valid = mask > 0.5;
        var max = scores.masked_fill(valid.logical_not(), double.NegativeInfinity).amax([1], keepdim: true);
        var min = scores.masked_fill(valid.logical_not(), double.PositiveInfinity).amin([1], keepdim: true);
        var range = max - min;
        return where(range > 1e-12, (scores - min) / range.clamp_min(1e-12), ones_like(scores)) * mask;
    }
}
