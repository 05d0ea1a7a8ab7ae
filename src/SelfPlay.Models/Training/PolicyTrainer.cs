using SelfPlay.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Training;

/// <summary>A step-level preference pair with reference log-probs computed once, when the data was built.</summary>
public sealed record DpoPair(ScoredSequence Chosen, ScoredSequence Rejected, float RefChosen, float RefRejected, float LabelSmoothing = 0);

/// <summary>AdamW settings; the learning rate warms up linearly over <see cref="WarmupShare"/> of the steps, then decays by cosine to <see cref="FinalLearningRateShare"/>.</summary>
public sealed record TrainerOptions(double LearningRate = 1e-3, double WeightDecay = 0.0, double MaxGradNorm = 1.0, int BatchSize = 32,
    double WarmupShare = 0.05, double FinalLearningRateShare = 0.1)
{
    public double LearningRateAt(int step, int totalSteps)
    {
        var warmup = Math.Max(1, (int)(totalSteps * WarmupShare));
        if (step < warmup) return LearningRate * (step + 1) / warmup;
        var progress = totalSteps <= warmup ? 1 : (double)(step - warmup) / (totalSteps - warmup);
        return LearningRate * (FinalLearningRateShare + (1 - FinalLearningRateShare) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress))));
    }
}

public sealed record EpochStats(int Epoch, double Loss, int Examples, double RewardAccuracy = double.NaN, double RewardMargin = double.NaN);

/// <summary>
/// Supervised and DPO training of a policy with AdamW and gradient clipping, one dispose scope per step
/// (scopes are thread-local, so a step never spans an await).
/// </summary>
public sealed class PolicyTrainer(LlamaForCausalLM model, TrainerOptions options) : IDisposable
{
    readonly optim.Optimizer _optimizer = optim.AdamW(model.parameters(), options.LearningRate, weight_decay: options.WeightDecay);

    public IReadOnlyList<EpochStats> TrainSft(IReadOnlyList<ScoredSequence> data, int epochs, Random random,
        Action<int, int>? onStep = null)
    {
        var stats = new List<EpochStats>();
        data = data.Select(s => s.TrimUnscoredTail()).ToList();
        model.train();
        var totalSteps = epochs * ((data.Count + options.BatchSize - 1) / options.BatchSize);
        var step = 0;
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            double lossSum = 0;
            var batches = 0;
            foreach (var batch in Batches(data, random))
            {
                using var scope = NewDisposeScope();
                SetLearningRate(step, totalSteps);
                _optimizer.zero_grad();
                var (logProbs, mask) = SequenceScorer.TokenLogProbs(model, batch);
                var loss = -logProbs.sum() / mask.sum().clamp_min(1);
                loss.backward();
                nn.utils.clip_grad_norm_(model.parameters(), options.MaxGradNorm);
                _optimizer.step();
                lossSum += loss.item<float>();
                batches++;
                onStep?.Invoke(++step, totalSteps);
            }
            stats.Add(new EpochStats(epoch, lossSum / Math.Max(1, batches), data.Count));
        }
        model.eval();
        return stats;
    }

    /// <param name="sftWeight">weight α of an SFT term on the chosen completions (token-mean NLL), as in RPO;
    /// 0 is plain DPO. It keeps the chosen steps' likelihood from falling along with the rejected ones'.</param>
    public IReadOnlyList<EpochStats> TrainDpo(IReadOnlyList<DpoPair> pairs, int epochs, double beta, Random random,
        Action<int, int>? onStep = null, double sftWeight = 0)
    {
        var stats = new List<EpochStats>();
        model.train();
        var totalSteps = epochs * ((pairs.Count + options.BatchSize - 1) / options.BatchSize);
        var step = 0;
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            double lossSum = 0, accuracySum = 0, marginSum = 0;
            foreach (var batch in Batches(pairs, random))
            {
                using var scope = NewDisposeScope();
                SetLearningRate(step, totalSteps);
                _optimizer.zero_grad();
                // Chosen and rejected in one forward pass, as TRL does.
                var (logProbs, mask) = SequenceScorer.TokenLogProbs(model, [.. batch.Select(p => p.Chosen), .. batch.Select(p => p.Rejected)]);
                var sums = logProbs.sum(1);
                var n = batch.Count;
                var policyChosen = sums[..n];
                var policyRejected = sums[n..];
                var refChosen = tensor(batch.Select(p => p.RefChosen).ToArray(), device: sums.device);
                var refRejected = tensor(batch.Select(p => p.RefRejected).ToArray(), device: sums.device);
                var smoothing = batch.Any(p => p.LabelSmoothing > 0)
                    ? tensor(batch.Select(p => p.LabelSmoothing).ToArray(), device: sums.device) : null;
                var margin = PreferenceLosses.Margin(policyChosen, policyRejected, refChosen, refRejected);
                var loss = PreferenceLosses.Dpo(margin, beta, smoothing).mean();
                if (sftWeight > 0) loss = loss - sftWeight * policyChosen.sum() / mask[..n].sum().clamp_min(1);
                loss.backward();
                nn.utils.clip_grad_norm_(model.parameters(), options.MaxGradNorm);
                _optimizer.step();
                lossSum += loss.item<float>() * n;
                using (no_grad())
                {
                    accuracySum += (margin > 0).to(ScalarType.Float32).sum().item<float>();
                    marginSum += (margin * beta).sum().item<float>();
                }
                onStep?.Invoke(++step, totalSteps);
            }
            var count = Math.Max(1, pairs.Count);
            stats.Add(new EpochStats(epoch, lossSum / count, pairs.Count, accuracySum / count, marginSum / count));
        }
        model.eval();
        return stats;
    }

    void SetLearningRate(int step, int totalSteps)
    {
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = options.LearningRateAt(step, totalSteps);
    }

    IEnumerable<List<T>> Batches<T>(IReadOnlyList<T> data, Random random)
    {
        var order = Enumerable.Range(0, data.Count).ToArray();
        random.Shuffle(order);
        for (var i = 0; i < order.Length; i += options.BatchSize)
            yield return order.Skip(i).Take(options.BatchSize).Select(j => data[j]).ToList();
    }

    public void Dispose() => _optimizer.Dispose();
}
