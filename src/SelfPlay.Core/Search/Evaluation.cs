using SelfPlay.Core.Environments;

namespace SelfPlay.Core.Search;

/// <param name="EnvironmentErrors">episodes the environment could not play (it could not start the task, or a step or
/// verification call found no environment): counted unsolved; <paramref name="FirstError"/> says why</param>
public sealed record EvalResult(int Solved, int Total, int EnvironmentErrors = 0, string? FirstError = null)
{
    public double Rate => Total == 0 ? 0 : (double)Solved / Total;
}

public static class Evaluation
{
    /// <summary>
    /// Greedy (temperature 0) episodes for all tasks in lockstep: each round asks the proposer for one step of
    /// every unfinished episode in a single batched call, and applies the steps through <paramref name="steps"/>
    /// (default: <paramref name="environment"/> in this process; environment actors in a campaign), one call per
    /// episode, all at once. Solved = the final step's reward is 1 and the final state verifies with reward 1.
    /// A task whose environment cannot even start it counts as failed (and as an environment error); the others are still evaluated.
    /// <paramref name="onEpisode"/> sees every started episode once, when it ends (or runs out of steps, unsolved).
    /// </summary>
    public static async Task<EvalResult> GreedyAsync(IEnvironment environment, IReadOnlyList<EnvTask> tasks, IStepProposer proposer,
        int maxSteps, int batchSize = 256, Action<EnvTask, string, bool>? onEpisode = null, CancellationToken cancellationToken = default,
        IEnvironmentSteps? steps = null)
    {
        steps ??= new InlineEnvironmentSteps(environment);
        var errors = new string?[tasks.Count];
        var states = await Task.WhenAll(tasks.Select(async (task, i) =>
        {
            try { return await steps.InitialStateAsync(task, cancellationToken); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                errors[i] = e.Message.ReplaceLineEndings(" ");
                return null;
            }
        }));
        var finished = states.Select(s => s is null).ToArray();
        var solved = 0;
        for (var step = 0; step < maxSteps; step++)
        {
            var active = Enumerable.Range(0, tasks.Count).Where(i => !finished[i]).ToList();
            if (active.Count == 0) break;
            foreach (var chunk in active.Chunk(batchSize))
            {
                var proposals = await proposer.ProposeAsync(
                    chunk.Select(i => new ProposalRequest(states[i]!, 1, 0, 0)).ToList(), cancellationToken);
                var outcomes = await Task.WhenAll(chunk.Select((i, j) =>
                    StepOrFail(steps, tasks[i], new EnvStep(states[i]!, proposals[j].Count > 0 ? proposals[j][0].Action : ""), errors, i, cancellationToken)));
                var ended = new List<int>();
                for (var j = 0; j < chunk.Length; j++)
                {
                    var i = chunk[j];
                    states[i] += outcomes[j].Appended;
                    if (!outcomes[j].IsTerminal) continue;
                    finished[i] = true;
                    ended.Add(j);
                }
                var verified = await Task.WhenAll(ended.Select(j => VerifyOrFail(steps, tasks[chunk[j]], states[chunk[j]]!, errors, chunk[j], cancellationToken)));
                for (var k = 0; k < ended.Count; k++)
                {
                    var i = chunk[ended[k]];
                    var ok = outcomes[ended[k]].Reward >= 1 && verified[k] >= 1;
                    if (ok) solved++;
                    onEpisode?.Invoke(tasks[i], states[i]!, ok);
                }
            }
        }
        // Episodes still open after maxSteps end unsolved; they are reported too, so a record of the episodes is complete.
        for (var i = 0; i < tasks.Count; i++)
            if (!finished[i]) onEpisode?.Invoke(tasks[i], states[i]!, false);
        return new EvalResult(solved, tasks.Count, errors.Count(e => e is not null), errors.FirstOrDefault(e => e is not null));
    }

    /// <summary>An episode whose environment cannot be reached (an environment node lost) ends unsolved; the others go on.</summary>
    static async Task<StepOutcome> StepOrFail(IEnvironmentSteps steps, EnvTask task, EnvStep step, string?[] errors, int episode, CancellationToken ct)
    {
        try { return (await steps.StepAsync(task, [step], ct))[0]; }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            errors[episode] = e.Message.ReplaceLineEndings(" ");
            return StepOutcome.End("\n", 0, "environment error: " + errors[episode]);
        }
    }

    static async Task<double> VerifyOrFail(IEnvironmentSteps steps, EnvTask task, string finalState, string?[] errors, int episode, CancellationToken ct)
    {
        try { return (await steps.VerifyAsync(task, [finalState], ct))[0].Reward; }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            errors[episode] = e.Message.ReplaceLineEndings(" ");
            return 0;
        }
    }

    /// <summary>
    /// Search-based evaluation: a task counts as solved when its search tree holds a verified solution.
    /// <paramref name="searchFor"/> builds each task's search (<see cref="SearchAlgorithms.Create"/>, seeded by the task).
    /// </summary>
    public static async Task<EvalResult> SearchAsync(IReadOnlyList<EnvTask> tasks, Func<EnvTask, ITreeSearch> searchFor, int parallel = 8,
        CancellationToken cancellationToken = default)
    {
        var solved = 0;
        await Parallel.ForEachAsync(tasks, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = cancellationToken },
            async (task, ct) =>
            {
                var tree = await searchFor(task).SearchAsync("eval/" + task.Id, task, ct);
                if (tree.Solved) Interlocked.Increment(ref solved);
            });
        return new EvalResult(solved, tasks.Count);
    }
}
