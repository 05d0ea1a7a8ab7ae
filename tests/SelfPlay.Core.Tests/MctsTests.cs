using System.Runtime.CompilerServices;
using System.Text.Json;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Core.Tests;

/// <summary>
/// Toy game for search tests: every step is one lowercase letter on its own line; after <c>gameDepth</c> letters the
/// episode ends with <c>rewards[path]</c> (0 when missing). Anything else ends the episode with reward 0.
/// </summary>
internal sealed class ToyTreeEnvironment(int gameDepth, IReadOnlyDictionary<string, double> rewards, string? throwOn = null) : IEnvironment
{
    public string Name => "toy-tree";
    public string StepStop => "\n";
    public string InitialState(EnvTask task) => $"Toy {task.Input}\n";

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        var move = action.Trim();
        if (throwOn is not null && move == throwOn) throw new InvalidOperationException("kaboom\nsecond line");
        var path = PathOf(state);
        if (path is null || path.Length >= gameDepth) return StepOutcome.End(OneLine(action) + "\n", 0, "no game to play");
        if (!IsMove(move)) return StepOutcome.End(OneLine(action) + "\n", 0, "not a move");
        var next = path + move;
        return next.Length < gameDepth ? StepOutcome.Continue(move + "\n") : StepOutcome.End(move + "\n", Reward(next), "leaf " + next);
    }

    /// <summary>From the text alone: a finished game of valid moves is worth its leaf reward.</summary>
    public (double Reward, string Reason) Verify(EnvTask task, string finalState) =>
        PathOf(finalState) is { } path && path.Length == gameDepth ? (Reward(path), "leaf " + path) : (0, "not a finished game");

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => null;

    double Reward(string path) => rewards.TryGetValue(path, out var r) ? r : 0;

    static bool IsMove(string s) => s.Length == 1 && s[0] is >= 'a' and <= 'z';
    static string OneLine(string s) => s.ReplaceLineEndings(" ");

    /// <summary>The letters played so far; null when a line after the header is not a move.</summary>
    public static string? PathOf(string state)
    {
        if (!state.StartsWith("Toy ", StringComparison.Ordinal) || !state.EndsWith('\n')) return null;
        var lines = state[..^1].Split('\n');
        return lines.Skip(1).All(IsMove) ? string.Concat(lines.Skip(1)) : null;
    }
}

/// <summary>Answers every request from a fixed script of the state; records the requests.</summary>
internal sealed class ScriptedProposer(Func<string, IReadOnlyList<ProposedStep>> script) : IStepProposer
{
    public List<ProposalRequest> Requests { get; } = [];

    public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default)
    {
        lock (Requests) Requests.AddRange(requests);
        return Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(requests.Select(r => script(r.State)).ToArray());
    }
}

public class MctsTests
{
    const double Eps = 1e-9;
    static readonly EnvTask ToyTask = new("toy", "t");

    static ProposedStep Step(string action, int[] tokens, params float[] logProbs) => new(action, tokens, logProbs);

    /// <summary>Trees are compared as JSON; the clocks are the only fields that are not a function of the inputs.</summary>
    internal static string Json(PreferenceTree tree)
    {
        foreach (var n in tree.Nodes) (n.CreatedAtMs, n.WallMs) = (0, 0);
        tree.CreatedAtUtc = default;
        tree.Stats = new SearchStats { ProposerCalls = tree.Stats.ProposerCalls, EvaluatorCalls = tree.Stats.EvaluatorCalls, GeneratedTokens = tree.Stats.GeneratedTokens };
        return JsonSerializer.Serialize(tree);
    }

    // ---- 1. algorithms.md §1.7 worked examples ----

    [Fact]
    public void Puct_matches_the_worked_example()
    {
        var pA = Mcts.Prior(Enumerable.Repeat(-0.75f, 8).ToArray(), 1.25);   // Σ = −6 over 8 tokens
        var pB = Mcts.Prior(Enumerable.Repeat(-1f, 10).ToArray(), 1.25);     // Σ = −10 over 10 tokens
        Assert.Equal(0.6402, pA, 0.00005);
        Assert.Equal(0.5699, pB, 0.00005);
        Assert.Equal(0.9061, Mcts.Puct(0.4, pA, 10, 3, 1.0), 0.00005);
        Assert.Equal(0.9003, Mcts.Puct(0.6, pB, 10, 5, 1.0), 0.00005);
        Assert.Equal(0.3003, Mcts.Puct(0, pB, 10, 5, 1.0), 0.00005); // U alone
        Assert.Equal(0, Mcts.Prior([], 1.25));
    }

    [Fact]
    public void SelectChild_picks_A_in_the_worked_example()
    {
        var tree = PreferenceTree.Create("t", "s\n");
        tree.Root.Visits = 10;
        // B first, so A must win on its score and not by the earlier-child tie rule.
        var b = tree.AddChild(0, new TreeNode { Action = "B", Q = 0.6, Visits = 5, Prior = Mcts.Prior(Enumerable.Repeat(-1f, 10).ToArray(), 1.25) });
        var a = tree.AddChild(0, new TreeNode { Action = "A", Q = 0.4, Visits = 3, Prior = Mcts.Prior(Enumerable.Repeat(-0.75f, 8).ToArray(), 1.25) });
        Assert.Same(a, Mcts.SelectChild(tree, tree.Root, 1.0));
        // Without exploration the higher Q wins.
        Assert.Same(b, Mcts.SelectChild(tree, tree.Root, 0.0));
    }

    [Fact]
    public void VisitWeightedValue_matches_the_worked_example()
    {
        var tree = PreferenceTree.Create("t", "s\n");
        foreach (var (q, n) in new[] { (0.9, 3), (-0.2, 1), (0.1, 0) }) tree.AddChild(0, new TreeNode { Q = q, Visits = n });
        Assert.Equal(0.52, Mcts.VisitWeightedValue(tree, tree.Root), Eps); // unvisited child weighs 1
    }

    [Fact]
    public void Backup_uses_the_incremental_reward_and_the_visit_weighted_value()
    {
        // root → x (Value .3) → y (Value 1, terminal); x also has an unvisited child z.
        static (PreferenceTree, TreeNode[]) Build()
        {
            var t = PreferenceTree.Create("t", "s\n");
            var x = t.AddChild(0, new TreeNode { Value = 0.3 });
            var y = t.AddChild(x.Index, new TreeNode { Value = 1.0, IsTerminal = true });
            t.AddChild(x.Index, new TreeNode { Value = 0 });
            return (t, [t.Root, x, y]);
        }

        var (tree, path) = Build();
        VisitWeightedBackup.Instance.Backup(tree, path);
        Assert.All(path, n => Assert.Equal(1, n.Visits));
        Assert.Equal(0.7, path[2].Q, Eps);                    // r(y) = 1 − .3, V(y) = 0
        Assert.Equal(0.35, path[1].V, Eps);                   // (1·.7 + 1·0) / 2
        Assert.Equal(0.65, path[1].Q, Eps);                   // r(x) = .3, + V
        Assert.Equal(0.65, path[0].V, Eps);
        Assert.Equal(0, path[0].Q);                           // the root has no edge
        Assert.Equal(0, tree.Nodes[3].Visits);

        (tree, path) = Build();
        MeanValueBackup.Instance.Backup(tree, path);
        Assert.All(path, n => Assert.Equal((1, 1.0, 1.0), (n.Visits, n.ValueSum, n.Q)));
    }

    // ---- 2. Golden toy tree ----

    // Golden/mcts-toy.json. Game: two letters; leaves aa=1 ab=0 ba=1 bb=0; VerifierEvaluator; c=1, λ=1.25, 10 sims.
    // Script: root → a(−.2,−.2), b(−.2,−.5), " a" (a duplicate: merged, a keeps its prior);
    //         a → aa(−.8,−.1), ab(−.3,−.8);  b → ba(−.8,−.3), bb(−.5,−.2).
    // Verified by hand (PUCT = Q + p·√max(1,N)/(1+n); backup of algorithms.md §1.1; unvisited children weigh 1 with
    // their initial Q = r, which is 0 for every child that stays unvisited here; at N = 0 the prior decides):
    //   p = exp(Σlogp/2^1.25): a .845202, b .745043, aa .684954, ab .629712, ba .629712, bb .745043.
    //   sim root scores (a | b)           → pick   inner scores                  → leaf  after: Q(a), Q(b)
    //   0   N=0: by prior .845 | .745      → a      a N=0: Q₀(aa)=r=1 wins        → aa    .5 (=(1+0)/2), 0
    //   1   .5+.4226 | .7450              → a      aa 1.3425 | ab .6297          → aa    .6667
    //   2   1.0651 | 1.0536               → a      aa 1.3229 | ab .8905          → aa    .75
    //   3   1.1160 | 1.2905               → b      b N=0: Q₀(ba)=r=1 wins        → ba    .75, .5
    //   4   1.1726 | 1.2450               → b      ba 1.3149 | bb .7450          → ba    .75, .6667
    //   5   1.22248 | 1.22199             → a      aa 1.2966 | ab 1.0907         → aa    .8
    //   6   1.2141 | 1.2750               → b      ba 1.2968 | bb 1.0536         → ba    .8, .75
    //   7   1.2472 | 1.2428               → a      aa 1.2740 | ab 1.2594         → aa    .8333
    //   8   1.2318 | 1.2768               → b      ba 1.2727 | bb 1.2905         → bb    .8333, .75 (=(3·1+1·0)/4)
    //   9   1.2559 | 1.1970               → a      aa 1.2553 | ab 1.4081         → ab    .8333 (=(5·1+1·0)/6)
    //   Final N: root 10, a 6, b 4, aa 5, ab 1, ba 3, bb 1; V(root) = (6·5/6 + 4·.75)/10 = .8.
    // The script was chosen so every decision and value above is the same under the MCTS-DPO reference's extra
    // root.N += 1 per iteration and its Q = r + V(parent) initialisation (only root visits would differ: 20).
    static readonly Dictionary<string, double> GoldenRewards = new() { ["aa"] = 1, ["ab"] = 0, ["ba"] = 1, ["bb"] = 0 };

    static IReadOnlyList<ProposedStep> GoldenScript(string state) => ToyTreeEnvironment.PathOf(state) switch
    {
        "" => [Step("a", [11, 10], -0.2f, -0.2f), Step("b", [12, 10], -0.2f, -0.5f), Step(" a", [13, 11, 10], -1f, -1f, -1f)],
        "a" => [Step("a", [11, 10], -0.8f, -0.1f), Step("b", [12, 10], -0.3f, -0.8f)],
        "b" => [Step("a", [11, 10], -0.8f, -0.3f), Step("b", [12, 10], -0.5f, -0.2f)],
        _ => [],
    };

    sealed record GoldenNode(int Index, int Parent, int Depth, string Action, int Visits, double Q, double V,
        bool IsTerminal, double? TerminalReward, double Prior);

    static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    [Fact]
    public async Task Toy_search_matches_the_golden_tree()
    {
        var env = new ToyTreeEnvironment(2, GoldenRewards);
        var options = new MctsOptions(Simulations: 10, Expansions: 3, Selection: new PuctSelection(1.0), LengthPenalty: 1.25, DepthLimit: 4, Seed: 7);
        var tree = await new Mcts(env, new ScriptedProposer(GoldenScript), new VerifierEvaluator(env), options).SearchAsync("golden", ToyTask);

        var nodes = tree.Nodes.Select(n => new GoldenNode(n.Index, n.Parent, n.Depth, n.Action, n.Visits, Math.Round(n.Q, 6),
            Math.Round(n.V, 6), n.IsTerminal, n.TerminalReward, Math.Round(n.Prior, 6))).ToList();
        var json = JsonSerializer.Serialize(new { simulations = options.Simulations, nodes },
            new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }).ReplaceLineEndings("\n") + "\n";

        if (Environment.GetEnvironmentVariable("SELFPLAY_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(Path.Combine(SourceDirectory(), "Golden", "mcts-toy.json"), json);
            return;
        }
        var expected = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", "mcts-toy.json")).ReplaceLineEndings("\n");
        Assert.Equal(expected, json);

        // The hand-checked numbers, so a blind regeneration of the fixture cannot hide a change.
        Assert.Equal(new[] { 10, 6, 4, 5, 1, 3, 1 }, tree.Nodes.Select(n => n.Visits));
        Assert.Equal(new[] { "", "a", "b", "a", "b", "a", "b" }, tree.Nodes.Select(n => n.Action));
        Assert.Equal(0.8, tree.Root.V, Eps);
        Assert.Equal(5.0 / 6, tree.Nodes[1].Q, Eps);
        Assert.Equal(0.75, tree.Nodes[2].Q, Eps);
        Assert.Equal(new[] { 11, 10 }, tree.Nodes[1].TokenIds); // the first spelling of the merged duplicate is kept
    }

    // ---- 3. Properties over random scripted toys ----

    /// <summary>A random toy: depth 1–3, 2–4 letters, leaf rewards in {0,1}, 0–4 proposals per state (duplicates,
    /// other spellings and invalid moves included), random options. Everything is a function of the seed.</summary>
    sealed class RandomToy
    {
        public required ToyTreeEnvironment Env { get; init; }
        public required Dictionary<string, List<ProposedStep>> Script { get; init; }
        public required MctsOptions Options { get; init; }

        public IReadOnlyList<ProposedStep> Propose(string state) =>
            ToyTreeEnvironment.PathOf(state) is { } path && Script.TryGetValue(path, out var steps) ? steps : [];

        public static RandomToy Create(int seed, IBackupRule backup)
        {
            var rng = new Random(seed);
            var depth = 1 + rng.Next(3);
            var letters = "abcd"[..(2 + rng.Next(3))];
            var paths = new List<string> { "" };
            for (var d = 0; d < depth; d++) paths.AddRange(paths.Where(p => p.Length == d).SelectMany(p => letters.Select(l => p + l)).ToList());
            var rewards = paths.Where(p => p.Length == depth).ToDictionary(p => p, _ => (double)rng.Next(2));
            var script = new Dictionary<string, List<ProposedStep>>();
            foreach (var p in paths.Where(p => p.Length < depth))
            {
                var count = rng.Next(10) == 0 ? 0 : 1 + rng.Next(4);
                script[p] = Enumerable.Range(0, count).Select(_ =>
                {
                    var action = rng.Next(8) switch { 0 => "?", 1 => " " + letters[rng.Next(letters.Length)], _ => letters[rng.Next(letters.Length)].ToString() };
                    var n = 1 + rng.Next(4);
                    return new ProposedStep(action, Enumerable.Range(0, n).Select(_ => rng.Next(1000)).ToArray(),
                        Enumerable.Range(0, n).Select(_ => -3f * rng.NextSingle()).ToArray());
                }).ToList();
            }
            var options = new MctsOptions(Simulations: 1 + rng.Next(40), Expansions: 4, Selection: new PuctSelection(new[] { 0.5, 1.0, 2.0 }[rng.Next(3)]),
                DepthLimit: 1 + rng.Next(4), Backup: backup, Seed: seed);
            return new RandomToy { Env = new ToyTreeEnvironment(depth, rewards), Script = script, Options = options };
        }

        public Task<PreferenceTree> SearchAsync() =>
            new Mcts(Env, new ScriptedProposer(Propose), new VerifierEvaluator(Env), Options).SearchAsync("random", ToyTask);
    }

    // Conservation for this MCTS: each simulation adds 1 to every node on its root→leaf path, and a path only ends at
    // a node without children (terminal, at the depth limit, or where expansion failed); a node is expanded on its
    // first arrival. Hence root.Visits == Simulations, Visits == Σ children's Visits for every node with children,
    // and the childless nodes' Visits sum to Simulations (each is the number of paths that ended there).
    [Fact]
    public async Task Random_toys_conserve_visits_merge_duplicates_and_keep_Q_in_reward_range()
    {
        int merged = 0, deadEnds = 0, cutOff = 0, solved = 0;
        for (var seed = 0; seed < 50; seed++)
        {
            var toy = RandomToy.Create(seed, VisitWeightedBackup.Instance);
            var tree = await toy.SearchAsync();
            var sims = toy.Options.Simulations;
            var why = $"seed {seed}";

            Assert.True(sims == tree.Root.Visits, why);
            Assert.True(sims == tree.Nodes.Where(n => n.Children.Count == 0).Sum(n => n.Visits), why);
            foreach (var n in tree.Nodes)
            {
                if (n.Children.Count > 0) Assert.True(n.Visits == n.Children.Sum(c => tree.Nodes[c].Visits), $"{why} node {n.Index}");
                // Visited, open and above the depth limit ⇒ expanded (or marked terminal when nothing was proposed).
                if (n.Visits > 0 && !n.IsTerminal) Assert.True(n.Children.Count > 0 || n.Depth >= toy.Options.DepthLimit, $"{why} node {n.Index}");
                Assert.InRange(n.Q, 0.0, 1.0);
                Assert.InRange(n.V, 0.0, 1.0);
                if (n.Visits == 0) Assert.Equal(0, n.Q);
                Assert.True(n.Children.Select(c => tree.Nodes[c].StepText).Distinct().Count() == n.Children.Count, $"{why} node {n.Index}: duplicate children");
                if (n.IsTerminal && n.Children.Count == 0 && n.Index > 0)
                    Assert.Equal(toy.Env.Verify(ToyTask, tree.StateAt(n.Index)).Reward, n.TerminalReward);
            }

            // Children are the proposals, merged by resulting text in proposal order, first spelling kept.
            foreach (var n in tree.Nodes.Where(n => n.Children.Count > 0))
            {
                var state = tree.StateAt(n.Index);
                var expected = toy.Propose(state).DistinctBy(s => toy.Env.Step(ToyTask, state, s.Action).Appended).ToList();
                Assert.Equal(expected.Select(s => $"{s.Action}:{string.Join(',', s.TokenIds)}"),
                    n.Children.Select(c => $"{tree.Nodes[c].Action}:{string.Join(',', tree.Nodes[c].TokenIds)}"));
                Assert.All(n.Children, c => Assert.Equal(Mcts.Prior(tree.Nodes[c].LogProbs, toy.Options.LengthPenalty), tree.Nodes[c].Prior));
                merged += toy.Propose(state).Count - n.Children.Count;
            }
            deadEnds += tree.Nodes.Count(n => n.TerminalReason == "the policy proposed no step");
            cutOff += tree.Nodes.Count(n => n.Visits > 0 && !n.IsTerminal && n.Children.Count == 0);
            solved += tree.Solved ? 1 : 0;
        }
        // The seeds do reach every case above.
        Assert.True(merged > 0 && deadEnds > 0 && cutOff > 0 && solved > 0 && solved < 50, $"{merged} {deadEnds} {cutOff} {solved}");
    }

    [Fact]
    public async Task Same_seed_and_script_give_the_same_tree()
    {
        var differentShapes = new HashSet<string>();
        for (var seed = 0; seed < 50; seed++)
        {
            var a = Json(await RandomToy.Create(seed, VisitWeightedBackup.Instance).SearchAsync());
            var b = Json(await RandomToy.Create(seed, VisitWeightedBackup.Instance).SearchAsync());
            Assert.Equal(a, b);
            differentShapes.Add(a);
        }
        Assert.True(differentShapes.Count > 40, "the random toys should not all look alike");
    }

    [Fact]
    public async Task MeanValue_backup_keeps_Q_the_mean_of_backed_up_leaf_values()
    {
        for (var seed = 0; seed < 50; seed++)
        {
            var toy = RandomToy.Create(seed, MeanValueBackup.Instance);
            var tree = await toy.SearchAsync();
            Assert.Equal(toy.Options.Simulations, tree.Root.Visits);
            foreach (var n in tree.Nodes)
            {
                if (n.Visits == 0)
                {
                    Assert.Equal((0.0, 0.0), (n.ValueSum, n.Q));
                    continue;
                }
                Assert.Equal(n.ValueSum / n.Visits, n.Q, Eps);
                Assert.InRange(n.Q, 0.0, 1.0);
                // W flows up unchanged: a node's W is its children's W, or (for a path end) visits × its own value.
                var w = n.Children.Count > 0 ? n.Children.Sum(c => tree.Nodes[c].ValueSum) : n.Visits * n.Value;
                Assert.Equal(w, n.ValueSum, Eps);
            }
        }
    }

    // ---- 4, 5. Failures inside the search ----

    [Fact]
    public async Task An_environment_exception_ends_only_that_branch()
    {
        var env = new ToyTreeEnvironment(2, GoldenRewards, throwOn: "boom");
        var proposer = new ScriptedProposer(s => ToyTreeEnvironment.PathOf(s) switch
        {
            "" => [Step("boom", [1, 10], -0.01f, -0.01f), Step("a", [11, 10], -1f, -1f)],
            "a" => [Step("a", [11, 10], -0.5f, -0.5f)],
            _ => [],
        });
        var tree = await new Mcts(env, proposer, new VerifierEvaluator(env), new MctsOptions(Simulations: 6)).SearchAsync("boom", ToyTask);

        Assert.Equal(6, tree.Root.Visits);
        var boom = tree.Nodes.Single(n => n.Action == "boom");
        Assert.True(boom.IsTerminal);
        Assert.Equal(0, boom.TerminalReward);
        Assert.StartsWith("environment error", boom.TerminalReason);
        Assert.DoesNotContain('\n', boom.TerminalReason!);
        Assert.Equal("boom\n", boom.StepText);
        Assert.True(boom.Visits > 0);
        // The other branch was still searched and solved.
        Assert.True(tree.Solved);
        Assert.Contains(tree.Nodes, n => n.Depth == 2 && n.TerminalReward == 1);
    }

    [Fact]
    public async Task No_proposals_at_the_root_make_it_terminal_with_reward_0()
    {
        var env = new ToyTreeEnvironment(2, GoldenRewards);
        var tree = await new Mcts(env, new ScriptedProposer(_ => []), new VerifierEvaluator(env), new MctsOptions(Simulations: 5)).SearchAsync("empty", ToyTask);
        Assert.Single(tree.Nodes);
        Assert.True(tree.Root.IsTerminal);
        Assert.Equal(0, tree.Root.TerminalReward);
        Assert.Equal(5, tree.Root.Visits);
        Assert.False(tree.Solved);
    }

    [Fact]
    public async Task No_proposals_below_the_root_end_that_node_and_the_search_goes_on()
    {
        var env = new ToyTreeEnvironment(2, GoldenRewards);
        var proposer = new ScriptedProposer(s => ToyTreeEnvironment.PathOf(s) switch
        {
            "" => [Step("a", [11, 10], -0.1f, -0.1f), Step("b", [12, 10], -0.1f, -0.1f)],
            "b" => [Step("a", [11, 10], -0.1f, -0.1f)],
            _ => [],
        });
        var tree = await new Mcts(env, proposer, new VerifierEvaluator(env), new MctsOptions(Simulations: 8)).SearchAsync("dead-end", ToyTask);
        var a = tree.Nodes.Single(n => n.Depth == 1 && n.Action == "a");
        Assert.True(a.IsTerminal);
        Assert.Equal(0, a.TerminalReward);
        Assert.Empty(a.Children);
        Assert.True(a.Visits > 0);
        Assert.Equal(8, tree.Root.Visits);
        Assert.True(tree.Solved); // b → ba = 1
        // Nodes are expanded once: the dead end was asked for steps exactly once.
        Assert.Single(proposer.Requests, r => ToyTreeEnvironment.PathOf(r.State) == "a");
    }

    // ---- 8. Greedy evaluation ----

    [Fact]
    public async Task Greedy_evaluation_counts_exactly_the_solved_tasks()
    {
        static string[] Solution(string puzzle) =>
            Game24Solver.Solve(Game24Puzzles.Parse(puzzle))[0].Operations.Select(o => o.ToString()).ToArray();
        // Puzzle → the actions the scripted policy plays; null = it proposes nothing.
        var script = new Dictionary<string, string[]?>
        {
            ["4 5 6 10"] = Solution("4 5 6 10"),
            ["3 3 8 8"] = Solution("3 3 8 8"),                 // needs fractions
            ["6 6 6 6"] = ["6 + 6", "12 + 6", "18 + 6"],       // solved by hand
            ["1 1 1 1"] = ["1 + 1", "1 + 1", "2 + 2"],         // valid moves, ends at 4
            ["2 3 5 12"] = ["hello", "world", "!"],            // garbage
            ["1 3 4 6"] = null,
        };
        var env = new Game24Environment(Game24StepMode.Operation);
        var tasks = script.Keys.Select(p => new EnvTask(p.Replace(' ', '-'), p)).ToList();
        var proposer = new ScriptedProposer(state =>
        {
            var lines = state.TrimEnd('\n').Split('\n');
            var actions = script[lines[0]["Input: ".Length..]];
            var done = lines.Length - 1;
            return actions is null || done >= actions.Length ? [] : [new ProposedStep(actions[done], [1], [-0.1f])];
        });

        var result = await Evaluation.GreedyAsync(env, tasks, proposer, maxSteps: 8, batchSize: 4);
        Assert.Equal(new EvalResult(3, 6), result);
        Assert.Equal(0.5, result.Rate);
        Assert.All(proposer.Requests, r => Assert.Equal((1, 0.0), (r.Count, r.Temperature)));

        // Every solution takes three operations.
        Assert.Equal(new EvalResult(0, 6), await Evaluation.GreedyAsync(env, tasks, proposer, maxSteps: 2, batchSize: 4));

        // Through IEnvironmentSteps (environment actors in a campaign): the same result, every initial state, step and
        // final-state verification asked there.
        var recording = new RecordingSteps(env);
        Assert.Equal(new EvalResult(3, 6), await Evaluation.GreedyAsync(env, tasks, proposer, maxSteps: 8, batchSize: 4, steps: recording));
        Assert.Equal(6, recording.InitialStates);
        Assert.True(recording.Verifications >= 3, $"{recording.Verifications} verifications");
        Assert.All(recording.BatchSizes, n => Assert.Equal(1, n));
    }
}
