using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

public sealed record DfsdtOptions(int Expansions = 4, int MaxExpansions = 16, int DepthLimit = 8, double Temperature = 1.0,
    double LengthPenalty = 1.25, long Seed = 0, int PolicyVersion = 0);

/// <summary>
/// DFSDT, ToolBench's depth-first search decision tree (algorithms.md §10.2): expand a node with k proposals, try its
/// children best first by (critic value, prior), go down the first open one, and backtrack to the next sibling when a
/// branch fails (a terminal below full reward, the depth limit, a dead end); stop at the first terminal with full
/// reward or after <see cref="DfsdtOptions.MaxExpansions"/> expansions. Deviation: ToolBench asks the model for one
/// new child at a time (with the failed siblings in the prompt); here the k children of a node are proposed together.
/// Afterwards every node's Q is the mean of its descendant leaves that the search tried; a child it never reached
/// (after a solved or budget-ending sibling) has Visits 0, so no extractor pairs it.
/// </summary>
public sealed class DfsdtSearch(IEnvironment environment, IStepProposer proposer, INodeEvaluator evaluator, DfsdtOptions options,
    IEnvironmentSteps? steps = null) : ITreeSearch
{
    public string Algorithm => "dfsdt";

    public async Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default)
    {
        var run = await SearchRun.StartAsync(treeId, task, Algorithm, environment, proposer, evaluator, options.PolicyVersion, steps, cancellationToken);
        var expansions = 0;
        var tried = new HashSet<int> { 0 };

        async Task<bool> SolveAsync(TreeNode node)
        {
            if (expansions >= options.MaxExpansions) return false;
            cancellationToken.ThrowIfCancellationRequested();
            expansions++;
            var children = await Expansion.ExpandAsync(run, [(node, options.Expansions, Seeds.Mix(options.Seed, node.Index))],
                options.Temperature, options.LengthPenalty, cancellationToken);
            foreach (var child in TreeStatistics.BestFirst(run.Tree, children.Select(c => c.Index)))
            {
                tried.Add(child.Index);
                if (child.IsTerminal)
                {
                    if (child.TerminalReward >= 1) return true;
                    continue; // a failed branch: backtrack to the next sibling
                }
                if (child.Depth < options.DepthLimit && await SolveAsync(child)) return true;
            }
            return false;
        }

        await SolveAsync(run.Tree.Root);
        // A terminal child was verified when it was made: an outcome even if the search did not reach it.
        TreeStatistics.SetLeafMeans(run.Tree, n => n.IsTerminal || tried.Contains(n.Index));
        return run.Finish();
    }
}
