using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

/// <summary>
/// MCTS settings. <see cref="Selection"/>, <see cref="BackupStrategy"/> and <see cref="Value"/> are the swappable
/// strategies; null means PUCT with c = 1, MCTS-DPO's visit-weighted backup, and the critic's score.
/// </summary>
public sealed record MctsOptions(
    int Simulations = 24,
    int Expansions = 4,
    double LengthPenalty = 1.25,
    int DepthLimit = 8,
    double Temperature = 1.0,
    long Seed = 0,
    int PolicyVersion = 0,
    ISelectionRule? Selection = null,
    IBackupRule? Backup = null,
    IValueRule? Value = null,
    // k at the question root (MCTS-DPO n_init_actions); 0 = Expansions.
    int RootExpansions = 0,
    // Most distinct children kept per expansion; 0 = no limit.
    int BreadthLimit = 0,
    // MCTS-DPO runs 4 × the simulations from the question root.
    int RootSimulationFactor = 1,
    // After the simulations from a root, commit to its most visited child and search again from there (sub-tree kept).
    bool CommitAndReuse = false,
    // Simulations in flight together (their expansions share one batched proposer call), kept apart by virtual loss.
    int ParallelSimulations = 1,
    double VirtualLoss = 1.0)
{
    public ISelectionRule SelectionRule => Selection ?? new PuctSelection(1.0);
    public IBackupRule BackupRule => Backup ?? VisitWeightedBackup.Instance;
    public IValueRule ValueRule => Value ?? CriticValue.Instance;
}

/// <summary>
/// Step-level MCTS (algorithms.md §1, §6, §8) with swappable selection, backup and value rules: expansion by k
/// sampled steps with duplicates merged, "select, then expand-and-descend to a terminal or the depth limit", backup
/// along the path; optionally several simulations in flight under virtual loss (one batched proposer call per
/// round), MCTS-DPO's 4× root budget and commit-and-reuse. Pure and deterministic given the proposer's and critics' answers.
/// </summary>
public sealed class Mcts(IEnvironment environment, IStepProposer proposer, INodeEvaluator evaluator, MctsOptions options,
    INodeEvaluator? selfEvaluator = null, IEnvironmentSteps? steps = null) : ITreeSearch
{
    public string Algorithm => "mcts";

    /// <summary>p(a|s) = exp(Σ log p / |a|^λ).</summary>
    public static double Prior(IReadOnlyList<float> logProbs, double lengthPenalty)
    {
        if (logProbs.Count == 0) return 0;
        double sum = 0;
        for (var i = 0; i < logProbs.Count; i++) sum += logProbs[i];
        return Math.Exp(sum / Math.Pow(logProbs.Count, lengthPenalty));
    }

    /// <summary>
    /// Q + c·p·√N(s)/(1+N(s,a)). N(s) is taken as at least 1, so the children of a node reached for the first time
    /// (expand-and-descend) are chosen by their priors rather than all scoring their bare Q.
    /// </summary>
    public static double Puct(double q, double prior, int parentVisits, int childVisits, double cPuct) =>
        q + cPuct * prior * Math.Sqrt(Math.Max(1, parentVisits)) / (1 + childVisits);

    /// <summary>The child with the highest PUCT score; ties go to the earlier child.</summary>
    public static TreeNode SelectChild(PreferenceTree tree, TreeNode parent, double cPuct) =>
        tree.Nodes[SelectChild(tree, parent, new PuctSelection(cPuct), null, 0, 0)];

    /// <summary>
    /// The child with the highest score under <paramref name="rule"/>; ties go to the earlier child. With virtual
    /// loss, a node with v simulations in flight counts N + v visits and Q − loss·v/(N + v); the parent's own count
    /// leaves out the one simulation that is choosing (<paramref name="ownInFlight"/>).
    /// </summary>
    static int SelectChild(PreferenceTree tree, TreeNode parent, ISelectionRule rule, List<int>? inFlight, double virtualLoss, int ownInFlight)
    {
        var parentVisits = parent.Visits + (inFlight is null ? 0 : Pending(inFlight, parent.Index) - ownInFlight);
        var best = -1;
        var bestScore = double.NegativeInfinity;
        var children = parent.Children;
        for (var i = 0; i < children.Count; i++)
        {
            var child = tree.Nodes[children[i]];
            var pending = inFlight is null ? 0 : Pending(inFlight, child.Index);
            var visits = child.Visits + pending;
            var q = pending == 0 ? child.Q : child.Q - virtualLoss * pending / visits;
            var score = rule.Score(child, q, parentVisits, visits);
            if (score > bestScore) { best = child.Index; bestScore = score; }
        }
        return best >= 0 ? best : throw new InvalidOperationException("node has no children");
    }

    static int Pending(List<int> inFlight, int index) => index < inFlight.Count ? inFlight[index] : 0;

    public async Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default) =>
        await SearchAsync(await SearchRun.StartAsync(treeId, task, Algorithm, environment, proposer, evaluator, options.PolicyVersion, steps, cancellationToken),
            cancellationToken);

    /// <summary>One simulation in flight; reused across waves so the hot loop allocates nothing per simulation.</summary>
    sealed class Simulation
    {
        public int Index;
        public readonly List<TreeNode> Path = [];
        public bool Done;
        public TreeNode Leaf => Path[^1];

        public void Start(int index, TreeNode root)
        {
            Index = index;
            Path.Clear();
            Path.Add(root);
            Done = false;
        }
    }

    async Task<PreferenceTree> SearchAsync(SearchRun run, CancellationToken ct)
    {
        var tree = run.Tree;
        var select = options.SelectionRule;
        var backup = options.BackupRule;
        var inFlight = new List<int>();
        var parallel = Math.Max(1, options.ParallelSimulations);
        var root = tree.Root;
        var simulation = 0;
        var pool = Enumerable.Range(0, parallel).Select(_ => new Simulation()).ToArray();
        var toExpand = new List<(TreeNode Node, int Simulation)>();
        for (var budget = options.Simulations * Math.Max(1, options.RootSimulationFactor); ; budget = options.Simulations)
        {
            for (var done = 0; done < budget;)
            {
                ct.ThrowIfCancellationRequested();
                var count = Math.Min(parallel, budget - done);
                for (var i = 0; i < count; i++) pool[i].Start(simulation + i, root);
                Enter(inFlight, root, count);
                while (true)
                {
                    // Descend every open simulation to a node that needs expanding; its path holds its virtual loss.
                    toExpand.Clear();
                    for (var i = 0; i < count; i++)
                    {
                        var sim = pool[i];
                        if (sim.Done) continue;
                        var node = sim.Leaf;
                        while (!node.IsTerminal && node.Depth < options.DepthLimit && node.Children.Count > 0)
                        {
                            node = tree.Nodes[SelectChild(tree, node, select, parallel > 1 ? inFlight : null, options.VirtualLoss, 1)];
                            sim.Path.Add(node);
                            Enter(inFlight, node, 1);
                        }
                        if (node.IsTerminal || node.Depth >= options.DepthLimit) sim.Done = true;
                        else if (!Contains(toExpand, node)) toExpand.Add((node, sim.Index));
                    }
                    if (toExpand.Count == 0) break;
                    await ExpandAsync(run, toExpand, ct);
                    for (var i = 0; i < count; i++)
                        if (pool[i].Leaf.IsTerminal) pool[i].Done = true; // dead ends
                }
                for (var i = 0; i < count; i++)
                {
                    var path = pool[i].Path;
                    for (var j = 0; j < path.Count; j++) inFlight[path[j].Index]--;
                    backup.Backup(tree, path);
                }
                done += count;
                simulation += count;
            }
            if (!options.CommitAndReuse || root.Children.Count == 0) break;
            root.Committed = true;
            root = Commit(tree, root);
            if (root.IsTerminal || root.Depth >= options.DepthLimit) break;
        }
        if (options.CommitAndReuse) root.Committed = true;
        return run.Finish();
    }

    static bool Contains(List<(TreeNode Node, int Simulation)> nodes, TreeNode node)
    {
        for (var i = 0; i < nodes.Count; i++)
            if (nodes[i].Node == node) return true;
        return false;
    }

    static void Enter(List<int> inFlight, TreeNode node, int count)
    {
        while (inFlight.Count <= node.Index) inFlight.Add(0);
        inFlight[node.Index] += count;
    }

    /// <summary>
    /// MCTS-DPO's acting rule (temperature 0): the child maximising (N_c·(1 + gap_c), Q_c, V_c) lexicographically,
    /// gap_c = max − min visit count among c's children; ties go to the earlier child.
    /// </summary>
    public static TreeNode Commit(PreferenceTree tree, TreeNode root)
    {
        TreeNode? best = null;
        (double, double, double) bestKey = default;
        foreach (var c in root.Children)
        {
            var child = tree.Nodes[c];
            var gap = child.Children.Count == 0 ? 0 : child.Children.Max(g => tree.Nodes[g].Visits) - child.Children.Min(g => tree.Nodes[g].Visits);
            var key = ((double)child.Visits * (1 + gap), child.Q, child.V);
            if (best is null || key.CompareTo(bestKey) > 0) { best = child; bestKey = key; }
        }
        return best ?? throw new InvalidOperationException("node has no children");
    }

    /// <summary>
    /// Expands the nodes in one batched proposer call and one call per critic (a node with no usable proposal becomes a
    /// dead end); the value rule then sets the children's values and the backup rule their Q before a visit.
    /// </summary>
    async Task ExpandAsync(SearchRun run, IReadOnlyList<(TreeNode Node, int Simulation)> nodes, CancellationToken ct)
    {
        var children = await Expansion.ExpandAsync(run, nodes.Select(n => (n.Node,
                n.Node.Depth == 0 && options.RootExpansions > 0 ? options.RootExpansions : options.Expansions,
                Seeds.Mix(options.Seed, n.Node.Index, n.Simulation))).ToList(),
            options.Temperature, options.LengthPenalty, ct, options.BreadthLimit);
        if (children.Count == 0) return;
        var rule = options.ValueRule;
        IReadOnlyList<double>? selfEvaluation = null;
        if (rule.UsesSelfEvaluation && selfEvaluator is not null)
            selfEvaluation = await selfEvaluator.EvaluateAsync(run.Task, children.Select(c =>
            {
                var before = run.StateOf(c.Parent);
                return new NodeToScore(before, before + c.StepText, new StepOutcome(c.StepText, c.IsTerminal, c.TerminalReward ?? 0, c.TerminalReason ?? ""));
            }).ToList(), ct);
        var backup = options.BackupRule;
        foreach (var group in children.Select((c, i) => new ChildScore(c, c.Value, selfEvaluation?[i])).GroupBy(c => c.Node.Parent))
        {
            var parent = run.Tree.Nodes[group.Key];
            var scores = group.ToList();
            rule.Assign(parent, scores);
            foreach (var c in scores) c.Node.Q = backup.InitialQ(parent, c.Node);
        }
    }

    public static double VisitWeightedValue(PreferenceTree tree, TreeNode n)
    {
        double num = 0, den = 0;
        var children = n.Children;
        for (var i = 0; i < children.Count; i++)
        {
            var child = tree.Nodes[children[i]];
            var w = Math.Max(1, child.Visits);
            num += w * child.Q;
            den += w;
        }
        return den == 0 ? 0 : num / den;
    }
}
