using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

/// <summary>Selection: the score of a child edge (highest wins). Q and visit counts already include virtual loss.</summary>
public interface ISelectionRule
{
    double Score(TreeNode child, double q, int parentVisits, int childVisits);
}

/// <summary>PUCT (MCTS-DPO, CPL): Q + c·p·√max(1,N(s))/(1+N(s,a)).</summary>
public sealed record PuctSelection(double C) : ISelectionRule
{
    public double Score(TreeNode child, double q, int parentVisits, int childVisits) => Mcts.Puct(q, child.Prior, parentVisits, childVisits, C);
}

/// <summary>UCB1 (Agent Q eq. 7): Q + c·√(log N(s) / (1 + N(s,a))).</summary>
public sealed record Ucb1Selection(double C) : ISelectionRule
{
    public double Score(TreeNode child, double q, int parentVisits, int childVisits) =>
        q + C * Math.Sqrt(Math.Log(Math.Max(1, parentVisits)) / (1 + childVisits));
}

/// <summary>
/// Backup: how a finished simulation's path (root first) updates the statistics, and the Q a child starts with
/// before its first visit.
/// </summary>
public interface IBackupRule
{
    double InitialQ(TreeNode parent, TreeNode child);
    void Backup(PreferenceTree tree, IReadOnlyList<TreeNode> path);
}

/// <summary>
/// MCTS-DPO: Q(leaf) = r + V(leaf); going up, V(n) = Σ max(1,N_c)·Q_c / Σ max(1,N_c), N += 1, Q(n) = r(n) + V(n)
/// (not for the path's first node, whose edge is not part of this search). r = Value − parent's Value.
/// </summary>
public sealed class VisitWeightedBackup : IBackupRule
{
    public static readonly VisitWeightedBackup Instance = new();

    /// <summary>As in MCTS-DPO a new child starts at Q = r (V = 0): a winning terminal counts before its first visit.</summary>
    public double InitialQ(TreeNode parent, TreeNode child) => child.Value - parent.Value;

    public void Backup(PreferenceTree tree, IReadOnlyList<TreeNode> path)
    {
        var leaf = path[^1];
        leaf.Visits++;
        leaf.Q = Reward(tree, leaf) + leaf.V;
        for (var i = path.Count - 2; i >= 0; i--)
        {
            var n = path[i];
            n.V = Mcts.VisitWeightedValue(tree, n);
            n.Visits++;
            if (i > 0) n.Q = Reward(tree, n) + n.V;
        }
    }

    /// <summary>r(n) = Value(n) − Value(parent): MCTS-DPO's incremental reward (gotcha G4).</summary>
    static double Reward(PreferenceTree tree, TreeNode n) => n.Parent < 0 ? 0 : n.Value - tree.Nodes[n.Parent].Value;
}

/// <summary>AlphaZero / CPL: every node on the path gets W += leaf value, N += 1, Q = V = W/N. Unvisited: Q = 0.</summary>
public sealed class MeanValueBackup : IBackupRule
{
    public static readonly MeanValueBackup Instance = new();

    public double InitialQ(TreeNode parent, TreeNode child) => 0;

    public void Backup(PreferenceTree tree, IReadOnlyList<TreeNode> path)
    {
        var value = path[^1].Value;
        for (var i = 0; i < path.Count; i++)
        {
            var n = path[i];
            n.Visits++;
            n.ValueSum += value;
            n.Q = n.ValueSum / n.Visits;
            n.V = n.Q;
        }
    }
}

/// <summary>
/// Agent Q (eq. 8 and 10): the empirical value Q̃ = W/N is a running mean of the leaf rewards, and the Q used for
/// selection and preferences mixes it with the critic's ranking value: Q = α·Q̃ + (1−α)·Q̂. Before a visit Q̃ = 0,
/// so the ranking orders the first selections.
/// </summary>
public sealed record AgentQBackup(double Alpha) : IBackupRule
{
    public double InitialQ(TreeNode parent, TreeNode child) => Mix(Alpha, 0, RankValue(child));

    public void Backup(PreferenceTree tree, IReadOnlyList<TreeNode> path)
    {
        MeanValueBackup.Instance.Backup(tree, path); // V = Q̃ = W/N
        foreach (var n in path)
            if (n.Parent >= 0) n.Q = Mix(Alpha, n.V, RankValue(n));
    }

    /// <summary>Q = α·Q̃ + (1−α)·Q̂.</summary>
    public static double Mix(double alpha, double empirical, double rankValue) => alpha * empirical + (1 - alpha) * rankValue;

    /// <summary>Q̂ from a 1-based rank among K siblings: (K − rank)/(K − 1); a lone child is worth 1.</summary>
    public static double RankValue(int rank, int siblings) => siblings <= 1 ? 1 : (double)(siblings - rank) / (siblings - 1);

    static double RankValue(TreeNode n) => n.CriticScores.GetValueOrDefault(RankScoreName);

    /// <summary>The critic-score key that holds Q̂.</summary>
    public const string RankScoreName = "rank-value";
}

/// <summary>A new child of one expansion, as the value rule sees it.</summary>
public sealed record ChildScore(TreeNode Node, double Critic, double? SelfEvaluation);

/// <summary>Value: sets the absolute Value (and critic fields) of the children of one expansion.</summary>
public interface IValueRule
{
    /// <summary>Whether the rule needs a self-evaluation score per child (a second critic).</summary>
    bool UsesSelfEvaluation { get; }
    void Assign(TreeNode parent, IReadOnlyList<ChildScore> children);
}

/// <summary>The critic's score is the value (terminal: the verified reward).</summary>
public sealed class CriticValue : IValueRule
{
    public static readonly CriticValue Instance = new();
    public bool UsesSelfEvaluation => false;

    public void Assign(TreeNode parent, IReadOnlyList<ChildScore> children)
    {
        foreach (var c in children) c.Node.Value = c.Critic;
    }
}

/// <summary>
/// MCTS-DPO (algorithms.md §1.1): score = C / max(depth(parent) − 3, 1) with C the self-evaluation confidence; a
/// score of 0 inherits the parent's Value; a terminal adds the outcome O = +1 when solved, else −1 (rewards in [0,1]
/// map to O = 2·reward − 1, so a partial reward lies in between).
/// </summary>
public sealed class OutcomeSelfEvaluationValue : IValueRule
{
    public static readonly OutcomeSelfEvaluationValue Instance = new();
    public bool UsesSelfEvaluation => true;

    public void Assign(TreeNode parent, IReadOnlyList<ChildScore> children)
    {
        foreach (var c in children)
        {
            var confidence = c.SelfEvaluation ?? 0;
            c.Node.Value = Score(confidence, parent.Depth, parent.Value, c.Node.IsTerminal ? 2 * c.Critic - 1 : null);
            if (c.SelfEvaluation is { } s) c.Node.CriticScores["self-evaluation"] = s;
        }
    }

    public static double Score(double confidence, int parentDepth, double parentValue, double? outcome)
    {
        var score = confidence / Math.Max(parentDepth - 3, 1);
        if (score == 0) score = parentValue;
        return score + (outcome ?? 0);
    }
}

/// <summary>CPL: terminals are worth +1 when solved (reward ≥ 1) and −1 otherwise; other nodes the critic's (value model's) estimate.</summary>
public sealed class SignedOutcomeValue : IValueRule
{
    public static readonly SignedOutcomeValue Instance = new();
    public bool UsesSelfEvaluation => false;

    public void Assign(TreeNode parent, IReadOnlyList<ChildScore> children)
    {
        foreach (var c in children) c.Node.Value = c.Node.IsTerminal ? (c.Critic >= 1 ? 1 : -1) : c.Critic;
    }
}

/// <summary>
/// Agent Q's AI process supervision: the critic ranks the K proposals of one expansion (by its score, ties by the
/// policy's prior, then proposal order) and the rank maps to Q̂ = (K − rank)/(K − 1). The value is the critic's score.
/// </summary>
public sealed class CriticRankValue : IValueRule
{
    public static readonly CriticRankValue Instance = new();
    public bool UsesSelfEvaluation => false;

    public void Assign(TreeNode parent, IReadOnlyList<ChildScore> children)
    {
        var ranked = children.Select((c, i) => (c, i)).OrderByDescending(x => x.c.Critic).ThenByDescending(x => x.c.Node.Prior).ThenBy(x => x.i).ToList();
        for (var r = 0; r < ranked.Count; r++)
        {
            var node = ranked[r].c.Node;
            node.Value = ranked[r].c.Critic;
            node.CriticRank = r + 1;
            node.CriticScores[AgentQBackup.RankScoreName] = AgentQBackup.RankValue(r + 1, ranked.Count);
        }
    }
}
