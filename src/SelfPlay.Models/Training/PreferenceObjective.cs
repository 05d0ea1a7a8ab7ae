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
    double SftWeight = 1.0, StepWeighting StepWeights = StepWeighting.Dissimilar, double ClipLow = 0.2, double ClipHigh = 0.28,
    double DesirableWeight = 1, double UndesirableWeight = 1);

/// <summary>Sums over one batch for the diagnostics (pairs: best vs worst candidate).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(BatchMetricsJson))]
public sealed record BatchMetrics(double Loss, int Examples, double RewardCorrect, double MarginSum, double ChosenLogProbSum,
    double RejectedLogProbSum, double RankCorrect, double RankNormalizedCorrect)
{
    public static readonly BatchMetrics Zero = new(0, 0, 0, 0, 0, 0, 0, 0);

    public static BatchMetrics operator +(BatchMetrics a, BatchMetrics b) => new(a.Loss + b.Loss, a.Examples + b.Examples,
        a.RewardCorrect + b.RewardCorrect, a.MarginSum + b.MarginSum, a.ChosenLogProbSum + b.ChosenLogProbSum,
        a.RejectedLogProbSum + b.RejectedLogProbSum, a.RankCorrect + b.RankCorrect, a.RankNormalizedCorrect + b.RankNormalizedCorrect);

    /// <summary>The means over the examples, as an epoch's or a step's figures (no pair figures for a loss that has no pairs).</summary>
    public EpochStats Means(int epoch, bool pairwise)
    {
        var n = Math.Max(1, Examples);
        return pairwise
            ? new EpochStats(epoch, Loss / n, Examples, RewardCorrect / n, MarginSum / n, ChosenLogProbSum / n, RejectedLogProbSum / n, RankCorrect / n, RankNormalizedCorrect / n)
            : new EpochStats(epoch, Loss / n, Examples);
    }
}

/// <summary>BatchMetrics in JSON as its eight sums, in field order (the layout trainer-state.json has always had).</summary>
sealed class BatchMetricsJson : System.Text.Json.Serialization.JsonConverter<BatchMetrics>
{
    public override BatchMetrics Read(ref System.Text.Json.Utf8JsonReader reader, Type type, System.Text.Json.JsonSerializerOptions options)
    {
        var s = System.Text.Json.JsonSerializer.Deserialize<double[]>(ref reader, options);
        if (s is not { Length: 8 }) throw new System.Text.Json.JsonException("batch metrics must be an array of 8 sums");
        return new BatchMetrics(s[0], (int)s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    }

    public override void Write(System.Text.Json.Utf8JsonWriter writer, BatchMetrics m, System.Text.Json.JsonSerializerOptions options) =>
        System.Text.Json.JsonSerializer.Serialize(writer, new[] { m.Loss, m.Examples, m.RewardCorrect, m.MarginSum, m.ChosenLogProbSum,
            m.RejectedLogProbSum, m.RankCorrect, m.RankNormalizedCorrect }, options);
}

/// <summary>
/// Every learner loss over a batch of prepared examples: one forward pass for all candidates, per-candidate and
/// per-step log-probs, then the pure loss functions of <see cref="PreferenceLosses"/>, <see cref="ListLosses"/> and
/// <see cref="PolicyGradientLosses"/>.
/// </summary>
public static class PreferenceObjective
{
    /// <summary>The batch loss (mean over examples) with gradients, and the batch's diagnostic sums.</summary>
    public static (Tensor Loss, BatchMetrics Metrics) Compute(LlamaForCausalLM model, IReadOnlyList<PreparedExample> batch, LossOptions o)
    {
        var objective = Losses.Get(o.Name);
        if (objective.NeedsBehaviour && batch.Any(e => e.Candidates.Count != 1 || e.Candidates[0].Behaviour.Length == 0))
            throw new InvalidDataException($"{o.Name} trains one completion per example and needs the behaviour log-probs stored with its steps");
        var x = Tensorize(model, batch, objective.UsesStepEmbeddings(o));
        var b = batch.Count;
        var (first, last, countFirst, countLast, margin) = (x.First, x.LastSum, x.CountFirst, x.CountLast, x.Margin);
        var loss = objective.Compute(x, o);
        if (o.SftWeight > 0 && objective.TakesSftTerm) loss = loss + o.SftWeight * PreferenceLosses.MeanNll(first, countFirst);
        var mean = loss.mean();

        using var _ = no_grad();
        var pairwise = objective.Pairwise;
        double Sum(Tensor t) => t.sum().ToDouble();
        var metrics = new BatchMetrics(mean.ToDouble() * b, b,
            pairwise ? Sum((margin > 0).to(ScalarType.Float32)) : 0,
            pairwise ? Sum(margin * o.Beta) : 0,
            Sum(first), pairwise ? Sum(last) : 0,
            pairwise ? Sum((first >= last).to(ScalarType.Float32)) : 0,
            pairwise ? Sum((first / countFirst.clamp_min(1) >= last / countLast.clamp_min(1)).to(ScalarType.Float32)) : 0);
        return (mean, metrics);
    }

    /// <summary>A batch laid out as [B,K] candidates (K = longest list), [B,K,S] steps and, for one-candidate examples, [B,T] tokens.</summary>

    static LossInputs Tensorize(LlamaForCausalLM model, IReadOnlyList<PreparedExample> batch, bool withEmbeddings)
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
        return new LossInputs(batch, Grid(scored.sum(1)), Grid(referenceTokens.sum(1)), Grid(mask.sum(1)),
            tensor(score, [batch.Count, k2], device: device).to(dtype), tensor(gridMask, [batch.Count, k2], device: device).to(dtype),
            tensor(last, [batch.Count, 1], device: device),
            Grid(stepSum), Grid(stepRef), Grid(stepMask), embedding is null ? null : Grid(embedding),
            scored, tensor(behaviour, [n, maxTokens], device: device).to(dtype), mask);
    }
}
