using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

/// <summary>
/// <see cref="BranchDepths"/>: the depths (steps already taken) at which every path forks into
/// <see cref="BranchFactor"/> children (BranchGRPO's split points); <see cref="BranchEvery"/> &gt; 0 instead forks every
/// that many steps (TreePO's fixed segment length, in steps). Elsewhere a path continues with one sampled step.
/// </summary>
public sealed record TreeRolloutOptions(int BranchFactor = 2, IReadOnlyList<int>? BranchDepths = null, int BranchEvery = 0, int MaxWidth = 16,
    int DepthLimit = 8, double Temperature = 1.0, double LengthPenalty = 1.25, long Seed = 0, int PolicyVersion = 0)
{
    public bool BranchesAt(int depth) => BranchEvery > 0 ? depth % BranchEvery == 0 : (BranchDepths ?? [0]).Contains(depth);
}

/// <summary>
/// Tree-structured rollouts for group-relative RL (TreeRPO / TreePO, algorithms.md §9): all paths advance together
/// (one batched proposer call per depth), forking at the branch points while the width stays within
/// <see cref="TreeRolloutOptions.MaxWidth"/>, so the leaves share their prefixes; leaves are scored by the critic and
/// every node's reward (Q = V) is the mean of its descendant leaves, Visits their number.
/// </summary>
public sealed class TreeRolloutSearch(IEnvironment environment, IStepProposer proposer, INodeEvaluator evaluator, TreeRolloutOptions options,
    IEnvironmentSteps? steps = null) : ITreeSearch
{
    public string Algorithm => "tree-rollout";

    public async Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default)
    {
        var run = await SearchRun.StartAsync(treeId, task, Algorithm, environment, proposer, evaluator, options.PolicyVersion, steps, cancellationToken);
        var open = new List<TreeNode> { run.Tree.Root };
        for (var depth = 0; depth < options.DepthLimit && open.Count > 0; depth++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var width = open.Count;
            var requests = new List<(TreeNode, int, long)>();
            foreach (var node in open)
            {
                // Fork while the extra paths still fit the width (earlier paths first).
                var count = 1;
                if (options.BranchesAt(depth) && width + options.BranchFactor - 1 <= options.MaxWidth)
                {
                    count = options.BranchFactor;
                    width += options.BranchFactor - 1;
                }
                requests.Add((node, count, Seeds.Mix(options.Seed, node.Index)));
            }
            var children = await Expansion.ExpandAsync(run, requests, options.Temperature, options.LengthPenalty, cancellationToken);
            open = children.Where(c => !c.IsTerminal).ToList();
        }
        TreeStatistics.SetLeafMeans(run.Tree);
        return run.Finish();
    }
}
