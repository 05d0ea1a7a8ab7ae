using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

public static class TreeStatistics
{
    /// <summary>A leaf's outcome: its terminal reward, or the critic's value where the search stopped without a terminal.</summary>
    public static double LeafValue(TreeNode leaf) => leaf.IsTerminal ? leaf.TerminalReward ?? 0 : leaf.Value;

    /// <summary>
    /// Tree rollouts (TreeRPO / TreePO, algorithms.md §9): every node's Q = V = the mean of its descendant leaves'
    /// values (a leaf: its own), Visits = the number of those leaves. Used by the searches without a backup of their own
    /// (beam, DFSDT, tree rollouts), so sibling preferences compare the outcomes found below each step. A leaf that
    /// <paramref name="tried"/> rejects (DFSDT: a child the search never reached) counts for nothing: Visits 0, so no
    /// extractor pairs it and its critic estimate is no outcome of its parent.
    /// </summary>
    public static void SetLeafMeans(PreferenceTree tree, Func<TreeNode, bool>? tried = null)
    {
        var sums = new double[tree.Nodes.Count];
        var counts = new int[tree.Nodes.Count];
        // Children always have higher indices than their parent, so one backward pass accumulates every subtree.
        for (var i = tree.Nodes.Count - 1; i >= 0; i--)
        {
            var n = tree.Nodes[i];
            if (n.Children.Count == 0 && (tried is null || tried(n))) { sums[i] = LeafValue(n); counts[i] = 1; }
            if (n.Parent >= 0) { sums[n.Parent] += sums[i]; counts[n.Parent] += counts[i]; }
            n.Visits = counts[i];
            n.ValueSum = sums[i];
            n.Q = n.V = counts[i] == 0 ? 0 : sums[i] / counts[i];
        }
    }

    /// <summary>Children ordered best first by (value, prior), ties in creation order: the order beam and DFSDT try them.</summary>
    public static List<TreeNode> BestFirst(PreferenceTree tree, IEnumerable<int> nodes) =>
        nodes.Select(i => tree.Nodes[i]).OrderByDescending(n => n.Value).ThenByDescending(n => n.Prior).ThenBy(n => n.Index).ToList();
}
