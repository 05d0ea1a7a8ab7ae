using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

public sealed record BestFirstOptions(int Expansions = 4, int LookAhead = 8, int MaxExpansions = 8, int DepthLimit = 8,
    double Temperature = 1.0, double LengthPenalty = 1.25, long Seed = 0, int PolicyVersion = 0);

/// <summary>
/// Tree-PLV's best-first search with look-ahead rewards (algorithms.md §5.1): always expand the open node with the
/// highest reward; each new step's reward R is the mean value of N completions played on from it (the success rate
/// when values are 0/1; a terminal step is worth its own value); stop when the best node is a complete chain
/// (terminal or at the depth limit) or after <see cref="BestFirstOptions.MaxExpansions"/> expansions.
/// Node fields: Value = Q = V = R, Visits = completions behind R (1 for a terminal), LookAheadRewards = the rewards of
/// those completions (empty for a terminal).
/// </summary>
public sealed class BestFirstSearch(IEnvironment environment, IStepProposer proposer, INodeEvaluator evaluator, BestFirstOptions options,
    IEnvironmentSteps? steps = null) : ITreeSearch
{
    public string Algorithm => "best-first";

    public async Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default)
    {
        var run = await SearchRun.StartAsync(treeId, task, Algorithm, environment, proposer, evaluator, options.PolicyVersion, steps, cancellationToken);
        var tree = run.Tree;
        var frontier = new List<TreeNode> { tree.Root };
        for (var expansions = 0; expansions < options.MaxExpansions && frontier.Count > 0; expansions++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Highest reward first; ties go to the earlier node.
            var u = frontier.OrderByDescending(n => n.Value).ThenBy(n => n.Index).First();
            if (u.IsTerminal || u.Depth >= options.DepthLimit) break;
            frontier.Remove(u);
            var children = await Expansion.ExpandAsync(run, [(u, options.Expansions, Seeds.Mix(options.Seed, u.Index))],
                options.Temperature, options.LengthPenalty, cancellationToken);
            var open = children.Where(c => !c.IsTerminal).ToList();
            var starts = open.SelectMany(c => Enumerable.Repeat((run.StateOf(c.Index), c.Depth), options.LookAhead)).ToList();
            var (values, tokens) = await run.RolloutAsync(starts, options.DepthLimit, options.Temperature,
                Seeds.Mix(options.Seed, u.Index, 1), cancellationToken);
            for (var i = 0; i < open.Count; i++)
            {
                var mine = Enumerable.Range(i * options.LookAhead, options.LookAhead).ToList();
                // Kept with the node: Tree-PLV's pairs are made on these rewards (TreePlvPairs).
                open[i].LookAheadRewards = [.. mine.Select(j => values[j])];
                open[i].Value = open[i].LookAheadRewards.Average();
                open[i].Visits = options.LookAhead;
                open[i].GeneratedTokens += mine.Sum(j => tokens[j]);
            }
            foreach (var c in children)
            {
                if (c.IsTerminal) c.Visits = 1;
                c.ValueSum = c.Value * c.Visits;
                c.Q = c.V = c.Value;
            }
            frontier.AddRange(children);
        }
        // The root has no reward of its own: it holds the completions behind its children's rewards.
        tree.Root.Visits = tree.Root.Children.Sum(c => tree.Nodes[c].Visits);
        tree.Root.V = tree.Root.Children.Count == 0 ? 0 : tree.Root.Children.Max(c => tree.Nodes[c].Value);
        return run.Finish();
    }
}
