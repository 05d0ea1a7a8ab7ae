using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Tests;

/// <summary>Every extractor on small golden trees (worked examples of algorithms.md where there are some).</summary>
public class ExtractorTests
{
    static int _token = 10;

    static TreeNode N(string action, double q = 0, int visits = 1, double? reward = null, Dictionary<string, double>? critic = null) => new()
    {
        Action = action, StepText = action + "\n", TokenIds = [_token++, 5], LogProbs = [-0.5f, -0.25f], Q = q, Visits = visits,
        IsTerminal = reward is not null, TerminalReward = reward, CriticScores = critic ?? [],
    };

    static IReadOnlyList<PreferenceExample> Run(string extractor, PreferenceTree tree, ExtractorOptions? options = null, int seed = 0) =>
        Extractors.Get(extractor).Extract(tree, options ?? new ExtractorOptions(), new Random(seed));

    static string Texts(Candidate c) => c.Text.Replace("\n", "|");

    /// <summary>root → a (→ a1 solved, a2 failed), b (→ b1 failed): the tree most tests share.</summary>
    static PreferenceTree Small()
    {
        var t = PreferenceTree.Create("small", "P\n");
        var a = t.AddChild(0, N("a", 0.6, 3));
        var b = t.AddChild(0, N("b", 0.1, 2));
        t.AddChild(a.Index, N("a1", 1, 2, reward: 1));
        t.AddChild(a.Index, N("a2", 0.2, 1, reward: 0.2));
        t.AddChild(b.Index, N("b1", 0, 2, reward: 0));
        return t;
    }

    [Fact]
    public void Solved_paths_are_the_verified_solutions_from_the_root_deduplicated_most_visited_first()
    {
        var t = Small();
        var b = t.Nodes[2];
        t.AddChild(b.Index, N("b2", 1, 5, reward: 1)); // a second solution, more visited
        t.AddChild(b.Index, N("b2", 1, 1, reward: 1)); // the same text again
        var examples = Run("solved-paths", t);
        Assert.Equal(["b|b2|", "a|a1|"], examples.Select(e => Texts(e.Candidates[0])));
        Assert.All(examples, e => Assert.Equal((ExampleKind.Demonstration, "P\n", 1), (e.Kind, e.Prompt, e.Candidates.Count)));
        Assert.Equal([5, 2], examples.Select(e => e.Candidates[0].Visits));
        Assert.Single(Run("solved-paths", t, new ExtractorOptions(MaxPerTree: 1)));
        Assert.Empty(Run("solved-paths", PreferenceTree.Create("none", "P\n")));
    }

    [Fact]
    public void Visit_distribution_gives_the_visited_children_their_tempered_visit_shares()
    {
        var t = PreferenceTree.Create("t", "P\n");
        t.AddChild(0, N("lo", 0.9, 1));
        t.AddChild(0, N("hi", 0.2, 6));
        t.AddChild(0, N("mid", 0.5, 3));
        t.AddChild(0, N("never", 0.7, 0)); // unvisited: no invented share
        var e = Assert.Single(Run("visit-distribution", t));
        Assert.Equal((ExampleKind.Distribution, "P\n"), (e.Kind, e.Prompt));
        Assert.Equal(["hi\n", "mid\n", "lo\n"], e.Candidates.Select(c => c.Text));
        Assert.Equal([0.6, 0.3, 0.1], e.Candidates.Select(c => Math.Round(c.Score, 12)));
        // τ = 0.5 squares the counts: 36, 9, 1 of 46.
        var sharp = Assert.Single(Run("visit-distribution", t, new ExtractorOptions(VisitTemperature: 0.5)));
        Assert.Equal([0.782609, 0.195652, 0.021739], sharp.Candidates.Select(c => Math.Round(c.Score, 6)));
        // An empty child leaves; the others' shares are renormalised.
        t.Nodes[1].StepText = "";
        var kept = Assert.Single(Extractors.ExtractAll(Extractors.Get("visit-distribution"), [t], new ExtractorOptions(), 0));
        Assert.Equal([0.666667, 0.333333], kept.Candidates.Select(c => Math.Round(c.Score, 6)));
        Assert.DoesNotContain(Run("visit-distribution", Small()), x => x.Prompt == "P\nb\n"); // one visited child: nothing to distil
    }

    [Fact]
    public void The_solution_buffer_keeps_the_newest_solution_of_every_task_ever_solved()
    {
        PreferenceTree Tree(string task, int iteration, bool solved)
        {
            var t = PreferenceTree.Create(PreferenceTree.MakeId("c", iteration, task), "P\n");
            (t.TaskId, t.Iteration) = (task, iteration);
            t.AddChild(0, N($"{task}-{iteration}", solved ? 1 : 0, 1, reward: solved ? 1 : 0));
            return t;
        }
        // x solved in 1 and 2 (the newest wins), y solved in 1 and failed in 3 (kept from 1), z never solved.
        var trees = new[] { Tree("x", 1, true), Tree("y", 1, true), Tree("z", 1, false), Tree("x", 2, true), Tree("y", 3, false), Tree("z", 3, false) };
        var buffer = SolutionBuffer.NewestSolved(trees.Reverse());
        Assert.Equal(["c/1/y/0", "c/2/x/0"], buffer.Select(t => t.TreeId));
        Assert.Empty(SolutionBuffer.NewestSolved(trees.Where(t => !t.Solved)));
    }

    [Fact]
    public void A_candidate_without_text_never_enters_a_pair_and_leaves_a_list()
    {
        var t = PreferenceTree.Create("t", "P\n");
        t.AddChild(0, N("hi", 0.9, 6));
        t.AddChild(0, N("mid", 0.5, 3));
        var empty = t.AddChild(0, N("", 0.1, 2));
        empty.StepText = ""; // the policy stopped at once and the environment wrote nothing: no token to train on
        Assert.Single(Extractors.Get("mcts-dpo").Extract(t, new ExtractorOptions(), new Random(0))); // what the extractor alone gives
        Assert.Empty(Extractors.ExtractAll(Extractors.Get("mcts-dpo"), [t], new ExtractorOptions(), 0));
        var list = Assert.Single(Extractors.ExtractAll(Extractors.Get("ranked-lists"), [t], new ExtractorOptions(), 0));
        Assert.Equal(["hi\n", "mid\n"], list.Candidates.Select(c => c.Text));

        // Two steps that read the same (different tokens, one text) make a pair that teaches nothing: dropped.
        var same = PreferenceTree.Create("same", "P\n");
        same.AddChild(0, N("x", 0.9, 3));
        same.AddChild(0, N("x", 0.1, 2));
        Assert.Single(Extractors.Get("mcts-dpo").Extract(same, new ExtractorOptions(), new Random(0)));
        Assert.Empty(Extractors.ExtractAll(Extractors.Get("mcts-dpo"), [same], new ExtractorOptions(), 0));

        // With the learner's test of a candidate (here: a step that is all environment text has no policy token), a
        // candidate with text can be empty too.
        var envOnly = PreferenceTree.Create("env", "P\n");
        envOnly.AddChild(0, N("good", 0.9, 6));
        envOnly.AddChild(0, N("ok", 0.5, 3));
        envOnly.AddChild(0, N("= 4 (left: 4)", 0.1, 2));
        bool Policy(string _, Candidate c) => !c.Text.StartsWith('=');
        Assert.Single(Extractors.ExtractAll(Extractors.Get("mcts-dpo"), [envOnly], new ExtractorOptions(), 0)); // by text: a pair
        Assert.Empty(Extractors.ExtractAll(Extractors.Get("mcts-dpo"), [envOnly], new ExtractorOptions(), 0, Policy));
        var kept = Assert.Single(Extractors.ExtractAll(Extractors.Get("ranked-lists"), [envOnly], new ExtractorOptions(), 0, Policy));
        Assert.Equal(["good\n", "ok\n"], kept.Candidates.Select(c => c.Text));
    }

    [Fact]
    public void Mcts_dpo_pairs_best_against_worst_or_a_random_other_with_visit_smoothing()
    {
        var t = PreferenceTree.Create("t", "P\n");
        t.AddChild(0, N("hi", 0.9, 6));
        t.AddChild(0, N("mid", 0.5, 3));
        t.AddChild(0, N("lo", 0.1, 2));
        var worst = Assert.Single(Run("mcts-dpo", t));
        Assert.Equal(("hi\n", "lo\n"), (worst.Candidates[0].Text, worst.Candidates[1].Text));
        Assert.Equal((0.9, 0.1), (worst.Candidates[0].Score, worst.Candidates[1].Score));
        Assert.Equal(0.25, worst.LabelSmoothing, 12); // N_w 6, N_l 2
        var rejected = Enumerable.Range(0, 40).Select(s => Run("mcts-dpo", t, new ExtractorOptions(Rejected: "random"), s).Single().Candidates[1].Text).ToHashSet();
        Assert.Equal(new HashSet<string> { "mid\n", "lo\n" }, rejected); // never the best itself
        Assert.Equal(2, Run("mcts-dpo", Small()).Count);
        Assert.Single(Run("mcts-dpo", Small(), new ExtractorOptions(MaxPerTree: 1)));
    }

    [Fact]
    public void Tree_plv_pairs_siblings_whose_success_rates_differ_by_the_margin()
    {
        // §5.5: 7/8 vs 3/8 successes is a pair (gap .5); 5/8 vs 3/8 is not (gap .25).
        var t = PreferenceTree.Create("plv", "P\n");
        foreach (var (name, wins) in new[] { ("A", 7), ("B", 3), ("C", 5) })
        {
            var child = t.AddChild(0, N(name, 0, 8));
            for (var i = 0; i < 8; i++) t.AddChild(child.Index, N($"{name}{i}", 0, 1, reward: i < wins ? 1 : 0));
        }
        var all = Run("tree-plv", t);
        Assert.Equal(1 + 7 * 1 + 3 * 5 + 5 * 3, all.Count); // leaf siblings pair too: solved (1) vs failed (0)
        var pair = Assert.Single(all, p => p.Prompt == "P\n");
        Assert.Equal((0.875, 0.375), (pair.Candidates[0].Score, pair.Candidates[1].Score));
        Assert.Equal("A|A0|", Texts(pair.Candidates[0]));   // completed below the branch
        Assert.Equal(2, pair.Candidates[0].Steps.Count);
        Assert.Equal(3, Run("tree-plv", t, new ExtractorOptions(Margin: 0.25)).Count(p => p.Prompt == "P\n"));
    }

    [Fact]
    public void Step_apo_pairs_carry_both_Q_values_across_the_center()
    {
        var t = PreferenceTree.Create("apo", "P\n");
        t.AddChild(0, N("p8", 0.8, 2));
        t.AddChild(0, N("p6", 0.6, 2));
        t.AddChild(0, N("p2", 0.2, 2));
        var s = t.AddChild(0, N("s", 0.5, 3));
        t.AddChild(s.Index, N("s9", 0.9, 1, reward: 1));
        t.AddChild(s.Index, N("s5", 0.45, 1, reward: 0.2));
        t.AddChild(s.Index, N("s1", 0.1, 1, reward: 0));
        var pairs = Run("step-apo", t, new ExtractorOptions(QCenter: 0.5)).Select(p => (Math.Round(p.Candidates[0].Score, 12), Math.Round(p.Candidates[1].Score, 12))).ToList();
        // Plans: all above × below; solutions: max vs min only, their Q scaled by 0.3 (§6.3).
        Assert.Equal([(0.8, 0.2), (0.6, 0.2), (0.27, 0.03)], pairs);
        Assert.Empty(Run("step-apo", t, new ExtractorOptions(QCenter: 0)));
    }

    [Fact]
    public void Spar_pairs_each_failure_with_the_solved_response_sharing_its_longest_prefix()
    {
        var pairs = Run("spar", Small());
        Assert.Equal(2, pairs.Count);
        Assert.All(pairs, p => Assert.Equal("P\n", p.Prompt));
        Assert.Equal(("a|a1|", "a|a2|"), (Texts(pairs[0].Candidates[0]), Texts(pairs[0].Candidates[1])));
        Assert.Equal(("a|a1|", "b|b1|"), (Texts(pairs[1].Candidates[0]), Texts(pairs[1].Candidates[1])));
    }

    [Fact]
    public void Success_path_pairs_the_on_path_child_against_each_sibling()
    {
        var pairs = Run("success-path", Small());
        Assert.Equal([("P\n", "a\n", "b\n"), ("P\na\n", "a1\n", "a2\n")], pairs.Select(p => (p.Prompt, p.Candidates[0].Text, p.Candidates[1].Text)));
        var unsolved = PreferenceTree.Create("u", "P\n");
        unsolved.AddChild(0, N("x", 0, 1, reward: 0));
        unsolved.AddChild(0, N("y", 0, 1, reward: 0));
        Assert.Empty(Run("success-path", unsolved));
    }

    [Fact]
    public void Agent_q_mixes_mcts_and_critic_values_and_keeps_pairs_over_the_threshold()
    {
        // §8.5: α = .5; a1 (.75, critic 1) → .875, a2 (.25, .5) → .375, a3 (0, 0) → 0; θ = .25 keeps all three pairs.
        var t = PreferenceTree.Create("aq", "P\n");
        // An alphabetically earlier critic ("aaa") is never the one mixed in: the named one ("rank") is.
        t.AddChild(0, N("a1", 0.75, 4, critic: new() { ["rank"] = 1.0, ["aaa"] = 0 }));
        t.AddChild(0, N("a2", 0.25, 4, critic: new() { ["rank"] = 0.5, ["aaa"] = 1 }));
        t.AddChild(0, N("a3", 0.0, 1, critic: new() { ["rank"] = 0.0, ["aaa"] = 1 }));
        var pairs = Run("agent-q", t, new ExtractorOptions(QThreshold: 0.25, CriticWeight: 0.5, Critic: "rank"));
        Assert.Equal([(0.875, 0.375), (0.875, 0.0), (0.375, 0.0)], pairs.Select(p => (p.Candidates[0].Score, p.Candidates[1].Score)));
        Assert.Equal(2, Run("agent-q", t, new ExtractorOptions(QThreshold: 0.4, CriticWeight: 0.5, Critic: "rank")).Count);
        // A node the named critic did not score enters no pair; critic-weight 1 is Q alone, whatever the scores.
        t.AddChild(0, N("a4", 0.5, 2));
        Assert.Equal(3, Run("agent-q", t, new ExtractorOptions(QThreshold: 0.25, CriticWeight: 0.5, Critic: "rank")).Count);
        Assert.Equal([(0.75, 0.25), (0.75, 0.0), (0.75, 0.5), (0.25, 0.0), (0.5, 0.25), (0.5, 0.0)],
            Run("agent-q", t, new ExtractorOptions(QThreshold: 0.25)).Select(p => (p.Candidates[0].Score, p.Candidates[1].Score)));
        Assert.All(pairs, p => Assert.Equal(new[] { -0.5f, -0.25f }, p.Candidates[0].Steps[0].LogProbs)); // behaviour log-probs kept
    }

    [Fact]
    public void Tree_plv_with_margin_zero_never_pairs_a_step_with_itself()
    {
        var t = PreferenceTree.Create("z", "P\n");
        t.AddChild(0, N("a", 0, 8)).LookAheadRewards = [1, 0];
        t.AddChild(0, N("b", 0, 8)).LookAheadRewards = [1, 0];
        var pairs = Run("tree-plv", t, new ExtractorOptions(Margin: 0));
        Assert.Equal([("a\n", "b\n"), ("b\n", "a\n")], pairs.Select(p => (p.Candidates[0].Text, p.Candidates[1].Text)));
    }

    [Fact]
    public void Ranked_lists_sort_children_by_Q_with_per_step_spans()
    {
        var lists = Run("ranked-lists", Small());
        Assert.Equal(2, lists.Count);
        var root = lists[0];
        Assert.Equal(ExampleKind.List, root.Kind);
        Assert.Equal(["a|a1|", "b|b1|"], root.Candidates.Select(Texts));
        Assert.Equal([2, 2], root.Candidates.Select(c => c.Steps.Count));
        Assert.Equal(["a1|", "a2|"], lists[1].Candidates.Select(Texts));
        Assert.Single(Run("ranked-lists", Small(), new ExtractorOptions(MinQGap: 0.6)));
        Assert.Empty(Run("ranked-lists", Small(), new ExtractorOptions(MinListSize: 3)));
    }

    [Fact]
    public void Trajectory_pairs_are_best_against_worst_full_responses()
    {
        var pair = Assert.Single(Run("trajectory", Small()));
        Assert.Equal(("a|a1|", "b|b1|"), (Texts(pair.Candidates[0]), Texts(pair.Candidates[1])));
    }

    /// <summary>root → c1 (leaves .8, .6), c2 (leaves .4, .2)</summary>
    static PreferenceTree Rollouts(double[] leaves)
    {
        var t = PreferenceTree.Create("r", "P\n");
        var c1 = t.AddChild(0, N("c1"));
        var c2 = t.AddChild(0, N("c2"));
        t.AddChild(c1.Index, N("l1", reward: leaves[0]));
        t.AddChild(c1.Index, N("l2", reward: leaves[1]));
        t.AddChild(c2.Index, N("l3", reward: leaves[2]));
        t.AddChild(c2.Index, N("l4", reward: leaves[3]));
        return t;
    }

    [Fact]
    public void Branchgrpo_z_scores_node_rewards_per_depth()
    {
        var examples = Run("branchgrpo", Rollouts([0.8, 0.6, 0.4, 0.2]));
        var a = examples.Select(e => Math.Round(e.Candidates[0].Score, 4)).ToList();
        Assert.Equal([0.7071, -0.7071, 1.1619, 0.3873, -0.3873, -1.1619], a); // §9.1
        Assert.Equal("P\nc1\n", examples[2].Prompt); // each edge is trained from its parent's state
        Assert.All(examples, e => Assert.Equal(ExampleKind.Advantage, e.Kind));
    }

    [Fact]
    public void Treerpo_centres_rewards_within_sibling_groups()
    {
        var a = Run("treerpo", Rollouts([0.8, 0.6, 0.4, 0.2])).Select(e => Math.Round(e.Candidates[0].Score, 6)).ToList();
        Assert.Equal([0.2, -0.2, 0.1, -0.1, 0.1, -0.1], a);
    }

    [Fact]
    public void Treepo_averages_ancestor_subgroup_advantages_and_whitens()
    {
        var tree = Rollouts([1, 0, 1, 1]);
        var raw = Run("treepo", tree).Select(e => e.Candidates[0].Score).ToList();
        Assert.Equal([0.375, -0.625, 0.125, 0.125], raw); // §9.3
        var whitened = Extractors.ExtractAll(Extractors.Get("treepo"), [tree], new ExtractorOptions(), 0).Select(e => Math.Round(e.Candidates[0].Score, 4));
        Assert.Equal([1.0, -1.6667, 0.3333, 0.3333], whitened);
        var sized = Run("treepo", tree, new ExtractorOptions(TreePoWeighting: "group-size")).Select(e => e.Candidates[0].Score).ToList();
        Assert.Equal((4 * 0.25 + 2 * 0.5) / 6, sized[0], 12);
        Assert.Equal("c1|l1|", Texts(Run("treepo", tree)[0].Candidates[0]));
    }

    [Fact]
    public void Every_extractor_is_registered_by_name()
    {
        Assert.Equal(13, Extractors.All.Select(e => e.Name).Distinct().Count());
        Assert.Throws<ArgumentException>(() => Extractors.Get("nope"));
    }

    [Fact]
    public void Formats_round_trip_and_report_malformed_lines()
    {
        var pairs = Run("success-path", Small());
        foreach (var format in PreferenceFormats.Names)
        {
            var lines = PreferenceFormats.Export(pairs, format, "game24", "run").ToList();
            var (imported, errors) = PreferenceFormats.Import(lines, format, "f.jsonl", rejectOnError: false);
            Assert.Empty(errors);
            Assert.Equal(pairs.Select(p => (p.Prompt, p.Candidates[0].Text, p.Candidates[1].Text)),
                imported.Select(p => (p.Prompt, p.Candidates[0].Text, p.Candidates[1].Text)));
        }
        var ultra = PreferenceFormats.Export(pairs, "ultrainteract", "game24", "run").First();
        Assert.Contains("\"parent_id\":\"small\"", ultra);
        Assert.Contains("\"trajectory\":[{\"from\":\"user\",\"value\":\"P\\n\"}]", ultra);

        string[] bad = ["{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}", "not json", "{\"prompt\":\"p\",\"chosen\":\"a\"}", "", "{\"prompt\":1,\"chosen\":\"a\",\"rejected\":\"b\"}"];
        var (ok, problems) = PreferenceFormats.Import(bad, "trl-preference", "f.jsonl", rejectOnError: false);
        Assert.Single(ok);
        Assert.Equal([2, 3, 5], problems.Select(p => p.Line));
        Assert.Contains("'rejected' must be a string", problems[1].Reason);
        var e = Assert.Throws<InvalidDataException>(() => PreferenceFormats.Import(bad, "trl-preference", "f.jsonl", rejectOnError: true));
        Assert.StartsWith("f.jsonl:2:", e.Message);
        var (_, lonely) = PreferenceFormats.Import(["{\"prompt\":\"p\",\"completions\":[\"a\"],\"labels\":[true]}"], "trl-stepwise", "s", false);
        Assert.Equal(1, Assert.Single(lonely).Line);
    }
}
