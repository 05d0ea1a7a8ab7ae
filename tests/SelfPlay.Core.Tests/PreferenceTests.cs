using SelfPlay.Core.Environments;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Training;
using SelfPlay.Core.Trees;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Core.Tests;

public class PreferenceTests
{
    // ---- 6. Sibling pairs ----

    static TreeNode Child(string action, double q, int visits, int token) =>
        new() { Action = action, StepText = action + "\n", TokenIds = [token, 10], Q = q, Visits = visits };

    /// <summary>
    /// root: c1 (Q .5, N 3), c2 (.9, 2), c3 (−.1, 1), c4 (−5, unvisited)   → pair c2 ≻ c3 (c4 skipped)
    /// c1:   d1 (.3, 1), d2 (.3, 2)                                          → equal Q: no pair
    /// c2:   e1 (1, 2), e2 (0, unvisited)                                    → one visited child: no pair
    /// c3:   f1 (.2, 1), f2 (.7, 1)                                          → pair f2 ≻ f1
    /// </summary>
    static PreferenceTree HandBuilt()
    {
        var t = PreferenceTree.Create("tree-1", "Q: question\n");
        t.Root.Visits = 6;
        var c1 = t.AddChild(0, Child("c1", 0.5, 3, 1));
        var c2 = t.AddChild(0, Child("c2", 0.9, 2, 2));
        var c3 = t.AddChild(0, Child("c3", -0.1, 1, 3));
        t.AddChild(0, Child("c4", -5, 0, 4));
        t.AddChild(c1.Index, Child("d1", 0.3, 1, 5));
        t.AddChild(c1.Index, Child("d2", 0.3, 2, 6));
        t.AddChild(c2.Index, Child("e1", 1, 2, 7));
        t.AddChild(c2.Index, Child("e2", 0, 0, 8));
        t.AddChild(c3.Index, Child("f1", 0.2, 1, 9));
        t.AddChild(c3.Index, Child("f2", 0.7, 1, 10));
        return t;
    }

    [Fact]
    public void Sibling_pairs_are_highest_vs_lowest_Q_among_visited_children()
    {
        var tree = HandBuilt();
        var pairs = SiblingPairs.Extract(tree);
        Assert.Equal(2, pairs.Count);

        var root = pairs[0];
        Assert.Equal(("tree-1", 0, "Q: question\n"), (root.TreeId, root.ParentIndex, root.Prompt));
        Assert.Equal(("c2", 0.9, 2), (root.ChosenAction, root.ChosenQ, root.ChosenVisits));
        Assert.Equal(("c3", -0.1, 1), (root.RejectedAction, root.RejectedQ, root.RejectedVisits));
        Assert.Equal(new[] { 2, 10 }, root.ChosenTokenIds);
        Assert.Equal(new[] { 3, 10 }, root.RejectedTokenIds);

        var inner = pairs[1];
        Assert.Equal(3, inner.ParentIndex);
        Assert.Equal("Q: question\nc3\n", inner.Prompt);
        Assert.Equal(tree.StateAt(inner.ParentIndex), inner.Prompt);
        Assert.Equal(("f2", "f1"), (inner.ChosenAction, inner.RejectedAction));
    }

    [Fact]
    public void Sibling_pairs_respect_the_minimum_Q_gap()
    {
        var tree = HandBuilt();
        // Root gap 1.0 stays, c3's gap 0.5 goes.
        Assert.Equal(new[] { 0 }, SiblingPairs.Extract(tree, minQGap: 0.6).Select(p => p.ParentIndex));
        Assert.Empty(SiblingPairs.Extract(tree, minQGap: 1.5));
    }

    [Fact]
    public void Sibling_pair_ties_prefer_more_visits_for_chosen_and_fewer_for_rejected()
    {
        var t = PreferenceTree.Create("t", "s\n");
        t.AddChild(0, Child("win-few", 1, 1, 1));
        t.AddChild(0, Child("win-many", 1, 4, 2));
        t.AddChild(0, Child("lose-many", 0, 3, 3));
        t.AddChild(0, Child("lose-few", 0, 1, 4));
        var pair = Assert.Single(SiblingPairs.Extract(t));
        Assert.Equal(("win-many", "lose-few"), (pair.ChosenAction, pair.RejectedAction));
    }

    [Fact]
    public void Children_without_tokens_are_not_paired()
    {
        var t = PreferenceTree.Create("t", "s\n");
        t.AddChild(0, Child("a", 1, 1, 1));
        t.AddChild(0, new TreeNode { Action = "b", Q = 0, Visits = 1 }); // no generated tokens to train on
        Assert.Empty(SiblingPairs.Extract(t));
    }

    [Theory]
    [InlineData(6, 2, 0.25)]   // algorithms.md §1.7: conf = .75
    [InlineData(3, 1, 0.25)]
    [InlineData(2, 2, 0.5)]
    [InlineData(1, 5, 0.5)]    // 1 − 1/6 = .83, capped
    [InlineData(0, 3, 0.5)]    // N_w = 0 counts as 1: 1 − 1/4 = .75, capped
    [InlineData(5, 0, 0.0)]
    [InlineData(9, 1, 0.1)]
    public void Visit_label_smoothing(int chosenVisits, int rejectedVisits, double expected) =>
        Assert.Equal(expected, SiblingPairs.VisitLabelSmoothing(chosenVisits, rejectedVisits), 1e-12);

    // ---- 7. Warm-up traces ----

    [Fact]
    public void Warmup_trace_scores_only_the_policys_operations()
    {
        var env = new Game24Environment(Game24StepMode.Operation);
        var task = new EnvTask("4-5-6-10", "4 5 6 10");
        var distinct = new HashSet<string>();
        for (var seed = 0; seed < 8; seed++)
        {
            var actions = env.ReferenceActions(task, new Random(seed))!;
            var segments = WarmupTraces.Build(env, task, new Random(seed))!;
            distinct.Add(string.Join(" | ", actions));

            var state = env.InitialState(task);
            foreach (var a in actions) state += env.Step(task, state, a).Appended;
            Assert.Equal(1, env.Verify(task, state).Reward);

            Assert.Equal(state, string.Concat(segments.Select(s => s.Text)));
            Assert.Equal(actions.Select(a => a + " ="), segments.Where(s => s.Scored).Select(s => s.Text));
            Assert.Equal(new TextSegment("Input: 4 5 6 10\n", false), segments[0]);
            var answer = Assert.Single(segments, s => s.Text.Contains("Answer:", StringComparison.Ordinal));
            Assert.False(answer.Scored);
            Assert.EndsWith("= 24\n", answer.Text);
        }
        Assert.True(distinct.Count > 1, "different seeds should pick different reference solutions");
    }

    [Theory]
    [InlineData("5 * 4", " =", "5 * 4 = 20 (left: 6 10 20)\n", "5 * 4 =")]          // the action and its stop
    [InlineData(" calc[2+3", "]", "calc[2+3] = 5\n", "calc[2+3]")]                  // the environment rewrote the action
    [InlineData("x y", " =", "x y\n", "x y\n")]                                    // no stop string: all the policy's
    public void A_steps_policy_part_is_its_action_and_stop_else_up_to_the_first_stop(string action, string stop, string appended, string policy) =>
        Assert.Equal(policy, appended[..StepOutcome.Continue(appended).PolicyLength(action, stop)]);

    [Fact]
    public void Warmup_trace_is_null_without_a_reference_solution() =>
        Assert.Null(WarmupTraces.Build(new Game24Environment(), new EnvTask("1-1-1-1", "1 1 1 1"), new Random(0)));
}
