using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Preferences;

/// <summary>
/// Tree-rollout advantages (algorithms.md §9). A node's reward is the mean terminal reward of its descendant
/// leaves. Each example is one completion with its advantage as the score, trained with the PPO-clip surrogate.
/// </summary>
public static class TreeAdvantages
{
    internal static PreferenceExample Edge(PreferenceTree tree, TreeNode node, double advantage) =>
        new(ExampleKind.Advantage, tree.TreeId, tree.StateAt(node.Parent), [Extractors.Step(node, advantage)]);

    /// <summary>z-scores with the unbiased std; fewer than two values or std &lt; 1e-6 give zeros (BranchGRPO).</summary>
    public static double[] ZScores(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return new double[values.Count];
        var mean = values.Average();
        var std = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return std < 1e-6 ? new double[values.Count] : [.. values.Select(v => (v - mean) / (std + 1e-8))];
    }
}

/// <summary>TreeRPO: per sibling group (≥2 children with rewarded leaves), A = r − mean(siblings), optionally / std.</summary>
public sealed class SiblingAdvantages : IPreferenceExtractor
{
    public string Name => "treerpo";
    public ExampleKind Kind => ExampleKind.Advantage;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var reward = TreePaths.MeanLeafRewards(tree);
        var examples = new List<PreferenceExample>();
        foreach (var node in tree.Nodes)
        {
            var group = node.Children.Select(c => tree.Nodes[c]).Where(c => reward[c.Index] is not null && c.TokenIds.Length > 0).ToList();
            if (group.Count < 2) continue;
            var values = group.Select(c => reward[c.Index]!.Value).ToList();
            var advantages = options.AdvantageStd ? TreeAdvantages.ZScores(values) : [.. values.Select(v => v - values.Average())];
            examples.AddRange(group.Select((c, i) => TreeAdvantages.Edge(tree, c, advantages[i])));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>BranchGRPO: within one tree, z-score the node rewards of each depth; every edge gets its child's advantage.</summary>
public sealed class DepthAdvantages : IPreferenceExtractor
{
    public string Name => "branchgrpo";
    public ExampleKind Kind => ExampleKind.Advantage;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var reward = TreePaths.MeanLeafRewards(tree);
        var examples = new List<PreferenceExample>();
        foreach (var depth in tree.Nodes.Where(n => n.Index > 0 && reward[n.Index] is not null).GroupBy(n => n.Depth).OrderBy(g => g.Key))
        {
            var nodes = depth.ToList();
            var z = TreeAdvantages.ZScores(nodes.Select(n => reward[n.Index]!.Value).ToList());
            examples.AddRange(nodes.Select((n, i) => (n, i)).Where(x => x.n.TokenIds.Length > 0).Select(x => TreeAdvantages.Edge(tree, x.n, z[x.i])));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>
/// TreePO: per rewarded leaf, Â_j = R − mean(leaves sharing its ancestor at depth j) for the root group and every
/// deeper group of more than one leaf, mixed by "average" or "group-size"; the whole dataset is then whitened.
/// Each example is the full root→leaf response.
/// </summary>
public sealed class AncestorAdvantages : IPreferenceExtractor
{
    public string Name => "treepo";
    public ExampleKind Kind => ExampleKind.Advantage;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        if (options.TreePoWeighting is not ("average" or "group-size"))
            throw new ArgumentException($"treepo weighting must be average or group-size, got '{options.TreePoWeighting}'");
        var leaves = TreePaths.RewardedLeaves(tree).ToList();
        var paths = leaves.ToDictionary(l => l.Index, l => TreePaths.PathTo(tree, l.Index));
        var examples = new List<PreferenceExample>();
        foreach (var leaf in leaves)
        {
            var path = paths[leaf.Index];
            double weighted = 0, weights = 0;
            for (var j = 0; j < path.Count; j++)
            {
                // G_j: leaves whose path passes the same node at depth j (j = 0: the root, all leaves).
                var group = j == 0 ? leaves : leaves.Where(l => paths[l.Index].Count > j - 1 && paths[l.Index][j - 1] == path[j - 1]).ToList();
                if (j > 0 && group.Count < 2) continue;
                var advantage = leaf.TerminalReward!.Value - group.Average(l => l.TerminalReward!.Value);
                var w = options.TreePoWeighting == "average" ? 1.0 : group.Count;
                weighted += w * advantage;
                weights += w;
            }
            examples.Add(new PreferenceExample(ExampleKind.Advantage, tree.TreeId, tree.Root.StepText,
                [TreePaths.ToCandidate(path, weighted / weights, leaf.Visits)]));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }

    /// <summary>Global whitening (biased std, as token-level whitening over many tokens): A = (Â − mean) / std.</summary>
    public static List<PreferenceExample> Whiten(List<PreferenceExample> examples)
    {
        if (examples.Count < 2) return examples;
        var values = examples.Select(e => e.Candidates[0].Score).ToList();
        var mean = values.Average();
        var std = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count);
        return examples.Select(e => e with { Candidates = [e.Candidates[0] with { Score = std > 1e-8 ? (e.Candidates[0].Score - mean) / std : e.Candidates[0].Score - mean }] }).ToList();
    }
}
