using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Tests;

/// <summary>A seeded toy policy: each request's Count steps are letters drawn from the request's seed (so rollouts differ), with random log-probs.</summary>
internal sealed class SeededToyProposer(string letters) : IStepProposer
{
    public List<ProposalRequest> Requests { get; } = [];

    public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default)
    {
        Requests.AddRange(requests);
        return Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(requests.Select(r =>
        {
            var rng = new Random(unchecked((int)r.Seed));
            return (IReadOnlyList<ProposedStep>)Enumerable.Range(0, r.Count).Select(_ =>
            {
                var letter = letters[rng.Next(letters.Length)];
                return new ProposedStep(letter.ToString(), [letter, 10], [-rng.NextSingle(), -rng.NextSingle()]);
            }).ToArray();
        }).ToArray());
    }
}

/// <summary>Answers Take(Count) of a fixed script of the state.</summary>
internal sealed class CountingScript(Func<string, IReadOnlyList<string>> script) : IStepProposer
{
    public List<ProposalRequest> Requests { get; } = [];

    public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default)
    {
        Requests.AddRange(requests);
        return Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(requests.Select(r =>
            (IReadOnlyList<ProposedStep>)script(r.State).Take(r.Count).Select((a, i) => new ProposedStep(a, [a[0], 10], [-0.1f * (i + 1), -0.1f])).ToArray()).ToArray());
    }
}

public class SearchAlgorithmTests
{
    const double Eps = 1e-9;
    static readonly EnvTask ToyTask = new("toy", "t");

    // Three letters deep over "ab"; aaa, abb and bab win, bbb earns a partial 0.2.
    static readonly Dictionary<string, double> Rewards = new() { ["aaa"] = 1, ["abb"] = 1, ["bab"] = 1, ["bbb"] = 0.2 };
    static ToyTreeEnvironment Toy() => new(3, Rewards);

    static ITreeSearch Create(string algorithm, IEnvironment env, IStepProposer proposer, long seed = 5, SearchConfig? config = null)
    {
        config ??= new SearchConfig(algorithm, Simulations: 12, Expansions: 2, CPuct: 1.0, LengthPenalty: 1.25, Temperature: 1.0, Backup: "visit-weighted",
            BestFirst: new BestFirstConfig(LookAhead: 4, MaxExpansions: 4), Beam: new BeamConfig(2), Dfsdt: new DfsdtConfig(6),
            Spar: new SparConfig(Branch: 2, SelectBranch: 2, MaxDepth: 2, JudgeSamples: 3, ActorSamples: 2),
            TreeRollout: new TreeRolloutConfig(BranchFactor: 2, BranchDepths: "0,1", MaxWidth: 8));
        return SearchAlgorithms.Create(config with { Algorithm = algorithm }, env, proposer, new VerifierEvaluator(env), depthLimit: 3, policyVersion: 2, seed);
    }

    // ---- every algorithm: golden tree, well-formed, deterministic, provenance ----

    public static TheoryData<string> Algorithms => new(SearchAlgorithms.Names);

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task Every_algorithm_matches_its_golden_toy_tree_and_keeps_the_invariants(string algorithm)
    {
        var env = Toy();
        var tree = await Create(algorithm, env, new SeededToyProposer("ab")).SearchAsync("toy/" + algorithm, ToyTask);
        GoldenTrees.Check("search-" + algorithm, tree);

        Assert.Equal(algorithm, tree.Algorithm);
        Assert.Equal("verifier", tree.Critic);
        Assert.True(tree.Nodes.Count > 1);
        GoldenTrees.AssertWellFormed(tree, algorithm);
        Assert.All(tree.Nodes, n =>
        {
            Assert.InRange(n.Q, 0.0, 1.0);            // every value here is a reward in [0, 1] or a mean of them
            Assert.InRange(n.Value, 0.0, 1.0);
            Assert.Equal(2, n.PolicyVersion);
        });
        Assert.All(tree.Nodes.Skip(1), n =>
        {
            Assert.Equal("verifier", n.Critic);
            // A SPaR refinement also carries the tokens of the steps it keeps, generated for the response it refines.
            Assert.True(n.GeneratedTokens >= n.TokenIds.Length || (algorithm == "spar" && n.Depth > 1));
        });
        Assert.True(tree.Stats.WallMs > 0 && tree.Stats.ProposerCalls > 0 && tree.Stats.GeneratedTokens > 0);
        Assert.True(tree.Stats.ProposerMs + tree.Stats.EvaluatorMs + tree.Stats.EnvironmentMs <= tree.Stats.WallMs + 1e-6);
        // Step searches: terminal rewards are what the verifier says of the state.
        if (algorithm != "spar")
            Assert.All(tree.Nodes.Where(n => n.IsTerminal && n.Children.Count == 0 && n.TerminalReason != "the policy proposed no step"),
                n => Assert.Equal(env.Verify(ToyTask, tree.StateAt(n.Index)).Reward, n.TerminalReward));

        var again = await Create(algorithm, Toy(), new SeededToyProposer("ab")).SearchAsync("toy/" + algorithm, ToyTask);
        Assert.Equal(MctsTests.Json(tree), MctsTests.Json(again));
        var otherSeed = await Create(algorithm, Toy(), new SeededToyProposer("ab"), seed: 6).SearchAsync("toy/" + algorithm, ToyTask);
        Assert.NotEqual(MctsTests.Json(tree), MctsTests.Json(otherSeed));
    }

    /// <summary>
    /// Golden pairs: each search's golden toy tree (above) through the extractor its campaigns use, rendered (prompt,
    /// candidates' texts, scores and token counts, ε) and compared with Golden/pairs-ALGORITHM-EXTRACTOR.json;
    /// SELFPLAY_UPDATE_GOLDEN=1 re-records them. Every one must hold examples.
    /// </summary>
    [Theory]
    [InlineData("mcts", "mcts-dpo")]
    [InlineData("mcts", "step-apo")]
    [InlineData("mcts", "agent-q")]
    [InlineData("mcts", "ranked-lists")]
    [InlineData("best-first", "tree-plv")]
    [InlineData("spar", "spar")]
    [InlineData("beam", "mcts-dpo")]
    [InlineData("dfsdt", "success-path")]
    [InlineData("tree-rollout", "treerpo")]
    public async Task Every_extractor_matches_its_golden_pairs_on_a_tree_of_its_search(string algorithm, string extractor)
    {
        var tree = await Create(algorithm, Toy(), new SeededToyProposer("ab")).SearchAsync("toy/" + algorithm, ToyTask);
        var options = new Preferences.ExtractorOptions(Margin: 0.25, QCenter: 0.5);
        var examples = Preferences.Extractors.ExtractAll(Preferences.Extractors.Get(extractor), [tree], options, seed: 1);
        Assert.NotEmpty(examples);
        var json = System.Text.Json.JsonSerializer.Serialize(examples.Select(e => new
        {
            kind = e.Kind.ToString(), prompt = e.Prompt, labelSmoothing = Math.Round(e.LabelSmoothing, 6),
            candidates = e.Candidates.Select(c => new { text = c.Text, score = Math.Round(c.Score, 6), steps = c.Steps.Count, tokens = c.Steps.Sum(s => s.TokenIds.Length) }),
        }), new System.Text.Json.JsonSerializerOptions { WriteIndented = true }).ReplaceLineEndings("\n") + "\n";
        GoldenTrees.CheckText($"pairs-{algorithm}-{extractor}", json);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task Random_seeds_keep_the_invariants(string algorithm)
    {
        for (var seed = 0; seed < 25; seed++)
        {
            var tree = await Create(algorithm, Toy(), new SeededToyProposer("abc?"), seed).SearchAsync("t", ToyTask);
            GoldenTrees.AssertWellFormed(tree, $"{algorithm} seed {seed}");
            Assert.All(tree.Nodes, n => Assert.InRange(n.Q, 0.0, 1.0));
            if (algorithm is "beam" or "dfsdt" or "tree-rollout")
                foreach (var n in tree.Nodes.Where(n => n.Children.Count > 0))
                {
                    // Leaf means: visits are leaves below, and Q is their visit-weighted mean.
                    Assert.Equal(n.Visits, n.Children.Sum(c => tree.Nodes[c].Visits));
                    Assert.Equal(n.Q, n.Children.Sum(c => tree.Nodes[c].Visits * tree.Nodes[c].Q) / n.Visits, 1e-9);
                }
        }
    }

    // ---- best-first (Tree-PLV) ----

    [Fact]
    public async Task Dfsdt_children_it_never_tried_have_no_visits_and_success_path_never_rejects_them()
    {
        // Two letters deep, "aa" wins: DFSDT tries a (the higher prior), solves with aa, and never reaches b.
        var env = new ToyTreeEnvironment(2, new Dictionary<string, double> { ["aa"] = 1 });
        var tree = await new DfsdtSearch(env, new CountingScript(_ => ["a", "b"]), new VerifierEvaluator(env),
            new DfsdtOptions(Expansions: 2, MaxExpansions: 8, DepthLimit: 2)).SearchAsync("d", ToyTask);
        var b = tree.Nodes.Single(n => n.Parent == 0 && n.Action == "b");
        Assert.Equal((0, 0.0), (b.Visits, b.Q));
        Assert.Equal(0.5, tree.Root.Q, Eps);                                   // aa (1) and ab (0, verified when made): b counts for nothing
        var pair = Assert.Single(Preferences.Extractors.Get("success-path").Extract(tree, new Preferences.ExtractorOptions(), new Random(0)));
        Assert.Equal(("Toy t\na\n", "a\n", "b\n"), (pair.Prompt, pair.Candidates[0].Text, pair.Candidates[1].Text));
        Assert.DoesNotContain(Preferences.Extractors.Get("mcts-dpo").Extract(tree, new Preferences.ExtractorOptions(), new Random(0)), p => p.Prompt == "Toy t\n");
    }

    [Fact]
    public async Task Tree_plv_pairs_on_a_best_first_tree_are_made_on_the_look_ahead_rewards_stored_with_the_steps()
    {
        const double margin = 0.375;
        var (pairCount, unexpanded) = (0, 0);
        for (var seed = 0; seed < 10; seed++)
        {
            var tree = await new BestFirstSearch(Toy(), new SeededToyProposer("ab"), new VerifierEvaluator(Toy()),
                new BestFirstOptions(Expansions: 2, LookAhead: 8, MaxExpansions: 3, DepthLimit: 3, Seed: seed)).SearchAsync("bf", ToyTask);
            foreach (var n in tree.Nodes.Skip(1).Where(n => !n.IsTerminal))
            {
                Assert.Equal(8, n.LookAheadRewards.Length);                       // one reward per completion
                Assert.All(n.LookAheadRewards, r => Assert.Contains(r, new[] { 0, 0.2, 1 }));
                Assert.Equal(n.LookAheadRewards.Average(), n.Value, Eps);
            }
            var pairs = Preferences.Extractors.Get("tree-plv").Extract(tree, new Preferences.ExtractorOptions(Margin: margin), new Random(0));
            TreeNode NodeOf(Preferences.PreferenceExample pair, Preferences.Candidate c) =>
                tree.Nodes.Single(n => n.Index > 0 && tree.StateAt(n.Parent) == pair.Prompt && n.StepText == c.Steps[0].Text);
            double R(TreeNode n) => n.LookAheadRewards.Length > 0 ? n.LookAheadRewards.Average() : n.TerminalReward!.Value;
            foreach (var pair in pairs)
            {
                var (chosen, rejected) = (NodeOf(pair, pair.Candidates[0]), NodeOf(pair, pair.Candidates[1]));
                Assert.Equal(chosen.Parent, rejected.Parent);                       // siblings only
                Assert.Equal(R(chosen) - R(rejected), pair.Candidates[0].Score - pair.Candidates[1].Score, Eps);
                Assert.True(pair.Candidates[0].Score - pair.Candidates[1].Score >= margin - Eps);
                // A step never expanded has no leaf below it to count: only its look-ahead can pair it.
                unexpanded += new[] { chosen, rejected }.Count(n => n.Children.Count == 0 && !n.IsTerminal);
            }
            pairCount += pairs.Count;
        }
        Assert.True(pairCount > 0 && unexpanded > 0, $"{pairCount} pairs, {unexpanded} unexpanded steps in them");
    }

    [Fact]
    public async Task Best_first_rewards_are_look_ahead_success_rates_and_it_expands_the_best_node()
    {
        var proposer = new SeededToyProposer("ab");
        var tree = await new BestFirstSearch(Toy(), proposer, new VerifierEvaluator(Toy()),
            new BestFirstOptions(Expansions: 2, LookAhead: 8, MaxExpansions: 5, DepthLimit: 3, Seed: 1)).SearchAsync("bf", ToyTask);
        foreach (var n in tree.Nodes.Skip(1))
        {
            if (n.IsTerminal) { Assert.Equal(1, n.Visits); Assert.Equal(n.TerminalReward ?? 0, n.Value, Eps); continue; }
            Assert.Equal(8, n.Visits);
            // Eight rollouts with rewards in {0, .2, 1}: the mean is a multiple of 1/40.
            Assert.Equal(Math.Round(n.Value * 40), n.Value * 40, 6);
            Assert.Equal(n.Value, n.Q);
            Assert.True(n.GeneratedTokens > n.TokenIds.Length);          // the look-ahead tokens count for the node
        }
        // Each expansion took the best open node: replay the frontier in creation order.
        var expanded = tree.Nodes.Where(n => n.Children.Count > 0).Select(n => n.Index).ToList();
        var frontier = new List<TreeNode> { tree.Root };
        foreach (var e in expanded)
        {
            var best = frontier.OrderByDescending(n => n.Value).ThenBy(n => n.Index).First();
            Assert.Equal(best.Index, e);
            frontier.Remove(best);
            frontier.AddRange(tree.Nodes[e].Children.Select(c => tree.Nodes[c]));
        }
        // It stopped because the best open node was a finished chain, or the budget ran out.
        var top = frontier.OrderByDescending(n => n.Value).ThenBy(n => n.Index).FirstOrDefault();
        Assert.True(expanded.Count == 5 || top is null || top.IsTerminal || top.Depth >= 3);
        // Rollout requests are one step each, batched: one call per rollout depth per expansion.
        Assert.Contains(proposer.Requests, r => r.Count == 1);
    }

    // ---- beam ----

    [Fact]
    public async Task Beam_keeps_the_b_best_open_states_per_depth()
    {
        // Critic: open steps ending in "b" are worth more, so the beam follows them.
        var env = Toy();
        var critic = new ScriptedEvaluator("scripted", n => n.Outcome.IsTerminal ? env.Verify(ToyTask, n.StateAfter).Reward : n.StateAfter.EndsWith("b\n") ? 0.5 : 0.1);
        var proposer = new CountingScript(_ => ["a", "b", "c"]);
        var tree = await new BeamSearch(env, proposer, critic, new BeamOptions(Expansions: 3, BeamWidth: 2, DepthLimit: 3)).SearchAsync("beam", ToyTask);
        // Depth 1: a, b, c (c ends the game); kept: b (.5), a (.1). Depth 2 from b then a; kept: bb, ab.
        Assert.Equal(new[] { "", "b", "a" }, proposer.Requests.Select(r => ToyTreeEnvironment.PathOf(r.State)).Take(3));
        Assert.Equal(new[] { "bb", "ab" }, proposer.Requests.Skip(3).Select(r => ToyTreeEnvironment.PathOf(r.State)));
        Assert.All(tree.Nodes.GroupBy(n => n.Depth), g => Assert.True(g.Count(n => n.Children.Count > 0) <= 2));
        Assert.True(tree.Solved); // abb
        Assert.Equal(tree.Nodes.Count(n => n.Children.Count == 0), tree.Root.Visits);
    }

    // ---- DFSDT ----

    [Fact]
    public async Task Dfsdt_backtracks_from_failed_branches_and_stops_at_the_first_solution()
    {
        var script = new Dictionary<string, string[]> { [""] = ["a", "b"], ["a"] = ["b", "a"], ["ab"] = ["a"], ["aa"] = ["b"], ["b"] = ["a"], ["ba"] = ["b", "a"] };
        var proposer = new CountingScript(s => script.GetValueOrDefault(ToyTreeEnvironment.PathOf(s) ?? "?", []));
        var env = Toy();
        var tree = await new DfsdtSearch(env, proposer, new VerifierEvaluator(env), new DfsdtOptions(Expansions: 2, MaxExpansions: 10, DepthLimit: 3))
            .SearchAsync("dfsdt", ToyTask);
        // Priors: the first proposal of each node is the likelier. a → ab → aba (0): back up; aa → aab (0): back up twice; b → ba → bab (1).
        Assert.Equal(new[] { "", "a", "ab", "aa", "b", "ba" }, proposer.Requests.Select(r => ToyTreeEnvironment.PathOf(r.State)));
        Assert.True(tree.Solved);
        Assert.Equal(1, tree.Nodes.Single(n => tree.StateAt(n.Index).EndsWith("b\na\nb\n")).TerminalReward);

        var capped = new CountingScript(s => script.GetValueOrDefault(ToyTreeEnvironment.PathOf(s) ?? "?", []));
        var short_ = await new DfsdtSearch(env, capped, new VerifierEvaluator(env), new DfsdtOptions(Expansions: 2, MaxExpansions: 3, DepthLimit: 3)).SearchAsync("d", ToyTask);
        Assert.Equal(3, capped.Requests.Count);
        Assert.False(short_.Solved);
    }

    // ---- tree rollouts ----

    [Fact]
    public async Task Tree_rollout_node_rewards_are_leaf_means_as_in_the_TreePO_example()
    {
        // algorithms.md §9.3: binary tree of depth 2, leaf rewards [1, 0 | 1, 1] ⇒ root .75, subgroups .5 and 1.
        var env = new ToyTreeEnvironment(2, new Dictionary<string, double> { ["aa"] = 1, ["ab"] = 0, ["ba"] = 1, ["bb"] = 1 });
        var proposer = new CountingScript(_ => ["a", "b"]);
        var tree = await new TreeRolloutSearch(env, proposer, new VerifierEvaluator(env),
            new TreeRolloutOptions(BranchFactor: 2, BranchDepths: [0, 1], MaxWidth: 16, DepthLimit: 2)).SearchAsync("tr", ToyTask);
        Assert.Equal(7, tree.Nodes.Count);
        Assert.Equal(0.75, tree.Root.Q, Eps);
        Assert.Equal(new[] { 0.5, 1.0 }, tree.Root.Children.Select(c => tree.Nodes[c].Q));
        Assert.Equal(4, tree.Root.Visits);
        Assert.Equal(2, proposer.Requests.Select(r => r.Seed).Count() - 1); // one batched call per depth: root, then a and b together

        // Width cap: at most 3 paths, so only the first depth-1 node forks; branch-every forks at depths 0, 2, 4 ...
        var capped = await new TreeRolloutSearch(env, new CountingScript(_ => ["a", "b"]), new VerifierEvaluator(env),
            new TreeRolloutOptions(BranchFactor: 2, BranchDepths: [0, 1], MaxWidth: 3, DepthLimit: 2)).SearchAsync("tr", ToyTask);
        Assert.Equal(3, capped.Nodes.Count(n => n.Depth == 2));
        var deep = await new TreeRolloutSearch(Toy(), new CountingScript(_ => ["a", "b"]), new VerifierEvaluator(Toy()),
            new TreeRolloutOptions(BranchFactor: 2, BranchEvery: 2, MaxWidth: 16, DepthLimit: 3)).SearchAsync("tr", ToyTask);
        Assert.Equal(new[] { 2, 2, 4 }, Enumerable.Range(1, 3).Select(d => deep.Nodes.Count(n => n.Depth == d)));
    }

    // ---- factory and validation ----

    [Fact]
    public void Every_name_builds_its_search_and_bad_settings_get_one_line_errors()
    {
        foreach (var name in SearchAlgorithms.Names)
            Assert.Equal(name, Create(name, Toy(), new SeededToyProposer("ab")).Algorithm);
        var ok = new SearchConfig("mcts", 1, 1, 1, 1, 1, "visit-weighted");
        Assert.Null(SearchAlgorithms.Validate(ok));
        Assert.Contains("must be one of mcts, best-first, spar, beam, dfsdt, tree-rollout", SearchAlgorithms.Validate(ok with { Algorithm = "bfs" }));
        Assert.Contains("search.mcts.selection", SearchAlgorithms.Validate(ok with { Mcts = new MctsConfig(Selection: "ucb") }));
        Assert.Contains("search.spar.end-gate", SearchAlgorithms.Validate(ok with { Spar = new SparConfig(EndGate: 1) }));
        Assert.Contains("branch-depths", SearchAlgorithms.Validate(ok with { TreeRollout = new TreeRolloutConfig(BranchDepths: "0;x") }));
        Assert.Equal(new[] { 0, 3, 6 }, SearchAlgorithms.ParseDepths("0, 3,6"));
        var options = SearchAlgorithms.MctsOptions(ok with { Mcts = new MctsConfig(Selection: "ucb1", Value: "agent-q", AgentQAlpha: 0.3) }, 4, 1, 9);
        Assert.IsType<Ucb1Selection>(options.SelectionRule);
        Assert.Equal(new AgentQBackup(0.3), options.BackupRule);
        Assert.IsType<CriticRankValue>(options.ValueRule);
    }
}
