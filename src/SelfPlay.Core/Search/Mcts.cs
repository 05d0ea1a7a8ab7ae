using System.Diagnostics;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

public enum BackupRule
{
    /// <summary>MCTS-DPO: V(n) = Σ max(1,N_c)·Q_c / Σ max(1,N_c); Q(n) = r(n) + V(n).</summary>
    VisitWeighted,
    /// <summary>AlphaZero / CPL: W += leaf value, Q = W / N.</summary>
    MeanValue,
}

public sealed record MctsOptions(
    int Simulations = 24,
    int Expansions = 4,
    double CPuct = 1.0,
    double LengthPenalty = 1.25,
    int DepthLimit = 8,
    double Temperature = 1.0,
    BackupRule Backup = BackupRule.VisitWeighted,
    long Seed = 0,
    int PolicyVersion = 0);

/// <summary>
/// Step-level MCTS in the MCTS-DPO form (algorithms.md §1): PUCT with a length-normalised prior, expansion by
/// k sampled steps with duplicates merged, "select, then expand-and-descend to a terminal or the depth limit",
/// and backup along the path. Pure and deterministic given the proposer's and evaluator's answers.
/// </summary>
public sealed class Mcts(IEnvironment environment, IStepProposer proposer, INodeEvaluator evaluator, MctsOptions options)
{
    /// <summary>p(a|s) = exp(Σ log p / |a|^λ).</summary>
    public static double Prior(IReadOnlyList<float> logProbs, double lengthPenalty) =>
        logProbs.Count == 0 ? 0 : Math.Exp(logProbs.Sum(x => (double)x) / Math.Pow(logProbs.Count, lengthPenalty));

    /// <summary>
    /// Q + c·p·√N(s)/(1+N(s,a)). N(s) is taken as at least 1, so the children of a node reached for the first time
    /// (expand-and-descend) are chosen by their priors rather than all scoring their bare Q.
    /// </summary>
    public static double Puct(double q, double prior, int parentVisits, int childVisits, double cPuct) =>
        q + cPuct * prior * Math.Sqrt(Math.Max(1, parentVisits)) / (1 + childVisits);

    /// <summary>The child with the highest PUCT score; ties go to the earlier child.</summary>
    public static TreeNode SelectChild(PreferenceTree tree, TreeNode parent, double cPuct)
    {
        TreeNode? best = null;
        var bestScore = double.NegativeInfinity;
        foreach (var c in parent.Children)
        {
            var child = tree.Nodes[c];
            var score = Puct(child.Q, child.Prior, parent.Visits, child.Visits, cPuct);
            if (score > bestScore) { best = child; bestScore = score; }
        }
        return best ?? throw new InvalidOperationException("node has no children");
    }

    public async Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var tree = PreferenceTree.Create(treeId, environment.InitialState(task));
        tree.TaskId = task.Id;
        tree.TaskInput = task.Input;
        tree.Environment = environment.Name;
        tree.Algorithm = "mcts";
        tree.PolicyVersion = options.PolicyVersion;
        for (var sim = 0; sim < options.Simulations; sim++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var path = new List<TreeNode> { tree.Root };
            var node = tree.Root;
            while (!node.IsTerminal && node.Depth < options.DepthLimit)
            {
                if (node.Children.Count == 0 && !await ExpandAsync(tree, task, node, sim, clock, cancellationToken)) break;
                node = SelectChild(tree, node, options.CPuct);
                path.Add(node);
            }
            Backup(tree, path, options.Backup);
        }
        return tree;
    }

    /// <summary>Adds one child per distinct proposed action; false when the policy proposed nothing usable.</summary>
    async Task<bool> ExpandAsync(PreferenceTree tree, EnvTask task, TreeNode node, int simulation, Stopwatch clock, CancellationToken ct)
    {
        var state = tree.StateAt(node.Index);
        var seed = Seeds.Mix(options.Seed, node.Index, simulation);
        var proposals = (await proposer.ProposeAsync([new ProposalRequest(state, options.Expansions, options.Temperature, seed)], ct))[0];
        var seen = new HashSet<string>();
        var children = new List<(ProposedStep Step, StepOutcome Outcome)>();
        foreach (var step in proposals)
        {
            var outcome = ApplySafely(task, state, step.Action);
            // Duplicates are merged into the first: same resulting text means the same step, however it was spelled.
            if (seen.Add(outcome.Appended)) children.Add((step, outcome));
        }
        if (children.Count == 0)
        {
            node.IsTerminal = true;
            node.TerminalReward = 0;
            node.TerminalReason = "the policy proposed no step";
            return false;
        }
        var values = await evaluator.EvaluateAsync(task,
            children.Select(c => new NodeToScore(state, state + c.Outcome.Appended, c.Outcome)).ToList(), ct);
        for (var i = 0; i < children.Count; i++)
        {
            var (step, outcome) = children[i];
            tree.AddChild(node.Index, new TreeNode
            {
                Action = step.Action,
                StepText = outcome.Appended,
                TokenIds = step.TokenIds,
                LogProbs = step.LogProbs,
                Prior = Prior(step.LogProbs, options.LengthPenalty),
                IsTerminal = outcome.IsTerminal,
                TerminalReward = outcome.IsTerminal ? values[i] : null,
                TerminalReason = outcome.IsTerminal ? outcome.Reason : null,
                Value = values[i],
                // As in MCTS-DPO, a new child starts at Q = r = Value − parent's Value (V = 0): a winning terminal
                // counts before its first visit, in selection and in the parent's visit-weighted V.
                Q = values[i] - node.Value,
                CriticScores = { [evaluator.Name] = values[i] },
                Critic = evaluator.Name,
                PolicyVersion = options.PolicyVersion,
                CreatedAtMs = clock.Elapsed.TotalMilliseconds,
            });
        }
        return true;
    }

    /// <summary>An exception inside the environment ends that branch with reward 0; it never ends the search.</summary>
    StepOutcome ApplySafely(EnvTask task, string state, string action)
    {
        try { return environment.Step(task, state, action); }
        catch (Exception e)
        {
            return StepOutcome.End(action.ReplaceLineEndings(" ") + "\n", 0, $"environment error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    public static void Backup(PreferenceTree tree, IReadOnlyList<TreeNode> path, BackupRule rule)
    {
        var leaf = path[^1];
        if (rule == BackupRule.MeanValue)
        {
            var value = leaf.Value;
            foreach (var n in path)
            {
                n.Visits++;
                n.ValueSum += value;
                n.Q = n.ValueSum / n.Visits;
                n.V = n.Q;
            }
            return;
        }
        leaf.Visits++;
        leaf.Q = Reward(tree, leaf) + leaf.V;
        for (var i = path.Count - 2; i >= 0; i--)
        {
            var n = path[i];
            n.V = VisitWeightedValue(tree, n);
            n.Visits++;
            if (i > 0) n.Q = Reward(tree, n) + n.V;
        }
    }

    /// <summary>r(n) = Value(n) − Value(parent): MCTS-DPO's incremental reward (gotcha G4).</summary>
    static double Reward(PreferenceTree tree, TreeNode n) => n.Parent < 0 ? 0 : n.Value - tree.Nodes[n.Parent].Value;

    public static double VisitWeightedValue(PreferenceTree tree, TreeNode n)
    {
        double num = 0, den = 0;
        foreach (var c in n.Children)
        {
            var child = tree.Nodes[c];
            var w = Math.Max(1, child.Visits);
            num += w * child.Q;
            den += w;
        }
        return den == 0 ? 0 : num / den;
    }
}
