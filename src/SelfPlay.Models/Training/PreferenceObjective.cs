using SelfPlay.Core.Preferences;
using SelfPlay.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Training;

/// <summary>The learner's loss and its parameters (learner.* in reference.conf).</summary>
/// <param name="LabelSmoothing">constant ε for dpo, robust, simpo, step-apo (cdpo uses each pair's visit-count ε)</param>
/// <param name="Alpha">Step-APO's advantage weight α</param>
/// <param name="Gamma">SimPO's target margin γ</param>
/// <param name="SftWeight">weight of a token-mean NLL term on the best candidate (PRO: its own (n−1)²-scaled summed NLL)</param>
public sealed record LossOptions(string Name = "dpo", double Beta = 0.1, double LabelSmoothing = 0, double Alpha = 1.0, double Gamma = 1.0,
    double SftWeight = 0, StepWeighting StepWeights = StepWeighting.Dissimilar, double ClipLow = 0.2, double ClipHigh = 0.28,
    double DesirableWeight = 1, double UndesirableWeight = 1);

/// <summary>Sums over one batch for the diagnostics (pairs: best vs worst candidate).</summary>
public sealed record BatchMetrics(double Loss, int Examples, double RewardCorrect, double MarginSum, double ChosenLogProbSum,
    double RejectedLogProbSum, double RankCorrect, double RankNormalizedCorrect);

/// <summary>
/// Every learner loss over a batch of prepared examples: one forward pass for all candidates, per-candidate and
/// per-step log-probs, then the pure loss functions of <see cref="PreferenceLosses"/>, <see cref="ListLosses"/> and
/// <see cref="PolicyGradientLosses"/>.
/// </summary>
public static class PreferenceObjective
{
    public static readonly IReadOnlyList<string> Losses =
        ["dpo", "cdpo", "robust", "hinge", "ipo", "simpo", "orpo", "kto", "step-apo", "tpo", "pro", "eurus-rm", "verifier", "value", "ppo-clip", "sft", "policy-ce"];

    /// <summary>Which example kinds a loss trains on (pair losses also take lists, as best vs worst).</summary>
    public static IReadOnlyList<ExampleKind> Accepts(string loss) => loss switch
    {
        "ppo-clip" => [ExampleKind.Advantage],
        "sft" => [ExampleKind.Demonstration],
        "policy-ce" => [ExampleKind.Distribution],
        _ => [ExampleKind.Pair, ExampleKind.List],
    };

    /// <summary>Losses that never look at reference log-probs.</summary>
    public static bool ReferenceFree(string loss) => loss is "simpo" or "orpo" or "pro" or "ppo-clip" or "sft" or "policy-ce";

    /// <summary>Losses over one completion per example (no chosen/rejected diagnostics).</summary>
    public static bool Pairwise(string loss) => loss is not ("ppo-clip" or "sft");

    /// <summary>The batch loss (mean over examples) with gradients, and the batch's diagnostic sums.</summary>
    public static (Tensor Loss, BatchMetrics Metrics) Compute(LlamaForCausalLM model, IReadOnlyList<PreparedExample> batch, LossOptions o)
    {
        if (o.Name == "ppo-clip" && batch.Any(e => e.Candidates.Count != 1 || e.Candidates[0].Behaviour.Length == 0))
            throw new InvalidDataException("ppo-clip trains one completion per example and needs the behaviour log-probs stored with its steps");
        var t = Tensorize(model, batch, o.Name == "tpo" && o.StepWeights != StepWeighting.None);
        var b = batch.Count;
        var first = t.Sum[.., 0];
        var last = t.Sum.gather(1, t.Last).squeeze(1);
        var refFirst = t.Ref[.., 0];
        var refLast = t.Ref.gather(1, t.Last).squeeze(1);
        var countFirst = t.Count[.., 0];
        var countLast = t.Count.gather(1, t.Last).squeeze(1);
        var margin = PreferenceLosses.Margin(first, last, refFirst, refLast);
        var scoreFirst = t.Score[.., 0];
        var scoreLast = t.Score.gather(1, t.Last).squeeze(1);
        var device = first.device;
        Tensor? constantSmoothing = o.LabelSmoothing > 0 ? full(b, o.LabelSmoothing, dtype: first.dtype, device: device) : null;

        Tensor loss = o.Name switch
        {
            "dpo" => PreferenceLosses.Dpo(margin, o.Beta, constantSmoothing),
            "cdpo" => PreferenceLosses.Dpo(margin, o.Beta, tensor(batch.Select(e => e.LabelSmoothing).ToArray(), device: device).to(first.dtype)),
            "robust" => PreferenceLosses.Robust(margin, o.Beta, o.LabelSmoothing),
            "hinge" => PreferenceLosses.Hinge(margin, o.Beta),
            "ipo" => PreferenceLosses.Ipo((first - refFirst) / countFirst.clamp_min(1) - (last - refLast) / countLast.clamp_min(1), o.Beta),
            "simpo" => PreferenceLosses.SimPo(first / countFirst.clamp_min(1), last / countLast.clamp_min(1), o.Beta, o.Gamma, constantSmoothing),
            "orpo" => PreferenceLosses.Orpo(first / countFirst.clamp_min(1), last / countLast.clamp_min(1), PreferenceLosses.MeanNll(first, countFirst), o.Beta),
            "kto" => Kto(first - refFirst, last - refLast, o),
            "step-apo" => PreferenceLosses.StepApo(margin, scoreFirst, scoreLast, o.Beta, o.Alpha, constantSmoothing),
            "eurus-rm" => PreferenceLosses.EurusRm(o.Beta * (first - refFirst), o.Beta * (last - refLast)),
            "verifier" => Verifier(t, o.Beta),
            "value" => (PreferenceLosses.ValueRegression(o.Beta * (t.Sum - t.Ref), t.Score) * t.Mask).sum(1) / t.Mask.sum(1),
            "tpo" => ListLosses.TreePreference(
                ListLosses.AdaptiveStepRewards(t.StepSum - t.StepRef, t.StepEmbedding, t.StepMask, o.StepWeights, o.Beta),
                NormalizedScores(t.Score, t.Mask), t.Mask),
            "pro" => ListLosses.Pro(t.Sum / t.Count.clamp_min(1), t.Score, t.Mask, first, o.SftWeight),
            // Expert iteration: the token-mean NLL of the verified solution.
            "sft" => PreferenceLosses.MeanNll(first, countFirst),
            // AlphaZero distillation: the policy over a node's children against their visit shares (the scores).
            "policy-ce" => ListLosses.PolicyCrossEntropy(t.Sum, t.Score, t.Mask),
            "ppo-clip" => PolicyGradientLosses.PpoClip(t.TokenLogProbs, t.TokenBehaviour, t.Score[.., 0], t.TokenMask, o.ClipLow, o.ClipHigh),
            _ => throw new ArgumentException($"unknown loss '{o.Name}' (known: {string.Join(", ", Losses)})"),
        };
        if (o.SftWeight > 0 && o.Name is not ("pro" or "ppo-clip" or "sft")) loss = loss + o.SftWeight * PreferenceLosses.MeanNll(first, countFirst);
        var mean = loss.mean();

        using var _ = no_grad();
        var pairwise = Pairwise(o.Name);
        double Sum(Tensor x) => x.sum().ToDouble();
        var metrics = new BatchMetrics(mean.ToDouble() * b, b,
            pairwise ? Sum((margin > 0).to(ScalarType.Float32)) : 0,
            pairwise ? Sum(margin * o.Beta) : 0,
            Sum(first), pairwise ? Sum(last) : 0,
            pairwise ? Sum((first >= last).to(ScalarType.Float32)) : 0,
            pairwise ? Sum((first / countFirst.clamp_min(1) >= last / countLast.clamp_min(1)).to(ScalarType.Float32)) : 0);
        return (mean, metrics);
    }

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
    static Tensor Verifier(Batch t, double beta)
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

    /// <summary>A batch laid out as [B,K] candidates (K = longest list), [B,K,S] steps and, for one-candidate examples, [B,T] tokens.</summary>
    sealed record Batch(Tensor Sum, Tensor Ref, Tensor Count, Tensor Score, Tensor Mask, Tensor Last,
        Tensor StepSum, Tensor StepRef, Tensor StepMask, Tensor? StepEmbedding,
        Tensor TokenLogProbs, Tensor TokenBehaviour, Tensor TokenMask);

    static Batch Tensorize(LlamaForCausalLM model, IReadOnlyList<PreparedExample> batch, bool withEmbeddings)
    {
        var candidates = batch.SelectMany(e => e.Candidates).ToList();
        var n = candidates.Count;
        var (logProbs, logits) = SequenceScorer.TokenLogProbsAndLogits(model, candidates.Select(c => c.Sequence).ToList());
        var device = logProbs.device;
        var width = (int)logProbs.shape[1];
        var maxTokens = Math.Max(1, candidates.Max(c => c.Tokens));
        var maxSteps = Math.Max(1, candidates.Max(c => c.StepOf.Length == 0 ? 0 : c.StepOf.Max() + 1));

        // Scored positions, reference and behaviour per scored token, and step membership, built on the CPU.
        var positions = new long[n * maxTokens];
        var tokenMask = new float[n * maxTokens];
        var reference = new float[n * maxTokens];
        var behaviour = new float[n * maxTokens];
        var stepOneHot = new float[n * maxSteps * maxTokens];
        for (var i = 0; i < n; i++)
        {
            var c = candidates[i];
            var k = 0;
            for (var t = 1; t < c.Sequence.Ids.Length; t++)
            {
                if (!c.Sequence.Scored[t]) continue;
                positions[i * maxTokens + k] = t - 1;
                tokenMask[i * maxTokens + k] = 1;
                reference[i * maxTokens + k] = c.Reference[k];
                if (c.Behaviour.Length > k) behaviour[i * maxTokens + k] = c.Behaviour[k];
                stepOneHot[(i * maxSteps + c.StepOf[k]) * maxTokens + k] = 1;
                k++;
            }
        }
        var index = tensor(positions, [n, maxTokens], device: device);
        var dtype = logProbs.dtype;
        var mask = tensor(tokenMask, [n, maxTokens], device: device).to(dtype);
        var scored = logProbs.gather(1, index) * mask;
        var referenceTokens = tensor(reference, [n, maxTokens], device: device).to(dtype);
        var steps = tensor(stepOneHot, [n, maxSteps, maxTokens], device: device).to(dtype);
        var stepSum = (steps * scored.unsqueeze(1)).sum(2);
        var stepRef = (steps * referenceTokens.unsqueeze(1)).sum(2);
        var stepMask = (steps.sum(2) > 0).to(dtype);
        Tensor? embedding = null;
        if (withEmbeddings && maxSteps > 1)
        {
            // Step embedding: mean output logits over the step's tokens (a linear image of the last hidden state), no gradient.
            using var noGrad = no_grad();
            var vocab = logits.shape[2];
            var atScored = logits.detach()[.., ..width, ..].gather(1, index.unsqueeze(2).expand(-1, -1, vocab));
            embedding = steps.matmul(atScored) / steps.sum(2, keepdim: true).clamp_min(1);
        }

        // [B,K] grid over the flat candidates; row n is an all-zero pad.
        var k2 = batch.Max(e => e.Candidates.Count);
        var grid = new long[batch.Count * k2];
        var gridMask = new float[batch.Count * k2];
        var score = new float[batch.Count * k2];
        var last = new long[batch.Count];
        var flat = 0;
        for (var e = 0; e < batch.Count; e++)
        {
            for (var j = 0; j < k2; j++)
            {
                var present = j < batch[e].Candidates.Count;
                grid[e * k2 + j] = present ? flat + j : n;
                gridMask[e * k2 + j] = present ? 1 : 0;
                score[e * k2 + j] = present ? (float)batch[e].Candidates[j].Score : 0;
            }
            last[e] = batch[e].Candidates.Count - 1;
            flat += batch[e].Candidates.Count;
        }
        var gridIndex = tensor(grid, device: device);
        Tensor Grid(Tensor x)
        {
            var padded = cat([x, zeros([1, .. x.shape[1..]], dtype: x.dtype, device: device)]);
            return padded.index_select(0, gridIndex).reshape([batch.Count, k2, .. x.shape[1..]]);
        }
        return new Batch(Grid(scored.sum(1)), Grid(referenceTokens.sum(1)), Grid(mask.sum(1)),
            tensor(score, [batch.Count, k2], device: device).to(dtype), tensor(gridMask, [batch.Count, k2], device: device).to(dtype),
            tensor(last, [batch.Count, 1], device: device),
            Grid(stepSum), Grid(stepRef), Grid(stepMask), embedding is null ? null : Grid(embedding),
            scored, tensor(behaviour, [n, maxTokens], device: device).to(dtype), mask);
    }
}
