using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Preferences;

/// <summary>
/// A step-level preference: two actions continuing the same state. Token ids are the policy's own generated
/// tokens, so log-probs are taken over exactly what was sampled. Visit counts are kept for confidence weighting.
/// </summary>
public sealed record StepPair(
    string TreeId, int ParentIndex, string Prompt,
    string ChosenAction, int[] ChosenTokenIds, double ChosenQ, int ChosenVisits,
    string RejectedAction, int[] RejectedTokenIds, double RejectedQ, int RejectedVisits,
    int ChosenIndex = -1, int RejectedIndex = -1);

/// <summary>Sibling pairs at every branching node: highest-Q child vs lowest-Q child among visited children.</summary>
public static class SiblingPairs
{
    public static IReadOnlyList<StepPair> Extract(PreferenceTree tree, double minQGap = 1e-9)
    {
        var pairs = new List<StepPair>();
        foreach (var node in tree.Nodes)
        {
            var visited = TreePaths.VisitedChildren(tree, node);
            if (visited.Count < 2) continue;
            var best = Best(visited);
            var worst = Worst(visited);
            if (best.Q - worst.Q < minQGap) continue;
            pairs.Add(new StepPair(tree.TreeId, node.Index, tree.StateAt(node.Index),
                best.Action, best.TokenIds, best.Q, best.Visits,
                worst.Action, worst.TokenIds, worst.Q, worst.Visits, best.Index, worst.Index));
        }
        return pairs;
    }

    // Ties: prefer more visits for the chosen, fewer for the rejected, then creation order.
    public static TreeNode Best(IEnumerable<TreeNode> children) =>
        children.OrderByDescending(c => c.Q).ThenByDescending(c => c.Visits).ThenBy(c => c.Index).First();

    public static TreeNode Worst(IEnumerable<TreeNode> children) =>
        children.OrderBy(c => c.Q).ThenBy(c => c.Visits).ThenBy(c => c.Index).First();

    /// <summary>MCTS-DPO's conservative label smoothing: ε = min(1 − N_w/(N_w+N_l), 0.5).</summary>
    public static double VisitLabelSmoothing(int chosenVisits, int rejectedVisits)
    {
        var confidence = 1.0 / (1.0 + rejectedVisits / (double)Math.Max(1, chosenVisits));
        return Math.Min(1 - confidence, 0.5);
    }
}
