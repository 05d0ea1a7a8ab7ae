using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Tests;

/// <summary>The swappable MCTS rules (MCTS-DPO, CPL, Agent Q), virtual loss, commit-and-reuse and the limits.</summary>
public class MctsStrategyTests
{
    const double Eps = 1e-9;
    static readonly EnvTask ToyTask = new("toy", "t");

    static ProposedStep Step(string action, params float[] logProbs) =>
        new(action, logProbs.Select((_, i) => 100 + action[0] + i).ToArray(), logProbs);

    // Toy: two letters, leaves aa=1 ab=0 ba=1 bb=0.2 (a partial reward), three proposals per state.
    static readonly Dictionary<string, double> Rewards = new() { ["aa"] = 1, ["ab"] = 0, ["ba"] = 1, ["bb"] = 0.2 };

    static IReadOnlyList<ProposedStep> Script(string state) => ToyTreeEnvironment.PathOf(state) switch
    {
        "" => [Step("a", -0.2f, -0.2f), Step("b", -0.2f, -0.5f), Step("c", -1f, -1f)],
        "a" => [Step("a", -0.8f, -0.1f), Step("b", -0.3f, -0.8f)],
        "b" => [Step("a", -0.8f, -0.3f), Step("b", -0.5f, -0.2f)],
        "c" => [Step("b", -0.5f, -0.5f)],
        _ => [],
    };

    static Task<PreferenceTree> Search(MctsOptions options, INodeEvaluator? selfEvaluator = null, ScriptedProposer? proposer = null)
    {
        var env = new ToyTreeEnvironment(2, Rewards);
        return new Mcts(env, proposer ?? new ScriptedProposer(Script), new VerifierEvaluator(env), options, selfEvaluator).SearchAsync("toy", ToyTask);
    }

    // ---- worked examples ----

    [Fact]
    public void Agent_Q_mix_matches_the_worked_example()
    {
        // algorithms.md §8.5: α = .5; (Q̃, rank of 3) = (.75, 1), (.25, 2), (0, 3) ⇒ .875, .375, 0.
        Assert.Equal(0.875, AgentQBackup.Mix(0.5, 0.75, AgentQBackup.RankValue(1, 3)), Eps);
        Assert.Equal(0.375, AgentQBackup.Mix(0.5, 0.25, AgentQBackup.RankValue(2, 3)), Eps);
        Assert.Equal(0.0, AgentQBackup.Mix(0.5, 0.0, AgentQBackup.RankValue(3, 3)), Eps);
        Assert.Equal(1.0, AgentQBackup.RankValue(1, 1));
    }

    [Fact]
    public void Agent_Q_backup_keeps_the_running_mean_and_mixes_the_rank()
    {
        var tree = PreferenceTree.Create("t", "s\n");
        var parent = tree.Root;
        var children = new[] { 0.3, 0.9, 0.1 }.Select(c => new ChildScore(tree.AddChild(0, new TreeNode()), c, null)).ToList();
        CriticRankValue.Instance.Assign(parent, children);
        Assert.Equal(new[] { 2, 1, 3 }, children.Select(c => c.Node.CriticRank));
        var rule = new AgentQBackup(0.5);
        Assert.Equal(new[] { 0.25, 0.5, 0.0 }, children.Select(c => rule.InitialQ(parent, c.Node)));
        // Three rollouts through the top-ranked child: rewards 1, 1, 0 (its own value is the leaf value here).
        var top = children[1].Node;
        foreach (var r in new[] { 1.0, 1.0, 0.0 })
        {
            top.Value = r;
            rule.Backup(tree, [parent, top]);
        }
        Assert.Equal(3, top.Visits);
        Assert.Equal(2.0 / 3, top.V, Eps);                  // Q̃ = W/N
        Assert.Equal(0.5 * 2 / 3 + 0.5 * 1, top.Q, Eps);    // α·Q̃ + (1−α)·Q̂
        Assert.Equal(2.0 / 3, parent.Q, Eps);               // the root keeps the plain mean
    }

    [Fact]
    public void Ucb1_is_Agent_Q_equation_7()
    {
        var child = new TreeNode { Prior = 0.9 }; // the prior plays no part in UCB1
        Assert.Equal(0.5 + 1.4 * Math.Sqrt(Math.Log(10) / 4), new Ucb1Selection(1.4).Score(child, 0.5, 10, 3), Eps);
        Assert.Equal(0.5, new Ucb1Selection(1.4).Score(child, 0.5, 1, 0), Eps); // log 1 = 0: a fresh node's children tie on Q
    }

    [Fact]
    public void MCTS_DPO_value_has_the_depth_penalty_the_inherited_zero_and_the_outcome()
    {
        Assert.Equal(0.8, OutcomeSelfEvaluationValue.Score(0.8, 2, 0.1, null), Eps);        // depth ≤ 4: no penalty
        Assert.Equal(0.4, OutcomeSelfEvaluationValue.Score(0.8, 5, 0.1, null), Eps);        // 0.8 / (5 − 3)
        Assert.Equal(0.1, OutcomeSelfEvaluationValue.Score(0, 5, 0.1, null), Eps);          // 0 ⇒ the parent's value
        Assert.Equal(1.8, OutcomeSelfEvaluationValue.Score(0.8, 1, 0.1, 1), Eps);           // + O = +1
        Assert.Equal(-0.2, OutcomeSelfEvaluationValue.Score(0.8, 1, 0.1, -1), Eps);         // + O = −1
    }

    [Fact]
    public void Signed_outcome_value_gives_plus_or_minus_one_at_terminals()
    {
        var tree = PreferenceTree.Create("t", "s\n");
        var children = new[] { (true, 1.0), (true, 0.2), (false, 0.4) }
            .Select(x => new ChildScore(tree.AddChild(0, new TreeNode { IsTerminal = x.Item1 }), x.Item2, null)).ToList();
        SignedOutcomeValue.Instance.Assign(tree.Root, children);
        Assert.Equal(new[] { 1.0, -1.0, 0.4 }, children.Select(c => c.Node.Value));
    }

    // ---- golden trees of the three MCTS variants ----

    [Fact]
    public async Task CPL_variant_matches_its_golden_tree()
    {
        // PUCT + W/N backup + ±1 terminals, 8 simulations.
        var tree = await Search(new MctsOptions(Simulations: 8, Expansions: 3, DepthLimit: 2, Backup: MeanValueBackup.Instance,
            Value: SignedOutcomeValue.Instance, Seed: 3));
        GoldenTrees.Check("mcts-cpl", tree);
        // Hand-checked: every Q is W/N of ±1 leaves, the root saw 8 simulations, bb (reward .2) counts as −1.
        Assert.Equal(8, tree.Root.Visits);
        Assert.All(tree.Nodes.Where(n => n.Visits > 0), n => Assert.Equal(n.ValueSum / n.Visits, n.Q, Eps));
        Assert.All(tree.Nodes.Where(n => n.IsTerminal), n => Assert.Equal(n.TerminalReward >= 1 ? 1 : -1, n.Value));
        Assert.All(tree.Nodes.Where(n => n.IsTerminal), n => Assert.InRange(n.TerminalReward!.Value, 0, 1));
        Assert.Equal(-1, tree.Nodes.Single(n => n.Action == "b" && n.Depth == 2 && tree.Nodes[n.Parent].Action == "b").Value);
    }

    [Fact]
    public async Task Agent_Q_variant_matches_its_golden_tree()
    {
        var tree = await Search(new MctsOptions(Simulations: 9, Expansions: 3, DepthLimit: 2, Selection: new Ucb1Selection(1.0),
            Backup: new AgentQBackup(0.5), Value: CriticRankValue.Instance, Seed: 3));
        GoldenTrees.Check("mcts-agent-q", tree);
        // The verifier gives 0 to every open step, so the ranking follows the priors: a (.845) > b (.745) > c (.432).
        var rootChildren = tree.Root.Children.Select(c => tree.Nodes[c]).ToList();
        Assert.Equal(new[] { 1, 2, 3 }, rootChildren.Select(c => c.CriticRank));
        Assert.All(tree.Nodes.Skip(1), n =>
        {
            var q̂ = n.CriticScores[AgentQBackup.RankScoreName];
            Assert.Equal(n.Visits == 0 ? 0.5 * q̂ : 0.5 * (n.ValueSum / n.Visits) + 0.5 * q̂, n.Q, Eps);
        });
        Assert.Equal(9, tree.Root.Visits);
    }

    [Fact]
    public async Task MCTS_DPO_variant_with_self_evaluation_root_budget_and_commit_matches_its_golden_tree()
    {
        // Self-evaluation: 0.6 for steps toward 'a', 0.3 otherwise; 3 simulations, ×4 at the question root, commit-and-reuse.
        var selfEval = new ScriptedEvaluator("self-evaluation", n => n.StateAfter.EndsWith("a\n") ? 0.6 : 0.3);
        var tree = await Search(new MctsOptions(Simulations: 3, Expansions: 3, DepthLimit: 2, Value: OutcomeSelfEvaluationValue.Instance,
            RootSimulationFactor: 4, CommitAndReuse: true, Seed: 3), selfEval);
        GoldenTrees.Check("mcts-dpo", tree);
        Assert.Equal(12, tree.Root.Visits);                               // 4 × 3 from the question root
        var committed = tree.Nodes.Where(n => n.Committed).ToList();
        Assert.Equal(new[] { 0, 1, 2 }, committed.Select(n => n.Depth)); // root → child → leaf
        Assert.True(committed[^1].IsTerminal);
        Assert.Equal(committed[1], Mcts.Commit(tree, tree.Root));
        Assert.Equal(12 + 3, tree.Root.Children.Sum(c => tree.Nodes[c].Visits)); // + 3 from the committed child, not through the root
        Assert.Equal(committed[1].Visits, committed[1].Children.Sum(c => tree.Nodes[c].Visits));
        // Values: root children 'a' = .6 (self-eval), terminal 'aa' = .6 + 1 (solved), 'ab' = .3 − 1.
        var a = tree.Nodes.Single(n => n.Depth == 1 && n.Action == "a");
        Assert.Equal(0.6, a.Value, Eps);
        Assert.Equal(0.6, a.CriticScores["self-evaluation"], Eps);
        foreach (var c in a.Children.Select(i => tree.Nodes[i]))
            Assert.Equal(c.Action == "a" ? 1.6 : -0.7, c.Value, Eps);
    }

    // ---- virtual loss and batching ----

    [Fact]
    public async Task Virtual_loss_sends_simulations_of_one_wave_down_different_branches_in_one_batch()
    {
        var proposer = new ScriptedProposer(Script);
        var tree = await Search(new MctsOptions(Simulations: 3, Expansions: 3, DepthLimit: 2, ParallelSimulations: 3, Seed: 1), proposer: proposer);
        // One wave: the root is expanded once, then the three simulations go to a, b and c, whose expansions share one call.
        Assert.Equal(new[] { 1, 1, 1 }, tree.Root.Children.Select(c => tree.Nodes[c].Visits));
        Assert.Equal(2, tree.Stats.ProposerCalls);              // the root, then a, b and c together (depth 2 is terminal)
        Assert.Equal(1 + 3, proposer.Requests.Count);
        // Without virtual loss the simulations stack up on the best prior.
        var sequential = await Search(new MctsOptions(Simulations: 3, Expansions: 3, DepthLimit: 2, ParallelSimulations: 1, Seed: 1));
        Assert.NotEqual(new[] { 1, 1, 1 }, sequential.Root.Children.Select(c => sequential.Nodes[c].Visits));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    public async Task Parallel_simulations_conserve_visits_and_are_deterministic(int parallel)
    {
        for (var sims = 1; sims <= 20; sims += 3)
        {
            var options = new MctsOptions(Simulations: sims, Expansions: 3, DepthLimit: 2, ParallelSimulations: parallel, Seed: sims);
            var tree = await Search(options);
            GoldenTrees.AssertWellFormed(tree);
            Assert.Equal(sims, tree.Root.Visits);
            foreach (var n in tree.Nodes.Where(n => n.Children.Count > 0))
                Assert.Equal(n.Visits, n.Children.Sum(c => tree.Nodes[c].Visits));
            Assert.Equal(sims, tree.Nodes.Where(n => n.Children.Count == 0).Sum(n => n.Visits));
            Assert.All(tree.Nodes, n => Assert.InRange(n.Q, -1.0, 1.0));
            Assert.Equal(MctsTests.Json(tree), MctsTests.Json(await Search(options)));
        }
    }

    // ---- limits ----

    [Fact]
    public async Task Root_expansions_and_breadth_limit_bound_the_children()
    {
        var proposer = new ScriptedProposer(Script);
        var tree = await Search(new MctsOptions(Simulations: 6, Expansions: 2, RootExpansions: 5, BreadthLimit: 2, DepthLimit: 2), proposer: proposer);
        Assert.Equal(5, proposer.Requests.First().Count);
        Assert.All(proposer.Requests.Skip(1), r => Assert.Equal(2, r.Count));
        Assert.All(tree.Nodes, n => Assert.True(n.Children.Count <= 2));
        Assert.Equal(new[] { "a", "b" }, tree.Root.Children.Select(c => tree.Nodes[c].Action)); // c was beyond the limit

        var shallow = await Search(new MctsOptions(Simulations: 6, Expansions: 3, DepthLimit: 1));
        Assert.All(shallow.Nodes, n => Assert.True(n.Depth <= 1));
    }
}
