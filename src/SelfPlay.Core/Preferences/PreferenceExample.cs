using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Preferences;

/// <summary>What a training example is: a pair (best first), a ranked list (best first), one completion with an
/// advantage, one verified completion to imitate (a demonstration, for sft), or the children of one expanded node
/// with their visit shares as the target distribution (most visited first, for policy-ce).</summary>
public enum ExampleKind { Pair, List, Advantage, Demonstration, Distribution }

/// <summary>
/// One step of a completion: the exact text it added, the tokens the policy generated for it (empty for imported
/// text: then the whole text is the policy's) and their behaviour log-probs at generation time (empty if unknown).
/// </summary>
public sealed record CompletionStep(string Text, int[] TokenIds, float[] LogProbs)
{
    public static CompletionStep Of(TreeNode node) => new(node.StepText, node.TokenIds, node.LogProbs);

    /// <summary>A node's steps: one for a step node, one per <see cref="TreeNode.Spans"/> entry for a whole-response node.</summary>
    public static IReadOnlyList<CompletionStep> Split(TreeNode node)
    {
        if (node.Spans.Count == 0) return [Of(node)];
        var steps = new List<CompletionStep>(node.Spans.Count);
        int at = 0, token = 0;
        foreach (var span in node.Spans)
        {
            var logProbs = node.LogProbs.Length == node.TokenIds.Length ? node.LogProbs[token..(token + span.Tokens)] : [];
            steps.Add(new CompletionStep(node.StepText.Substring(at, span.Characters), node.TokenIds[token..(token + span.Tokens)], logProbs));
            at += span.Characters;
            token += span.Tokens;
        }
        if (at != node.StepText.Length || token != node.TokenIds.Length)
            throw new InvalidDataException($"node {node.Index}: its spans cover {at} of {node.StepText.Length} characters and {token} of {node.TokenIds.Length} tokens");
        return steps;
    }
    public static CompletionStep FromText(string text) => new(text, [], []);
}

/// <summary>A candidate continuation of a prompt (one or more steps) with its preference score (Q, success rate, reward or advantage).</summary>
public sealed record Candidate(IReadOnlyList<CompletionStep> Steps, double Score, int Visits = 0)
{
    public string Text => string.Concat(Steps.Select(s => s.Text));
}

/// <summary>
/// A training example built by an extractor (or imported): a prompt and its candidates, best first.
/// <see cref="LabelSmoothing"/> is a per-example ε (MCTS-DPO's visit-count confidence).
/// </summary>
public sealed record PreferenceExample(ExampleKind Kind, string Source, string Prompt, IReadOnlyList<Candidate> Candidates, double LabelSmoothing = 0)
{
    public static PreferenceExample Pair(string source, string prompt, Candidate chosen, Candidate rejected, double labelSmoothing = 0) =>
        new(ExampleKind.Pair, source, prompt, [chosen, rejected], labelSmoothing);
}

/// <summary>Small read-only helpers over a tree that extractors share.</summary>
public static class TreePaths
{
    /// <summary>Children that were visited and carry generated tokens (an unvisited child's Q says nothing).</summary>
    public static List<TreeNode> VisitedChildren(PreferenceTree tree, TreeNode node) =>
        node.Children.Select(c => tree.Nodes[c]).Where(c => c.Visits > 0 && c.TokenIds.Length > 0).ToList();

    /// <summary>The node's step followed by the most-visited descendants (ties: higher Q, then creation order) down to a leaf.</summary>
    public static List<TreeNode> Continuation(PreferenceTree tree, TreeNode node, bool singleChildOnly = false)
    {
        var path = new List<TreeNode> { node };
        while (path[^1].Children.Count > 0)
        {
            var children = path[^1].Children.Select(c => tree.Nodes[c]).ToList();
            if (singleChildOnly && children.Count != 1) break;
            var next = children.OrderByDescending(c => c.Visits).ThenByDescending(c => c.Q).ThenBy(c => c.Index).First();
            if (next.TokenIds.Length == 0 && next.StepText.Length == 0) break;
            path.Add(next);
        }
        return path;
    }

    /// <summary>Root-exclusive path root→node.</summary>
    public static List<TreeNode> PathTo(PreferenceTree tree, int index)
    {
        var path = new List<TreeNode>();
        for (var n = index; n > 0; n = tree.Nodes[n].Parent) path.Add(tree.Nodes[n]);
        path.Reverse();
        return path;
    }

    public static Candidate ToCandidate(IEnumerable<TreeNode> steps, double score, int visits) =>
        new(steps.Select(CompletionStep.Of).ToList(), score, visits);

    /// <summary>Terminal nodes with a reward (the leaves of the tree-rollout methods).</summary>
    public static IEnumerable<TreeNode> RewardedLeaves(PreferenceTree tree) =>
        tree.Nodes.Where(n => n.IsTerminal && n.TerminalReward is not null);

    /// <summary>Mean terminal reward of every node's rewarded descendant leaves (null where it has none).</summary>
    public static double?[] MeanLeafRewards(PreferenceTree tree)
    {
        var sum = new double[tree.Nodes.Count];
        var count = new int[tree.Nodes.Count];
        foreach (var leaf in RewardedLeaves(tree))
            for (var n = leaf.Index; n >= 0; n = tree.Nodes[n].Parent)
            {
                sum[n] += leaf.TerminalReward!.Value;
                count[n]++;
            }
        return [.. Enumerable.Range(0, sum.Length).Select(i => count[i] > 0 ? sum[i] / count[i] : (double?)null)];
    }
}
