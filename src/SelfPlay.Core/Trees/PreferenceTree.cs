namespace SelfPlay.Core.Trees;

/// <summary>
/// One search node. Index = creation order in <see cref="PreferenceTree.Nodes"/> (node 0 is the root), as in mctx.
/// Mutable because searches update statistics in place; persisted as a whole with the tree.
/// </summary>
public sealed class TreeNode
{
    public int Index { get; set; }
    public int Parent { get; set; } = -1;
    public int Depth { get; set; }
    public List<int> Children { get; set; } = [];

    /// <summary>What the policy proposed (for Game of 24 in operation mode: "4 * 5").</summary>
    public string Action { get; set; } = "";
    /// <summary>Exact text this step added to the state (proposal plus environment output).</summary>
    public string StepText { get; set; } = "";
    /// <summary>Token ids the policy generated for this step, stop sequence included.</summary>
    public int[] TokenIds { get; set; } = [];
    /// <summary>Per-token log-probs of <see cref="TokenIds"/> under the generating policy.</summary>
    public float[] LogProbs { get; set; } = [];
    /// <summary>PUCT prior p(a|s).</summary>
    public double Prior { get; set; }

    public int Visits { get; set; }
    /// <summary>Sum of backed-up values (AlphaZero W); Q = W/N is one backup rule, visit-weighted V another.</summary>
    public double ValueSum { get; set; }
    /// <summary>Action value of the edge into this node.</summary>
    public double Q { get; set; }
    /// <summary>State value of this node.</summary>
    public double V { get; set; }
    /// <summary>Absolute evaluation of the node (terminal reward, critic score); r = Value - parent's Value.</summary>
    public double Value { get; set; }

    public bool IsTerminal { get; set; }
    public double? TerminalReward { get; set; }
    public string? TerminalReason { get; set; }
    /// <summary>Critic scores by critic name.</summary>
    public Dictionary<string, double> CriticScores { get; set; } = [];

    // Provenance.
    public int PolicyVersion { get; set; }
    public string Critic { get; set; } = "";
    public double CreatedAtMs { get; set; }
    /// <summary>Wall milliseconds of the model and critic calls that produced this node (its share of one batched expansion).</summary>
    public double WallMs { get; set; }
    /// <summary>Tokens the policy generated for this node: its own step plus any look-ahead rollouts or refinements behind its value.</summary>
    public int GeneratedTokens { get; set; }

    // Algorithm-specific fields (zero / null where an algorithm does not use them).
    /// <summary>Agent Q: 1-based rank of this step among its siblings by the critic (Q̂ = (K − rank)/(K − 1)).</summary>
    public int CriticRank { get; set; }
    /// <summary>MCTS with commit-and-reuse: the node lies on the committed root-to-leaf path.</summary>
    public bool Committed { get; set; }
    /// <summary>SPaR: the judge's majority critique of this response.</summary>
    public string? Critique { get; set; }
    /// <summary>
    /// Whole-response nodes (SPaR): how <see cref="StepText"/>, <see cref="TokenIds"/> and <see cref="LogProbs"/> split
    /// into the response's steps, in order (empty: the node is one step). A span without tokens is text kept from the
    /// response it refines, which the learner scores as text.
    /// </summary>
    public List<StepSpan> Spans { get; set; } = [];
    /// <summary>Tree-PLV: the rewards of the look-ahead completions played on from this step (its Value is their mean).</summary>
    public double[] LookAheadRewards { get; set; } = [];
}

/// <summary>One step of a whole-response node: its characters of the node's text and its tokens of the node's token ids.</summary>
public sealed record StepSpan(int Characters, int Tokens);

/// <summary>Where a search's wall time went: the model (proposals), the critic, the environment, and the rest (bookkeeping).</summary>
public sealed class SearchStats
{
    public double WallMs { get; set; }
    public double ProposerMs { get; set; }
    public double EvaluatorMs { get; set; }
    public double EnvironmentMs { get; set; }
    public int ProposerCalls { get; set; }
    public int EvaluatorCalls { get; set; }
    public int GeneratedTokens { get; set; }

    /// <summary>Wall time spent outside the model, the critic and the environment.</summary>
    public double OverheadMs => Math.Max(0, WallMs - ProposerMs - EvaluatorMs - EnvironmentMs);
}

/// <summary>
/// The one tree model every search produces and every preference extractor and exporter reads.
/// </summary>
public sealed class PreferenceTree
{
    public string TreeId { get; set; } = "";
    public string Campaign { get; set; } = "";
    public int Iteration { get; set; }
    public string TaskId { get; set; } = "";
    public string TaskInput { get; set; } = "";
    public string Environment { get; set; } = "";
    public string Algorithm { get; set; } = "";
    public int PolicyVersion { get; set; }
    /// <summary>Critic (evaluator) that scored the nodes.</summary>
    public string Critic { get; set; } = "";
    public DateTime CreatedAtUtc { get; set; }
    public SearchStats Stats { get; set; } = new();
    public List<TreeNode> Nodes { get; set; } = [];

    public TreeNode Root => Nodes[0];

    /// <summary>Deterministic id, so a re-run of the same task replaces its tree instead of adding a second one.</summary>
    public static string MakeId(string campaign, int iteration, string taskId, int attempt = 0) =>
        $"{campaign}/{iteration}/{taskId}/{attempt}";

    public static PreferenceTree Create(string treeId, string rootState) =>
        new() { TreeId = treeId, Nodes = [new TreeNode { Index = 0, StepText = rootState }] };

    public TreeNode AddChild(int parent, TreeNode child)
    {
        child.Index = Nodes.Count;
        child.Parent = parent;
        child.Depth = Nodes[parent].Depth + 1;
        Nodes.Add(child);
        Nodes[parent].Children.Add(child.Index);
        return child;
    }

    /// <summary>Full text state at a node: the root state followed by every step on the path.</summary>
    public string StateAt(int index)
    {
        var parts = new List<string>();
        for (var n = index; n >= 0; n = Nodes[n].Parent) parts.Add(Nodes[n].StepText);
        parts.Reverse();
        return string.Concat(parts);
    }

    /// <summary>Whether some terminal node reached the full reward.</summary>
    public bool Solved => Nodes.Any(n => n.IsTerminal && n.TerminalReward >= 1.0);
}
