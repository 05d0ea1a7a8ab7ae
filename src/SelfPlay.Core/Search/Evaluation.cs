using SelfPlay.Core.Environments;

namespace SelfPlay.Core.Search;

public sealed record EvalResult(int Solved, int Total)
{
    public double Rate => Total == 0 ? 0 : (double)Solved / Total;
}

public static class Evaluation
{
    /// <summary>
    /// Greedy (temperature 0) episodes for all tasks in lockstep: each round asks the proposer for one step of
    /// every unfinished episode in a single batched call. Solved = the final state verifies with reward 1.
    /// </summary>
    public static async Task<EvalResult> GreedyAsync(IEnvironment environment, IReadOnlyList<EnvTask> tasks, IStepProposer proposer,
        int maxSteps, int batchSize = 256, Action<EnvTask, string, bool>? onEpisode = null, CancellationToken cancellationToken = default)
    {
        var states = new string[tasks.Count];
        var finished = new bool[tasks.Count];
        for (var i = 0; i < tasks.Count; i++)
        {
            // A task whose environment cannot even start it counts as failed; the others are still evaluated.
            try { states[i] = environment.InitialState(tasks[i]); }
            catch (Exception) { (states[i], finished[i]) = ("", true); }
        }
        var solved = 0;
        for (var step = 0; step < maxSteps; step++)
        {
            var active = Enumerable.Range(0, tasks.Count).Where(i => !finished[i]).ToList();
            if (active.Count == 0) break;
            foreach (var chunk in active.Chunk(batchSize))
            {
                var proposals = await proposer.ProposeAsync(
                    chunk.Select(i => new ProposalRequest(states[i], 1, 0, 0)).ToList(), cancellationToken);
                for (var j = 0; j < chunk.Length; j++)
                {
                    var i = chunk[j];
                    var action = proposals[j].Count > 0 ? proposals[j][0].Action : "";
                    StepOutcome outcome;
                    try { outcome = environment.Step(tasks[i], states[i], action); }
                    catch (Exception e) { outcome = StepOutcome.End("\n", 0, "environment error: " + e.Message); }
                    states[i] += outcome.Appended;
                    if (!outcome.IsTerminal) continue;
                    finished[i] = true;
                    var ok = outcome.Reward >= 1 && environment.Verify(tasks[i], states[i]).Reward >= 1;
                    if (ok) solved++;
                    onEpisode?.Invoke(tasks[i], states[i], ok);
                }
            }
        }
        return new EvalResult(solved, tasks.Count);
    }

    /// <summary>Search-based evaluation: a task counts as solved when the search tree holds a verified solution.</summary>
    public static async Task<EvalResult> SearchAsync(IEnvironment environment, IReadOnlyList<EnvTask> tasks, IStepProposer proposer,
        INodeEvaluator evaluator, MctsOptions options, int parallel = 8, CancellationToken cancellationToken = default)
    {
        var solved = 0;
        await Parallel.ForEachAsync(tasks, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = cancellationToken },
            async (task, ct) =>
            {
                var tree = await new Mcts(environment, proposer, evaluator, options with { Seed = Seeds.Mix(options.Seed, Seeds.Of(task.Id)) })
                    .SearchAsync("eval/" + task.Id, task, ct);
                if (tree.Solved) Interlocked.Increment(ref solved);
            });
        return new EvalResult(solved, tasks.Count);
    }
}
