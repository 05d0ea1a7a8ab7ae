using SelfPlay.Core.Config;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;

namespace SelfPlay.Actors.Learning;

/// <summary>
/// One learner iteration without the actor: extract examples from trees (preferences.extractor), add imported data
/// (learner.import), compute reference log-probs once, train with learner.loss, and measure the diagnostics.
/// </summary>
public static class PreferenceLearning
{
    /// <param name="tokenizer">the learner's: candidates with no token it would score (text the environment wrote, and
    /// nothing of the policy's) are left out as empty ones are; without it, candidates without text</param>
    public static List<PreferenceExample> Extract(IEnumerable<PreferenceTree> trees, PreferenceConfig p, int seed, ITokenizer? tokenizer = null) =>
        Extractors.ExtractAll(Extractors.Get(p.Extractor), trees, LearnerSettings.Extractor(p), seed,
            tokenizer is null ? null : (prompt, candidate) => PreferenceData.Encode(tokenizer, prompt, candidate).StepOf.Length > 0);

    /// <summary>learner.solution-buffer applies: the extractor gives demonstrations (solved-paths).</summary>
    public static bool UsesSolutionBuffer(CampaignConfig c) =>
        c.Learner.SolutionBuffer && Extractors.Get(c.Preferences.Extractor).Kind == ExampleKind.Demonstration;

    /// <param name="Examples">what the learner trains on this iteration (before learner.import)</param>
    /// <param name="NewExamples">how many of them come from this iteration's trees</param>
    /// <param name="Sources">the trees they come from: the window's, or with the solution buffer the newest solved tree of each task</param>
    /// <param name="Window">the trees of the last learner.window iterations (the critic's training data)</param>
    public sealed record TrainingSet(List<PreferenceExample> Examples, int NewExamples, List<PreferenceTree> Sources, List<PreferenceTree> Window);

    /// <summary>
    /// The examples of iteration <paramref name="iteration"/>: the extractor's examples of the trees of the last
    /// learner.window iterations, or with learner.solution-buffer (solved-paths) those of the newest solved tree of every
    /// task of every iteration so far, so a task once solved is never forgotten. Each iteration's trees (or each buffered
    /// tree) is extracted with the seed of its iteration, so the same trees give the same examples whoever asks.
    /// </summary>
    /// <param name="treesOf">the stored trees of an iteration (the journal in a campaign, memory in the recipe)</param>
    public static async Task<TrainingSet> CollectAsync(CampaignConfig c, int iteration, Func<int, Task<IReadOnlyList<PreferenceTree>>> treesOf, ITokenizer tokenizer)
    {
        var examples = new List<PreferenceExample>();
        var window = new List<PreferenceTree>();
        var sources = new List<PreferenceTree>();
        var newExamples = 0;
        if (UsesSolutionBuffer(c))
        {
            var all = new List<PreferenceTree>();
            for (var i = 1; i <= iteration; i++)
            {
                var trees = await treesOf(i);
                all.AddRange(trees);
                if (i > iteration - c.Learner.Window) window.AddRange(trees);
            }
            foreach (var task in SolutionBuffer.SolvedByTask(all))
            {
                // solutions-per-task = 0: the newest solved tree's solutions; K: the first K distinct solutions of the
                // task's solved trees, newest first (earlier iterations' solutions add variety to what is imitated).
                var perTask = c.Learner.SolutionsPerTask;
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var tree in perTask == 0 ? task.Take(1) : task)
                {
                    var kept = new List<PreferenceExample>();
                    foreach (var example in Extract([tree], c.Preferences, c.Seed + tree.Iteration, tokenizer))
                        if (perTask == 0 || (seen.Count < perTask && seen.Add(example.Candidates[0].Text))) kept.Add(example);
                    if (kept.Count == 0 && perTask > 0) continue;
                    sources.Add(tree);
                    examples.AddRange(kept);
                    if (tree.Iteration == iteration) newExamples += kept.Count;
                }
            }
        }
        else
            for (var i = Math.Max(1, iteration - c.Learner.Window + 1); i <= iteration; i++)
            {
                var trees = await treesOf(i);
                window.AddRange(trees);
                sources.AddRange(trees);
                var extracted = Extract(trees, c.Preferences, c.Seed + i, tokenizer);
                examples.AddRange(extracted);
                if (i == iteration) newExamples = extracted.Count;
            }
        return new TrainingSet(examples, newExamples, sources, window);
    }

    /// <summary>learner.import: the file's pairs; malformed records are reported through <paramref name="report"/> (or reject the file).</summary>
    public static List<PreferenceExample> Import(LearnerConfig l, Action<string> report)
    {
        if (l.Import.Length == 0) return [];
        var (examples, errors) = PreferenceFormats.Import(File.ReadLines(l.Import), l.ImportFormat, l.Import, l.ImportErrors == "reject");
        foreach (var e in errors) report($"{l.Import}:{e.Line}: skipped: {e.Reason}");
        return examples;
    }

    /// <summary>Where the reference log-probs of this loss and setting come from.</summary>
    public static ReferenceSource ReferenceOf(LearnerConfig l) =>
        Losses.Get(l.Loss).ReferenceFree ? ReferenceSource.None : l.Reference == "behaviour" ? ReferenceSource.Behaviour : ReferenceSource.Model;

    /// <param name="reference">the reference model when <see cref="ReferenceOf"/> is Model (else unused); null with a LoRA
    /// policy: the reference is the policy itself, as it is before training (learner.reference = previous) or its base
    /// without the adapter (initial)</param>
    /// <param name="checkpointDir">where learner.checkpoint-every writes the training state; an existing state there is resumed</param>
    /// <param name="log">receives one line per optimizer step (the step's diagnostics)</param>
    public static (IReadOnlyList<EpochStats> Stats, LearnerDiagnostics Diagnostics) Train(LlamaForCausalLM policy, LlamaForCausalLM? reference,
        IReadOnlyList<PreferenceExample> examples, CampaignConfig c, int iteration, ITokenizer tokenizer, string checkpointDir,
        Action<int, int>? progress = null, Action<string>? log = null)
    {
        var source = ReferenceOf(c.Learner);
        // Advantage examples need the behaviour log-probs as π_old whatever the reference.
        // Stale behaviour log-probs (a step that re-encodes to other tokens) are re-scored with the policy before training.
        var selfReference = reference is null && policy.Lora is not null && source == ReferenceSource.Model;
        var data = PreferenceData.Prepare(examples, tokenizer, source, source == ReferenceSource.Behaviour || selfReference ? policy : reference,
            behaviourModel: policy, referenceWithoutAdapter: selfReference && c.Learner.Reference != "previous");
        var loss = LearnerSettings.Loss(c.Learner);
        var before = LearnerDiagnostics.Score(policy, data);
        var steps = new List<LearnerStepLog>();
        IReadOnlyList<EpochStats> stats = [];
        // learner.held-out-share: whole trees (an example's source) held out for early stopping; its own seed, so the
        // training data's shuffle is the same with or without it.
        var (train, heldOut) = c.Learner.HeldOutShare > 0
            ? Core.Training.HeldOutSlice.Split(data, e => e.Source, c.Learner.HeldOutShare, new Random(c.Seed + iteration + 104729))
            : ([.. data], []);
        if (train.Count == 0) (train, heldOut) = ([.. data], []); // too few trees to hold any out
        HeldOutStopping? stopping = null;
        if (data.Count > 0)
        {
            using var trainer = new PolicyTrainer(policy, LearnerSettings.Trainer(c.Learner, checkpointDir));
            trainer.OnStep = s =>
            {
                steps.Add(LearnerStepLog.Of(s));
                log?.Invoke($"iteration {iteration} step {s.Step}/{s.TotalSteps}: lr {s.LearningRate:G3}, loss {s.Metrics.Loss:F4}, reward accuracy {s.Metrics.RewardAccuracy:F3}, " +
                            $"margin {s.Metrics.RewardMargin:F3}, log-probs {s.Metrics.ChosenLogProb:F2} / {s.Metrics.RejectedLogProb:F2}, " +
                            $"ranking accuracy {s.Metrics.RankingAccuracy:F3} (length-normalised {s.Metrics.RankingAccuracyNormalized:F3})");
            };
            if (c.Learner.CheckpointEvery > 0 && File.Exists(Path.Combine(checkpointDir, TrainerState.FileName))) trainer.Resume(checkpointDir);
            stats = trainer.TrainPreferences(train, c.Learner.Epochs, loss, new Random(c.Seed + iteration), progress, heldOut);
            if ((stopping = trainer.HeldOut) is { } h)
                log?.Invoke($"iteration {iteration}: held-out loss ({h.Examples} examples) {string.Join(" -> ", h.Losses.Select(x => x.ToString("F4")))}; " +
                            (h.KeptEpoch == 0 ? "kept the weights before training" : $"kept epoch {h.KeptEpoch}") + (h.Stopped ? ", stopped early" : ""));
        }
        var after = LearnerDiagnostics.Score(policy, data);
        return (stats, LearnerDiagnostics.Compute(data, before, after, c.Learner.Beta, steps) with { HeldOut = stopping });
    }
}
