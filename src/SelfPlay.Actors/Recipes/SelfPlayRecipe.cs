using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Learning;
using SelfPlay.Core.Config;
using SelfPlay.Core.Critics;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Training;

namespace SelfPlay.Actors.Recipes;

/// <summary>
/// A campaign in one process and one file, to read top to bottom: the warm-up, then each iteration's
/// search -> preferences -> training -> evaluation, over the same pure pieces the actors orchestrate
/// (<see cref="CampaignTasks"/>, <see cref="SearchAlgorithms"/>, <see cref="PreferenceLearning"/>, <see cref="Evaluation"/>)
/// and with the same settings, seeds and checkpoint folders. What the actors add, and this leaves out: searches
/// in parallel with their inference batched across them, a journal (resume, the persistent replay, `inspect`,
/// `export`), leases and fail-over across a cluster, trained critics, LoRA, summary.json and the dashboard.
/// </summary>
public static class SelfPlayRecipe
{
    /// <param name="Iteration">0 for the warm-up</param>
    /// <param name="Examples">warm-up traces (iteration 0) or preference examples trained on</param>
    public sealed record IterationResult(int Iteration, int Trees, int SolvedTrees, int Examples, double FirstLoss, double LastLoss, EvalResult HeldOut);

    /// <param name="runDir">where the checkpoints go (<c>checkpoints/vN</c>, as in a campaign's run folder)</param>
    /// <param name="log">one line per phase</param>
    public static async Task<IReadOnlyList<IterationResult>> RunAsync(CampaignConfig config, EnvironmentSetup environment, string runDir,
        Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        if (CriticTargets.IsTrained(config.Search.Critic))
            throw new ConfigException($"the in-process recipe does not train critics: search.critic = {config.Search.Critic} needs a campaign (selfplay run)");
        if (LearnerSettings.Lora(config.Learner) is not null)
            throw new ConfigException("the in-process recipe trains the full weights: learner.lora needs a campaign (selfplay run)");
        // The campaign's tokenizer, environment (with the policy's chat template) and first policy.
        var context = new CampaignContext(config, environment, runDir);
        var (setup, tokenizer) = (context.Setup, context.Tokenizer);
        var env = setup.Environment;

        // Warm-up: policy v0 is the initial policy fine-tuned on the environment's reference traces.
        var warmup = Warmup.Train(context.InitialPolicy, config, setup, tokenizer, out var policy);
        using var _ = policy;
        Save(0);
        var results = new List<IterationResult> { new(0, 0, 0, warmup.Traces, warmup.FirstLoss, warmup.LastLoss, await HeldOutAsync()) };
        log?.Invoke($"warm-up: {warmup.Traces} traces, loss {warmup.FirstLoss:F3} -> {warmup.LastLoss:F3}, held-out {results[0].HeldOut.Solved}/{results[0].HeldOut.Total}");

        var replay = new Dictionary<int, IReadOnlyList<PreferenceTree>>(); // every iteration's trees, as the journal keeps them
        for (var iteration = 1; iteration <= config.Iterations.Count; iteration++)
        {
            // 1. Search: one tree per task with policy v(i-1), scored by the critic the settings name.
            var version = iteration - 1;
            var (critic, judge) = LlmSelection.Create(config.Search, config.Environment.Llm, env);
            var trees = new List<PreferenceTree>();
            using (var cache = NewCache())
            {
                var proposer = Proposer(cache);
                foreach (var task in CampaignTasks.Of(config, setup.Train, iteration, config.Iterations.Trees, version))
                {
                    var search = SearchAlgorithms.Create(config.Search, env, proposer, critic, config.Environment.MaxSteps, version, task.Seed, judge: judge);
                    var tree = await search.SearchAsync(task.TreeId, new EnvTask(task.TaskId, task.Input), cancellationToken);
                    (tree.Campaign, tree.Iteration) = (config.Name, iteration);
                    trees.Add(tree);
                }
            }
            replay[iteration] = trees;

            // 2. Preferences: the extractor's examples of the learner's window (or its solution buffer), plus learner.import.
            var set = await PreferenceLearning.CollectAsync(config, iteration, i => Task.FromResult(replay[i]), tokenizer);
            var examples = set.Examples.Concat(PreferenceLearning.Import(config.Learner, message => log?.Invoke(message))).ToList();

            // 3. Training: learner.loss against the reference policy (learner.reference: the previous version or v0), in place.
            using var reference = PreferenceLearning.ReferenceOf(config.Learner) == ReferenceSource.Model
                ? Checkpoint.Load(context.CheckpointDir(config.Learner.Reference == "previous" ? version : 0), config.Model.Device).Model
                : null;
            var (epochs, _) = PreferenceLearning.Train(policy, reference, examples, config, iteration, tokenizer,
                Path.Combine(runDir, "learner", $"iteration-{iteration}"));
            Save(iteration);

            // 4. Evaluation: policy v(i), greedy, on the held-out tasks.
            var result = new IterationResult(iteration, trees.Count, trees.Count(t => t.Solved), examples.Count,
                epochs.FirstOrDefault()?.Loss ?? double.NaN, epochs.LastOrDefault()?.Loss ?? double.NaN, await HeldOutAsync());
            results.Add(result);
            log?.Invoke($"iteration {iteration}: {result.SolvedTrees}/{result.Trees} trees solved, {result.Examples} {config.Preferences.Extractor} examples, " +
                        $"{config.Learner.Loss} loss {result.FirstLoss:F3} -> {result.LastLoss:F3}, held-out {result.HeldOut.Solved}/{result.HeldOut.Total}");
        }
        return results;

        // The policy's proposer (not disposed: that would dispose the policy), with a new prefix cache per policy
        // version: a cache holds one version's keys and values.
        PolicyStepProposer Proposer(PrefixCache? cache) => new(policy, tokenizer, env.StepStop, config.Model.MaxStepTokens, cache);
        PrefixCache? NewCache() => config.Model.PrefixCacheMb > 0 ? new PrefixCache(config.Model.PrefixCacheMb * 1024L * 1024) : null;

        async Task<EvalResult> HeldOutAsync()
        {
            using var cache = NewCache();
            return await Evaluation.GreedyAsync(env, setup.HeldOut, Proposer(cache), config.Environment.MaxSteps, cancellationToken: cancellationToken);
        }

        void Save(int version) => Checkpoint.Save(policy, tokenizer, context.CheckpointDir(version), version, env.Name, baseDirectory: context.CheckpointDir(0));
    }
}
