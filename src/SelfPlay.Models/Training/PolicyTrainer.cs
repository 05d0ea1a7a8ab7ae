using System.Text.Json;
using SelfPlay.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Training;

/// <summary>
/// AdamW settings; the learning rate warms up linearly over <see cref="WarmupShare"/> of the optimizer steps, then
/// decays by cosine to <see cref="FinalLearningRateShare"/>. An optimizer step accumulates the gradients of
/// <see cref="GradientAccumulation"/> batches of <see cref="BatchSize"/>. With a <see cref="CheckpointDir"/>, the whole
/// training state is written there every <see cref="CheckpointEvery"/> optimizer steps (and at the end).
/// <see cref="ComputeDType"/> bfloat16 runs forward and backward in bfloat16 against the float32 model (mixed precision).
/// </summary>
public sealed record TrainerOptions(double LearningRate = 1e-3, double WeightDecay = 0.0, double MaxGradNorm = 1.0, int BatchSize = 32,
    double WarmupShare = 0.05, double FinalLearningRateShare = 0.1, int GradientAccumulation = 1, int CheckpointEvery = 0,
    string? CheckpointDir = null, int EvalEvery = 0, ScalarType ComputeDType = ScalarType.Float32, int Patience = 1, double Dropout = 0)
{
    public double LearningRateAt(int step, int totalSteps)
    {
        var warmup = Math.Max(1, (int)(totalSteps * WarmupShare));
        if (step < warmup) return LearningRate * (step + 1) / warmup;
        var progress = totalSteps <= warmup ? 1 : (double)(step - warmup) / (totalSteps - warmup);
        return LearningRate * (FinalLearningRateShare + (1 - FinalLearningRateShare) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress))));
    }
}

/// <summary>One epoch's means (pair diagnostics: best vs worst candidate; NaN where they do not apply).</summary>
public sealed record EpochStats(int Epoch, double Loss, int Examples, double RewardAccuracy = double.NaN, double RewardMargin = double.NaN,
    double ChosenLogProb = double.NaN, double RejectedLogProb = double.NaN, double RankingAccuracy = double.NaN,
    double RankingAccuracyNormalized = double.NaN);

/// <summary>One optimizer step, as reported to the step callback: its batches' means (same fields as an epoch's).</summary>
public sealed record StepReport(int Step, int TotalSteps, int Epoch, double LearningRate, EpochStats Metrics);

/// <summary>
/// Early stopping on a held-out slice: the slice's mean loss before training (index 0) and after each epoch run, the
/// epoch whose weights were kept (0: the weights before training, none of the epochs did better), and whether training
/// stopped before its last epoch (the held-out loss rose for the patience's epochs).
/// </summary>
public sealed record HeldOutStopping(int Examples, IReadOnlyList<double> Losses, int KeptEpoch, bool Stopped);

/// <summary>Where a training run stands: enough, with the model and optimizer files beside it, to resume it exactly
/// (with a held-out slice: its losses so far, and the kept epoch's weights in their own file).</summary>
public sealed record TrainerState(int Step, int Epoch, int Cursor, int TotalSteps, List<EpochStats> Completed, BatchMetrics EpochSums,
    List<double>? HeldOutLosses = null)
{
    public const string FileName = "trainer-state.json";
}

/// <summary>
/// Supervised and preference training of a policy: AdamW, gradient clipping, gradient accumulation, warmup + cosine,
/// one dispose scope per batch (scopes are thread-local, so a step never spans an await).
/// Resume is exact: model, optimizer moments, schedule position, data order (the epoch shuffles are replayed from the
/// caller's identically seeded <see cref="Random"/>) and the cursor inside the epoch are restored.
/// </summary>
public sealed class PolicyTrainer : IDisposable
{
    const string ModelFile = "model.bin", OptimizerFile = "optimizer.bin", KeptFile = "held-out-best.bin";
    static readonly JsonSerializerOptions StateJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    readonly LlamaForCausalLM model;
    readonly TrainerOptions options;
    readonly TorchSharp.Modules.AdamW _optimizer;
    readonly LowPrecisionCompute? _lowPrecision;
    TrainerState? _resume;

    /// <param name="model">the trained weights, float32 (or float64); they keep their dtype: with a bfloat16
    /// <see cref="TrainerOptions.ComputeDType"/> they are the master weights AdamW updates.</param>
    public PolicyTrainer(LlamaForCausalLM model, TrainerOptions options)
    {
        (this.model, this.options) = (model, options);
        var lowPrecision = options.ComputeDType is ScalarType.BFloat16 or ScalarType.Float16;
        if (model.Lora is not null)
        {
            // LoRA: the frozen base itself computes in the low-precision dtype (half its memory, no working copy);
            // the adapter, the only trained weights, stays float32.
            if (lowPrecision && model.DType != options.ComputeDType) model.BaseTo(options.ComputeDType);
        }
        else
        {
            if (model.DType is not (ScalarType.Float32 or ScalarType.Float64))
                throw new ArgumentException($"the trained model must hold float32 weights, not {model.DType}: set a low-precision compute dtype instead");
            if (lowPrecision) _lowPrecision = new LowPrecisionCompute(model, options.ComputeDType);
        }
        // With a LoRA adapter only its tensors are trainable: AdamW keeps moments for those alone.
        _optimizer = optim.AdamW(model.TrainableParameters(), options.LearningRate, weight_decay: options.WeightDecay);
    }

    /// <summary>The model forward and backward passes run on: the trained model, or its low-precision working copy.</summary>
    LlamaForCausalLM Compute => _lowPrecision?.Model ?? model;

    /// <summary>The held-out slice's figures of the last Train call that had one (null without).</summary>
    public HeldOutStopping? HeldOut { get; private set; }

    /// <summary>Called after every optimizer step.</summary>
    public Action<StepReport>? OnStep { get; set; }
    /// <summary>Called every <see cref="TrainerOptions.EvalEvery"/> optimizer steps (the model is in eval mode meanwhile).</summary>
    public Action<int>? OnEval { get; set; }

    /// <summary>Loads a checkpoint written by this trainer; the next Train call continues from it.</summary>
    public void Resume(string directory)
    {
        var statePath = Path.Combine(directory, TrainerState.FileName);
        if (!File.Exists(statePath)) throw new FileNotFoundException($"no trainer checkpoint in {directory}");
        _resume = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath), StateJson)
                  ?? throw new InvalidDataException($"{statePath}: empty trainer state");
        model.load(Path.Combine(directory, ModelFile));
        _optimizer.load_state_dict(Path.Combine(directory, OptimizerFile));
        _lowPrecision?.CopyWeightsFrom(model);
    }

    /// <param name="heldOut">a held-out slice: training keeps the weights of the epoch (or the start) with its lowest loss
    /// and stops once it rose for <see cref="TrainerOptions.Patience"/> epochs in a row (null or empty: every epoch runs)</param>
    public IReadOnlyList<EpochStats> TrainSft(IReadOnlyList<ScoredSequence> data, int epochs, Random random, Action<int, int>? onStep = null,
        IReadOnlyList<ScoredSequence>? heldOut = null)
    {
        data = data.Select(s => s.TrimUnscoredTail()).ToList();
        heldOut = heldOut?.Select(s => s.TrimUnscoredTail()).ToList();
        return Train(data, heldOut, epochs, random, batch =>
        {
            var (logProbs, mask) = SequenceScorer.TokenLogProbs(Compute, batch);
            var loss = -logProbs.sum() / mask.sum().clamp_min(1);
            return (loss, new BatchMetrics(loss.item<float>() * batch.Count, batch.Count, 0, 0, 0, 0, 0, 0));
        }, onStep, pairwise: false);
    }

    /// <summary>Any loss of <see cref="PreferenceObjective"/> on prepared examples.</summary>
    /// <param name="heldOut">as <see cref="TrainSft"/>'s</param>
    public IReadOnlyList<EpochStats> TrainPreferences(IReadOnlyList<PreparedExample> data, int epochs, LossOptions loss, Random random,
        Action<int, int>? onStep = null, IReadOnlyList<PreparedExample>? heldOut = null) =>
        Train(data, heldOut, epochs, random, batch => PreferenceObjective.Compute(Compute, batch, loss), onStep, pairwise: Losses.Get(loss.Name).Pairwise);

    IReadOnlyList<EpochStats> Train<T>(IReadOnlyList<T> data, IReadOnlyList<T>? heldOut, int epochs, Random random,
        Func<List<T>, (Tensor Loss, BatchMetrics Metrics)> lossOf, Action<int, int>? onStep, bool pairwise)
    {
        var batchesPerEpoch = (data.Count + options.BatchSize - 1) / options.BatchSize;
        var accumulation = Math.Max(1, options.GradientAccumulation);
        var stepsPerEpoch = (batchesPerEpoch + accumulation - 1) / accumulation;
        var totalSteps = epochs * stepsPerEpoch;
        var state = _resume ?? new TrainerState(0, 0, 0, totalSteps, [], BatchMetrics.Zero);
        _resume = null;
        if (state.TotalSteps != totalSteps) throw new InvalidDataException($"the checkpoint was written for {state.TotalSteps} steps, this run has {totalSteps}");
        var step = state.Step;
        var stats = new List<EpochStats>(state.Completed);
        HeldOut = null;
        var stopping = heldOut is { Count: > 0 } ? (state.HeldOutLosses is { } losses ? new EpochKeeper(this, losses, resumed: true) : new EpochKeeper(this, [HeldOutLoss(heldOut, lossOf)], resumed: false)) : null;
        model.train();
        Compute.train();
        // Dropout masks from a seed of this call and the step, so a resumed run draws the same masks (drawn only with
        // dropout on: without it the random stream is what it always was).
        var dropoutSeed = options.Dropout > 0 ? random.NextInt64() : 0;
        model.Dropout = Compute.Dropout = options.Dropout;
        for (var epoch = 0; epoch < epochs && stopping?.RoseTooLong(options.Patience) != true; epoch++)
        {
            // Always draw the epoch's order, so a resumed run's random stream is where the interrupted one left it.
            var order = Enumerable.Range(0, data.Count).ToArray();
            random.Shuffle(order);
            if (epoch < state.Epoch) continue;
            var sums = epoch == state.Epoch ? state.EpochSums : BatchMetrics.Zero;
            var cursor = epoch == state.Epoch ? state.Cursor : 0;
            while (cursor < batchesPerEpoch)
            {
                var group = Math.Min(accumulation, batchesPerEpoch - cursor);
                var learningRate = options.LearningRateAt(step, totalSteps);
                foreach (var g in _optimizer.ParamGroups) g.LearningRate = learningRate;
                _optimizer.zero_grad();
                _lowPrecision?.Model.zero_grad();
                var stepSums = BatchMetrics.Zero;
                for (var micro = 0; micro < group; micro++, cursor++)
                {
                    using var scope = NewDisposeScope();
                    var batch = order.Skip(cursor * options.BatchSize).Take(options.BatchSize).Select(i => data[i]).ToList();
                    if (options.Dropout > 0) Compute.SeedDropout(SelfPlay.Core.Search.Seeds.Mix(dropoutSeed, step, micro));
                    var (loss, m) = lossOf(batch);
                    (loss / group).backward();
                    sums += m;
                    stepSums += m;
                }
                using (NewDisposeScope())
                {
                    _lowPrecision?.CopyGradientsTo(model);
                    nn.utils.clip_grad_norm_(model.TrainableParameters(), options.MaxGradNorm);
                    _optimizer.step();
                    _lowPrecision?.CopyWeightsFrom(model);
                }
                step++;
                OnStep?.Invoke(new StepReport(step, totalSteps, epoch, learningRate, stepSums.Means(epoch, pairwise)));
                onStep?.Invoke(step, totalSteps);
                var epochDone = cursor >= batchesPerEpoch;
                if (epochDone && stopping is not null) stopping.EpochDone(HeldOutLoss(heldOut!, lossOf));
                var next = epochDone ? new TrainerState(step, epoch + 1, 0, totalSteps, [.. stats, sums.Means(epoch, pairwise)], BatchMetrics.Zero, stopping?.Losses)
                    : new TrainerState(step, epoch, cursor, totalSteps, stats, sums, stopping?.Losses);
                if (options.CheckpointDir is { } dir && ((options.CheckpointEvery > 0 && step % options.CheckpointEvery == 0) || step == totalSteps))
                    Save(dir, next);
                if (options.EvalEvery > 0 && step % options.EvalEvery == 0 && OnEval is { } eval)
                {
                    model.eval();
                    Compute.eval();
                    eval(step);
                    model.train();
                    Compute.train();
                }
            }
            stats.Add(sums.Means(epoch, pairwise));
        }
        if (stopping is not null) HeldOut = stopping.Finish(heldOut!.Count, epochs);
        model.eval();
        Compute.eval();
        return stats;
    }

    /// <summary>The held-out slice's mean loss, in eval mode and without gradients.</summary>
    double HeldOutLoss<T>(IReadOnlyList<T> heldOut, Func<List<T>, (Tensor Loss, BatchMetrics Metrics)> lossOf)
    {
        model.eval();
        Compute.eval();
        var sums = BatchMetrics.Zero;
        using (no_grad())
            for (var i = 0; i < heldOut.Count; i += options.BatchSize)
            {
                using var scope = NewDisposeScope();
                sums += lossOf([.. heldOut.Skip(i).Take(options.BatchSize)]).Metrics;
            }
        model.train();
        Compute.train();
        return sums.Means(0, pairwise: false).Loss;
    }

    /// <summary>The held-out losses of a run and the weights of its best point so far (in memory, and beside the
    /// checkpoint when one is written, so a resumed run can still go back to them).</summary>
    sealed class EpochKeeper
    {
        readonly PolicyTrainer _trainer;
        Tensor[]? _kept;

        /// <param name="losses">the loss before training (a new run: its weights are kept), or a resumed run's losses (its
        /// kept weights are in the checkpoint's file: the model now holds a later step's)</param>
        public EpochKeeper(PolicyTrainer trainer, List<double> losses, bool resumed)
        {
            (_trainer, Losses) = (trainer, [.. losses]);
            if (!resumed) Keep();
        }

        public List<double> Losses { get; }
        /// <summary>The index of the lowest loss (0 = before training); the first of equal ones.</summary>
        public int Kept => Losses.IndexOf(Losses.Min());

        public bool RoseTooLong(int patience) => Losses.Count - 1 - Kept >= Math.Max(1, patience);

        public void EpochDone(double loss)
        {
            Losses.Add(loss);
            if (Kept == Losses.Count - 1) Keep();
        }

        void Keep()
        {
            foreach (var t in _kept ?? []) t.Dispose();
            _kept = [.. _trainer.model.TrainableParameters().Select(p => p.detach().clone())];
            if (_trainer.options.CheckpointDir is { } dir)
            {
                Directory.CreateDirectory(dir);
                _trainer.model.save(Path.Combine(dir, KeptFile));
            }
        }

        /// <summary>Goes back to the kept weights unless they are the last epoch's.</summary>
        public HeldOutStopping Finish(int examples, int epochs)
        {
            var epochsRun = Losses.Count - 1;
            if (Kept != epochsRun)
            {
                if (_kept is { } kept)
                    using (no_grad())
                        foreach (var (p, k) in _trainer.model.TrainableParameters().Zip(kept)) p.copy_(k);
                else _trainer.model.load(Path.Combine(_trainer.options.CheckpointDir!, KeptFile)); // resumed past its best epoch
                _trainer._lowPrecision?.CopyWeightsFrom(_trainer.model);
            }
            foreach (var t in _kept ?? []) t.Dispose();
            return new HeldOutStopping(examples, [.. Losses.Select(l => Math.Round(l, 6))], Kept, epochsRun < epochs);
        }
    }

    void Save(string directory, TrainerState state)
    {
        Directory.CreateDirectory(directory);
        // Write beside, then move into place: an interruption mid-write leaves the previous checkpoint intact.
        var tmp = directory + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        model.save(Path.Combine(tmp, ModelFile));
        _optimizer.save_state_dict(Path.Combine(tmp, OptimizerFile));
        File.WriteAllText(Path.Combine(tmp, TrainerState.FileName), JsonSerializer.Serialize(state, StateJson));
        foreach (var file in Directory.GetFiles(tmp)) File.Move(file, Path.Combine(directory, Path.GetFileName(file)), overwrite: true);
        Directory.Delete(tmp, true);
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _lowPrecision?.Dispose();
    }
}

/// <summary>
/// Mixed precision without autocast: a working copy of the model in a low-precision dtype (bfloat16) runs forward and
/// backward; its gradients, widened to float32, update the float32 master weights, which are copied back after each
/// optimizer step. The master weights keep the small AdamW updates that bfloat16 weights would round away.
/// </summary>
sealed class LowPrecisionCompute : IDisposable
{
    readonly TorchSharp.Modules.Parameter[] _working;

    public LowPrecisionCompute(LlamaForCausalLM master, ScalarType dtype)
    {
        Model = new LlamaForCausalLM(master.Config);
        Model.to(master.Device).to(dtype);
        _working = Model.parameters().ToArray();
        CopyWeightsFrom(master);
    }

    public LlamaForCausalLM Model { get; }

    public void CopyWeightsFrom(LlamaForCausalLM master)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (work, weights) in _working.Zip(master.parameters())) work.copy_(weights);
    }

    /// <summary>Sets the master weights' gradients to the working copy's, widened (an unused weight gets none).</summary>
    public void CopyGradientsTo(LlamaForCausalLM master)
    {
        foreach (var (work, weights) in _working.Zip(master.parameters()))
        {
            if (work.grad is not { } gradient) continue;
            var wide = gradient.to(weights.dtype);
            if (weights.grad is { } existing) existing.copy_(wide);
            else weights.backward([wide]); // a leaf's first gradient: backward with the gradient given sets it
        }
    }

    public void Dispose() => Model.Dispose();
}
