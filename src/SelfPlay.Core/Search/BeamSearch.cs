using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

public sealed record BeamOptions(int Expansions = 4, int BeamWidth = 2, int DepthLimit = 8, double Temperature = 1.0,
    double LengthPenalty = 1.25, long Seed = 0, int PolicyVersion = 0);

/// <summary>
/// Tree-of-Thoughts BFS (beam search): at every depth, propose k steps from each kept state (one batched call),
/// value every new step with the critic (one call), and keep the b best open states by (value, prior) for the next
/// depth; terminal steps end their branch. Afterwards every node's Q is the mean of its descendant leaves.
/// </summary>
public sealed class BeamSearch(IEnvironment environment, IStepProposer proposer, INodeEvaluator evaluator, BeamOptions options,
    IEnvironmentSteps? steps = null) : ITreeSearch
{
    public string Algorithm => "beam";

    public async Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default)
    {
        var run = await SearchRun.StartAsync(treeId, task, Algorithm, environment, proposer, evaluator, options.PolicyVersion, steps, cancellationToken);
        var beam = new List<TreeNode> { run.Tree.Root };
        for (var depth = 0; depth < options.DepthLimit && beam.Count > 0; depth++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var children = await Expansion.ExpandAsync(run, beam.Select(n => (n, options.Expansions, Seeds.Mix(options.Seed, n.Index))).ToList(),
                options.Temperature, options.LengthPenalty, cancellationToken);
            beam = TreeStatistics.BestFirst(run.Tree, children.Where(c => !c.IsTerminal).Select(c => c.Index)).Take(options.BeamWidth).ToList();
        }
        TreeStatistics.SetLeafMeans(run.Tree);
        return run.Finish();
    }
}
