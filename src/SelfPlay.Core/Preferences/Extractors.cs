using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Preferences;

/// <summary>Settings every extractor reads the parts it needs from (defaults: algorithms.md).</summary>
/// <param name="MinQGap">smallest Q gap of a pair (MCTS-DPO, trajectory pairs)</param>
/// <param name="Rejected">MCTS-DPO's rejected child: "worst" (lowest Q) or "random" (a random non-best child, the released code)</param>
/// <param name="MaxPerTree">at most this many examples per tree (0 = all); MCTS-DPO keeps 8</param>
/// <param name="Margin">Tree-PLV's α: smallest success-rate gap of a sibling pair</param>
/// <param name="QThreshold">Agent Q's θ: smallest |ΔQ| of a sibling pair</param>
/// <param name="CriticWeight">Agent Q's α: Q = α·Q_mcts + (1−α)·the score of <paramref name="Critic"/> (1 = MCTS Q only)</param>
/// <param name="Critic">the critic whose score <paramref name="CriticWeight"/> mixes in (by name, as in <see cref="TreeNode.CriticScores"/>)</param>
/// <param name="QCenter">CPL: pairs are Q &gt; center vs Q &lt; center (the paper's 0 with ±1 rewards)</param>
/// <param name="MinListSize">ranked lists need at least this many visited children</param>
/// <param name="AdvantageStd">TreeRPO: divide sibling advantages by their std</param>
/// <param name="TreePoWeighting">TreePO subgroup mix: "average" or "group-size"</param>
/// <param name="VisitTemperature">visit-distribution's τ: the target share of a child is N^(1/τ) / Σ N^(1/τ)</param>
public sealed record ExtractorOptions(
    double MinQGap = 0.1, string Rejected = "worst", int MaxPerTree = 0, double Margin = 0.375, double QThreshold = 0.1,
    double CriticWeight = 1.0, double QCenter = 0.5, int MinListSize = 2, bool AdvantageStd = false, string TreePoWeighting = "average",
    string Critic = "", double VisitTemperature = 1.0);

/// <summary>A named strategy that turns one search tree into training examples. Pure: no I/O, no model.</summary>
public interface IPreferenceExtractor
{
    string Name { get; }
    ExampleKind Kind { get; }
    IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random);
}

/// <summary>The extractors by config name (preferences.extractor).</summary>
public static class Extractors
{
    public static readonly IReadOnlyList<IPreferenceExtractor> All =
    [
        new MctsDpoPairs(), new TreePlvPairs(), new StepApoPairs(), new SparPairs(), new SuccessPathPairs(), new AgentQPairs(),
        new RankedLists(), new TrajectoryPairs(), new SiblingAdvantages(), new DepthAdvantages(), new AncestorAdvantages(),
        new SolvedPaths(), new VisitDistribution(),
    ];

    public static IPreferenceExtractor Get(string name) => All.FirstOrDefault(e => e.Name == name)
        ?? throw new ArgumentException($"unknown extractor '{name}' (known: {string.Join(", ", All.Select(e => e.Name))})");

    /// <summary>
    /// Every tree's examples, with each tree's own seeded random (so the result does not depend on tree order), without
    /// what teaches nothing: empty candidates, and pairs whose two sides are the same text.
    /// </summary>
    /// <param name="trainable">whether a candidate has anything to train on after its prompt (default: it has text); the
    /// learner asks its tokenizer, since a candidate whose text the environment wrote all of has no policy token</param>
    public static List<PreferenceExample> ExtractAll(IPreferenceExtractor extractor, IEnumerable<PreferenceTree> trees, ExtractorOptions options, int seed,
        Func<string, Candidate, bool>? trainable = null)
    {
        trainable ??= (_, c) => c.Text.Length > 0;
        var examples = trees.SelectMany(t => extractor.Extract(t, options, new Random(HashCode.Combine(seed, StableHash(t.TreeId)))))
            .Select(e => WithoutEmptyCandidates(e, trainable)).OfType<PreferenceExample>()
            .Where(e => e.Kind != ExampleKind.Pair || e.Candidates[0].Text != e.Candidates[1].Text) // the same text on both sides teaches nothing
            .ToList();
        return extractor is AncestorAdvantages ? AncestorAdvantages.Whiten(examples) : examples;
    }

    /// <summary>
    /// A candidate without a token to train on (the policy stopped before writing anything) teaches nothing: a pair
    /// with one is dropped, a list keeps its other candidates (if two remain), and a visit distribution its other
    /// children, their shares renormalised.
    /// </summary>
    static PreferenceExample? WithoutEmptyCandidates(PreferenceExample example, Func<string, Candidate, bool> trainable)
    {
        if (example.Candidates.All(c => trainable(example.Prompt, c))) return example;
        if (example.Kind is not (ExampleKind.List or ExampleKind.Distribution)) return null;
        var kept = example.Candidates.Where(c => trainable(example.Prompt, c)).ToList();
        if (kept.Count < 2) return null;
        if (example.Kind == ExampleKind.Distribution)
        {
            var total = kept.Sum(c => c.Score);
            kept = [.. kept.Select(c => c with { Score = c.Score / total })];
        }
        return example with { Candidates = kept };
    }

    static int StableHash(string s)
    {
        var h = 17;
        foreach (var ch in s) h = unchecked(h * 31 + ch);
        return h;
    }

    internal static IReadOnlyList<PreferenceExample> Cap(List<PreferenceExample> examples, int max) =>
        max > 0 && examples.Count > max ? examples.Take(max).ToList() : examples;

    internal static Candidate Step(TreeNode node, double score) => new([CompletionStep.Of(node)], score, node.Visits);
}

/// <summary>
/// MCTS-DPO step pairs (§1.2): at every branching node, the highest-Q visited child against the lowest-Q one
/// ("worst") or a random other visited child ("random", gotcha G1); visit counts give the conservative ε.
/// </summary>
public sealed class MctsDpoPairs : IPreferenceExtractor
{
    public string Name => "mcts-dpo";
    public ExampleKind Kind => ExampleKind.Pair;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var examples = new List<PreferenceExample>();
        if (options.Rejected == "worst")
        {
            foreach (var p in SiblingPairs.Extract(tree, options.MinQGap))
            {
                var (chosen, rejected) = (tree.Nodes[p.ChosenIndex], tree.Nodes[p.RejectedIndex]);
                examples.Add(PreferenceExample.Pair(tree.TreeId, p.Prompt, Extractors.Step(chosen, chosen.Q), Extractors.Step(rejected, rejected.Q),
                    SiblingPairs.VisitLabelSmoothing(chosen.Visits, rejected.Visits)));
            }
            return Extractors.Cap(examples, options.MaxPerTree);
        }
        if (options.Rejected != "random") throw new ArgumentException($"mcts-dpo rejected must be worst or random, got '{options.Rejected}'");
        foreach (var node in tree.Nodes)
        {
            var visited = TreePaths.VisitedChildren(tree, node);
            if (visited.Count < 2) continue;
            var best = SiblingPairs.Best(visited);
            var others = visited.Where(c => c != best && best.Q - c.Q >= options.MinQGap).ToList();
            if (others.Count == 0) continue;
            var rejected = others[random.Next(others.Count)];
            examples.Add(PreferenceExample.Pair(tree.TreeId, tree.StateAt(node.Index), Extractors.Step(best, best.Q), Extractors.Step(rejected, rejected.Q),
                SiblingPairs.VisitLabelSmoothing(best.Visits, rejected.Visits)));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>
/// Tree-PLV sibling pairs (§5.2): every pair of evaluated sibling steps whose look-ahead rewards differ by at least α
/// (the margin). A step's reward R is the mean of the look-ahead rewards the best-first search stored with it
/// (<see cref="TreeNode.LookAheadRewards"/>: the success rate with 0/1 rewards), a terminal step's its own reward; on
/// trees of other searches (no look-ahead), the share of its rewarded descendant leaves that reached reward 1. Each
/// side is completed below the branch by its most-visited continuation (the verifier ranks every prefix from there).
/// </summary>
public sealed class TreePlvPairs : IPreferenceExtractor
{
    public string Name => "tree-plv";
    public ExampleKind Kind => ExampleKind.Pair;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var reward = Rewards(tree);
        var examples = new List<PreferenceExample>();
        foreach (var node in tree.Nodes)
        {
            var children = TreePaths.VisitedChildren(tree, node).Where(c => reward[c.Index] is not null).ToList();
            foreach (var a in children)
                foreach (var b in children)
                    if (a != b && reward[a.Index] - reward[b.Index] >= options.Margin - 1e-12)
                        examples.Add(PreferenceExample.Pair(tree.TreeId, tree.StateAt(node.Index),
                            TreePaths.ToCandidate(TreePaths.Continuation(tree, a), reward[a.Index]!.Value, a.Visits),
                            TreePaths.ToCandidate(TreePaths.Continuation(tree, b), reward[b.Index]!.Value, b.Visits)));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }

    /// <summary>Each node's R: its look-ahead mean, else a terminal's reward, else its leaves' success rate (null without any).</summary>
    public static double?[] Rewards(PreferenceTree tree)
    {
        var success = SuccessRates(tree);
        return [.. tree.Nodes.Select(n => n.LookAheadRewards.Length > 0 ? n.LookAheadRewards.Average()
            : n.IsTerminal && n.TerminalReward is { } r ? r : success[n.Index])];
    }

    /// <summary>Share of each node's rewarded descendant leaves with reward ≥ 1 (null without any).</summary>
    public static double?[] SuccessRates(PreferenceTree tree)
    {
        var wins = new int[tree.Nodes.Count];
        var all = new int[tree.Nodes.Count];
        foreach (var leaf in TreePaths.RewardedLeaves(tree))
            for (var n = leaf.Index; n >= 0; n = tree.Nodes[n].Parent)
            {
                all[n]++;
                if (leaf.TerminalReward >= 1) wins[n]++;
            }
        return [.. Enumerable.Range(0, all.Length).Select(i => all[i] > 0 ? wins[i] / (double)all[i] : (double?)null)];
    }
}

/// <summary>
/// CPL / Step-APO pairs (§6.3): every visited sibling pair with Q above vs below the center; both Q values travel
/// with the pair (the loss subtracts their gap). Terminal ("solution") siblings: only max-Q vs min-Q, their Q scaled
/// by <see cref="SolutionQScale"/> (CPL down-weights solution steps against plan steps).
/// </summary>
public sealed class StepApoPairs : IPreferenceExtractor
{
    public const double SolutionQScale = 0.3;

    public string Name => "step-apo";
    public ExampleKind Kind => ExampleKind.Pair;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var examples = new List<PreferenceExample>();
        foreach (var node in tree.Nodes)
        {
            var visited = TreePaths.VisitedChildren(tree, node);
            if (visited.Count < 2) continue;
            var prompt = tree.StateAt(node.Index);
            var plans = visited.Where(c => !c.IsTerminal).ToList();
            foreach (var w in plans.Where(c => c.Q > options.QCenter))
                foreach (var l in plans.Where(c => c.Q < options.QCenter))
                    examples.Add(PreferenceExample.Pair(tree.TreeId, prompt, Extractors.Step(w, w.Q), Extractors.Step(l, l.Q)));
            var solutions = visited.Where(c => c.IsTerminal).ToList();
            if (solutions.Count >= 2)
            {
                var best = SiblingPairs.Best(solutions);
                var worst = SiblingPairs.Worst(solutions);
                if (best.Q > options.QCenter && worst.Q < options.QCenter)
                    examples.Add(PreferenceExample.Pair(tree.TreeId, prompt, Extractors.Step(best, SolutionQScale * best.Q), Extractors.Step(worst, SolutionQScale * worst.Q)));
            }
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>
/// SPaR refinement pairs (§2.3). On a SPaR tree (algorithm spar: whole-response nodes, a response's children are its refinements),
/// each refinement the judge accepted (vote value &gt; .5) that improved on the response it refines gives
/// (refinement ≻ that response), both whole responses for the task's prompt, so a pair differs only where the edit
/// did. On a step tree of another search, each failing leaf's root path is paired with the solved one that
/// shares its longest prefix (the closest "refinement").
/// </summary>
public sealed class SparPairs : IPreferenceExtractor
{
    public string Name => "spar";
    public ExampleKind Kind => ExampleKind.Pair;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var examples = new List<PreferenceExample>();
        if (tree.Algorithm == "spar")
        {
            foreach (var refined in tree.Nodes.Where(n => n.Depth >= 2 && n.Value > 0.5))
            {
                var original = tree.Nodes[refined.Parent];
                if (refined.Value - original.Value < Math.Max(options.MinQGap, 1e-9)) continue;
                examples.Add(PreferenceExample.Pair(tree.TreeId, tree.Root.StepText, Response(refined), Response(original)));
            }
            return Extractors.Cap(examples, options.MaxPerTree);
        }
        var leaves = TreePaths.RewardedLeaves(tree).ToList();
        var solved = leaves.Where(l => l.TerminalReward >= 1).ToList();
        if (solved.Count == 0) return examples;
        foreach (var failed in leaves.Where(l => l.TerminalReward < 1))
        {
            var failedPath = TreePaths.PathTo(tree, failed.Index);
            var refined = solved.OrderByDescending(s => SharedSteps(TreePaths.PathTo(tree, s.Index), failedPath)).ThenBy(s => s.Index).First();
            examples.Add(PreferenceExample.Pair(tree.TreeId, tree.Root.StepText,
                TreePaths.ToCandidate(TreePaths.PathTo(tree, refined.Index), refined.TerminalReward!.Value, refined.Visits),
                TreePaths.ToCandidate(failedPath, failed.TerminalReward!.Value, failed.Visits)));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }

    static Candidate Response(TreeNode node) => new(CompletionStep.Split(node), node.Value, node.Visits);

    static int SharedSteps(List<TreeNode> a, List<TreeNode> b)
    {
        var i = 0;
        while (i < a.Count && i < b.Count && a[i].Index == b[i].Index) i++;
        return i;
    }
}

/// <summary>
/// TP-LLaMA success-path pairs (§10.2): along the root→success path (the most-visited solved leaf), the on-path
/// child is preferred over each of its visited siblings (never one the search did not try), with the path so far as context.
/// </summary>
public sealed class SuccessPathPairs : IPreferenceExtractor
{
    public string Name => "success-path";
    public ExampleKind Kind => ExampleKind.Pair;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var examples = new List<PreferenceExample>();
        var success = TreePaths.RewardedLeaves(tree).Where(l => l.TerminalReward >= 1)
            .OrderByDescending(l => l.Visits).ThenBy(l => l.Index).FirstOrDefault();
        if (success is null) return examples;
        foreach (var onPath in TreePaths.PathTo(tree, success.Index))
        {
            var parent = tree.Nodes[onPath.Parent];
            foreach (var sibling in TreePaths.VisitedChildren(tree, parent).Where(c => c != onPath))
                examples.Add(PreferenceExample.Pair(tree.TreeId, tree.StateAt(parent.Index), Extractors.Step(onPath, 1), Extractors.Step(sibling, sibling.Q)));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>
/// Expert-iteration targets (ReST-EM, rStar-Math): every verified solution path of a tree (a leaf with reward 1),
/// from the root, deduplicated by text, the most visited first, at most max-per-tree; one candidate each, trained
/// with learner.loss = sft.
/// </summary>
public sealed class SolvedPaths : IPreferenceExtractor
{
    public string Name => "solved-paths";
    public ExampleKind Kind => ExampleKind.Demonstration;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var examples = new List<PreferenceExample>();
        var seen = new HashSet<string>();
        foreach (var leaf in TreePaths.RewardedLeaves(tree).Where(l => l.TerminalReward >= 1).OrderByDescending(l => l.Visits).ThenBy(l => l.Index))
        {
            var solution = new Candidate([.. TreePaths.PathTo(tree, leaf.Index).Select(CompletionStep.Of)], leaf.TerminalReward!.Value, leaf.Visits);
            if (seen.Add(solution.Text)) examples.Add(new PreferenceExample(ExampleKind.Demonstration, tree.TreeId, tree.StateAt(0), [solution]));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>
/// AlphaZero policy distillation targets: at every node with at least two visited children, those children (one step
/// each, the most visited first) with their visit shares π(a) = N(a)^(1/τ) / Σ_b N(b)^(1/τ) as the scores, trained
/// with learner.loss = policy-ce. Unvisited children are left out: their share would be an invented 0.
/// </summary>
public sealed class VisitDistribution : IPreferenceExtractor
{
    public string Name => "visit-distribution";
    public ExampleKind Kind => ExampleKind.Distribution;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        if (options.VisitTemperature <= 0) throw new ArgumentException($"visit-distribution's temperature must be positive, got {options.VisitTemperature}");
        var examples = new List<PreferenceExample>();
        foreach (var node in tree.Nodes)
        {
            var visited = TreePaths.VisitedChildren(tree, node).OrderByDescending(c => c.Visits).ThenByDescending(c => c.Q).ThenBy(c => c.Index).ToList();
            if (visited.Count < 2) continue;
            // Shares relative to the most visited child first, so a large N^(1/τ) cannot overflow.
            var weights = visited.Select(c => Math.Pow((double)c.Visits / visited[0].Visits, 1 / options.VisitTemperature)).ToList();
            var total = weights.Sum();
            examples.Add(new PreferenceExample(ExampleKind.Distribution, tree.TreeId, tree.StateAt(node.Index),
                [.. visited.Select((c, i) => Extractors.Step(c, weights[i] / total))]));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>
/// Agent Q pairs (§8.2): all pairs of explored siblings with |ΔQ| ≥ θ, Q = α·Q_mcts + (1−α)·the score of the critic
/// named by <see cref="ExtractorOptions.Critic"/> (α = 1: Q_mcts alone; a node without that score enters no pair).
/// Behaviour log-probs stay on the steps (off-policy reference).
/// </summary>
public sealed class AgentQPairs : IPreferenceExtractor
{
    public string Name => "agent-q";
    public ExampleKind Kind => ExampleKind.Pair;

    /// <summary>The mixed Q of a node, or null when the critic to mix in did not score it.</summary>
    public static double? Value(TreeNode node, double criticWeight, string critic)
    {
        if (criticWeight >= 1) return node.Q;
        return node.CriticScores.TryGetValue(critic, out var score) ? criticWeight * node.Q + (1 - criticWeight) * score : null;
    }

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var examples = new List<PreferenceExample>();
        foreach (var node in tree.Nodes)
        {
            var visited = TreePaths.VisitedChildren(tree, node).Select(c => (Node: c, Q: Value(c, options.CriticWeight, options.Critic)))
                .Where(c => c.Q is not null).ToList();
            foreach (var (wi, qi) in visited)
                foreach (var (wj, qj) in visited)
                    if (qi > qj && qi - qj >= options.QThreshold - 1e-12)
                        examples.Add(PreferenceExample.Pair(tree.TreeId, tree.StateAt(node.Index), Extractors.Step(wi, qi!.Value), Extractors.Step(wj, qj!.Value)));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>
/// Ranked lists (Tree Preference Optimization, PRO): at each branching node, the visited children sorted by Q
/// (best first), each completed by its most-visited continuation so every candidate carries per-step token spans.
/// </summary>
public sealed class RankedLists : IPreferenceExtractor
{
    public string Name => "ranked-lists";
    public ExampleKind Kind => ExampleKind.List;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var examples = new List<PreferenceExample>();
        foreach (var node in tree.Nodes)
        {
            var visited = TreePaths.VisitedChildren(tree, node);
            if (visited.Count < Math.Max(2, options.MinListSize)) continue;
            var ranked = visited.OrderByDescending(c => c.Q).ThenByDescending(c => c.Visits).ThenBy(c => c.Index).ToList();
            if (ranked[0].Q - ranked[^1].Q < options.MinQGap) continue;
            examples.Add(new PreferenceExample(ExampleKind.List, tree.TreeId, tree.StateAt(node.Index),
                ranked.Select(c => TreePaths.ToCandidate(TreePaths.Continuation(tree, c), c.Q, c.Visits)).ToList()));
        }
        return Extractors.Cap(examples, options.MaxPerTree);
    }
}

/// <summary>Trajectory-level pairs (Agent Q's outcome-only baseline): best-rewarded vs worst-rewarded full response from the root.</summary>
public sealed class TrajectoryPairs : IPreferenceExtractor
{
    public string Name => "trajectory";
    public ExampleKind Kind => ExampleKind.Pair;

    public IReadOnlyList<PreferenceExample> Extract(PreferenceTree tree, ExtractorOptions options, Random random)
    {
        var leaves = TreePaths.RewardedLeaves(tree).ToList();
        if (leaves.Count < 2) return [];
        var best = leaves.OrderByDescending(l => l.TerminalReward).ThenByDescending(l => l.Visits).ThenBy(l => l.Index).First();
        var worst = leaves.OrderBy(l => l.TerminalReward).ThenBy(l => l.Visits).ThenBy(l => l.Index).First();
        if (best.TerminalReward - worst.TerminalReward < Math.Max(options.MinQGap, 1e-9)) return [];
        return [PreferenceExample.Pair(tree.TreeId, tree.Root.StepText,
            TreePaths.ToCandidate(TreePaths.PathTo(tree, best.Index), best.TerminalReward!.Value, best.Visits),
            TreePaths.ToCandidate(TreePaths.PathTo(tree, worst.Index), worst.TerminalReward!.Value, worst.Visits))];
    }
}
