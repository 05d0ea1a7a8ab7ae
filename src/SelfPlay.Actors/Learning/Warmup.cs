using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Training;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;

namespace SelfPlay.Actors.Learning;

/// <summary>The warm-up recipe (policy v0): supervised fine-tuning on the environment's reference traces.</summary>
public static class Warmup
{
    /// <param name="Traces">the distinct reference traces trained on; 0 when warmup.share = 0 (the policy is left as it is)</param>
    /// <param name="Tasks">the training tasks they come from</param>
    /// <param name="Epochs">per epoch, the mean loss</param>
    public sealed record Result(int Traces, int Tasks, IReadOnlyList<EpochStats> Epochs)
    {
        public double FirstLoss => Epochs.FirstOrDefault()?.Loss ?? double.NaN;
        public double LastLoss => Epochs.LastOrDefault()?.Loss ?? double.NaN;
    }

    /// <summary>The reference traces of warmup.share of the training tasks (a seeded shuffle), up to
    /// warmup.traces-per-puzzle distinct ones each, encoded with the campaign's tokenizer.</summary>
    public static (List<ScoredSequence> Sequences, int Tasks) Traces(CampaignConfig c, EnvironmentSetup setup, ITokenizer tokenizer, Random random)
    {
        var train = setup.Train.ToArray();
        new Random(c.Seed + 1).Shuffle(train);
        var tasks = c.Warmup.Share == 0 ? [] : train.Take(Math.Max(1, (int)Math.Round(train.Length * c.Warmup.Share))).ToList();
        var sequences = new List<ScoredSequence>();
        foreach (var task in tasks)
        {
            var seen = new HashSet<string>();
            for (var attempt = 0; attempt < c.Warmup.TracesPerPuzzle * 4 && seen.Count < c.Warmup.TracesPerPuzzle; attempt++)
            {
                var trace = WarmupTraces.Build(setup.Environment, task, random);
                if (trace is null) break; // the task has no reference solution
                if (seen.Add(string.Concat(trace.Select(s => s.Text)))) sequences.Add(PolicyEncoding.Trace(tokenizer, trace));
            }
        }
        return (sequences, tasks.Count);
    }

    /// <summary>
    /// Trains the policy on the reference traces for warmup.epochs. A pretrained policy (policy.checkpoint) under a
    /// LoRA learner trains through an adapter as the iterations do (the optimizer holds the adapter's state, not the
    /// model's), which is then merged in: v0 is full weights, the base and reference of the iterations' adapter. A
    /// policy trained from scratch trains all its weights (a random base is nothing to adapt).
    /// </summary>
    /// <param name="makePolicy">called once the traces are known, for the policy to train (the traces do not need it)</param>
    public static Result Train(Func<LlamaForCausalLM> makePolicy, CampaignConfig c, EnvironmentSetup setup, ITokenizer tokenizer,
        out LlamaForCausalLM policy, Action<int, int>? progress = null)
    {
        var random = new Random(c.Seed); // one stream: trace sampling, then batch order
        var (sequences, tasks) = Traces(c, setup, tokenizer, random);
        policy = makePolicy();
        if (sequences.Count == 0) return new Result(0, tasks, []);
        var lora = c.PolicySource.Checkpoint.Length > 0 ? LearnerSettings.Lora(c.Learner) : null;
        if (lora is not null) policy.AttachLora(lora, c.Seed);
        IReadOnlyList<EpochStats> epochs;
        using (var trainer = new PolicyTrainer(policy, new TrainerOptions(c.Warmup.LearningRate, BatchSize: c.Warmup.BatchSize,
                   ComputeDType: LearnerSettings.ComputeDType(c.Learner))))
            epochs = trainer.TrainSft(sequences, c.Warmup.Epochs, random, progress);
        if (lora is not null)
        {
            var adapted = policy;
            policy = LoraAdapter.Merge(adapted); // W + (α/r) B A, as PEFT's merge_and_unload
            adapted.Dispose();
        }
        return new Result(sequences.Count, tasks, epochs);
    }
}
