using SelfPlay.Core.Critics;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Tests;

public sealed class CriticTargetTests
{
    /// <summary>
    /// root ─ a (V 0.75) ─ a1 (solved), a2 (failed)
    ///      ─ b (V 0)    ─ b1 (failed)
    ///      ─ c          (expanded, never visited, nothing below)
    /// </summary>
    static PreferenceTree Tree(string id = "t/1/x/0")
    {
        var tree = PreferenceTree.Create(id, "Input: 1 2 3 4\n");
        tree.Root.Visits = 4;
        tree.Root.V = 0.5;
        var a = tree.AddChild(0, new TreeNode { StepText = "a\n", Visits = 2, V = 0.75 });
        tree.AddChild(a.Index, new TreeNode { StepText = "a1\n", Visits = 1, V = 1, IsTerminal = true, TerminalReward = 1 });
        tree.AddChild(a.Index, new TreeNode { StepText = "a2\n", Visits = 1, V = 0, IsTerminal = true, TerminalReward = 0 });
        var b = tree.AddChild(0, new TreeNode { StepText = "b\n", Visits = 1, V = 0 });
        tree.AddChild(b.Index, new TreeNode { StepText = "b1\n", Visits = 1, V = 0, IsTerminal = true, TerminalReward = 0 });
        tree.AddChild(0, new TreeNode { StepText = "c\n", Visits = 0, V = 0.3 });
        return tree;
    }

    [Fact]
    public void Value_targets_are_the_backed_up_state_values_of_visited_non_root_nodes()
    {
        var examples = CriticTargets.Extract(Tree(), "value");
        Assert.Equal(
            [("Input: 1 2 3 4\na\n", 0.75), ("Input: 1 2 3 4\na\na1\n", 1.0), ("Input: 1 2 3 4\na\na2\n", 0.0), ("Input: 1 2 3 4\nb\n", 0.0),
             ("Input: 1 2 3 4\nb\nb1\n", 0.0)],
            examples.Select(e => (e.State, e.Target)).ToArray());
    }

    [Fact]
    public void Prm_targets_are_the_share_of_solved_leaves_below_each_node()
    {
        var examples = CriticTargets.Extract(Tree(), "prm").ToDictionary(e => e.State, e => e.Target);
        Assert.Equal(0.5, examples["Input: 1 2 3 4\na\n"]);
        Assert.Equal(1.0, examples["Input: 1 2 3 4\na\na1\n"]);
        Assert.Equal(0.0, examples["Input: 1 2 3 4\na\na2\n"]);
        Assert.Equal(0.0, examples["Input: 1 2 3 4\nb\n"]);
        Assert.False(examples.ContainsKey("Input: 1 2 3 4\nc\n")); // no rewarded leaf below: no label
        Assert.False(examples.ContainsKey("Input: 1 2 3 4\n"));    // the root is never a target
        Assert.Equal(5, examples.Count);
    }

    [Fact]
    public void Split_keeps_each_tree_on_one_side_is_seeded_and_caps_the_training_part()
    {
        var trees = Enumerable.Range(0, 40).Select(i => Tree($"t/1/x{i}/0")).ToList();
        var (train, heldOut) = CriticTargets.Split(trees, "value", 0.25, 0, 7);
        Assert.Equal(200, train.Count + heldOut.Count);
        Assert.InRange(heldOut.Count, 5, 100);
        Assert.Empty(train.Select(e => e.TreeId).Intersect(heldOut.Select(e => e.TreeId)));
        var again = CriticTargets.Split(Enumerable.Reverse(trees), "value", 0.25, 0, 7);
        Assert.Equal(heldOut.Select(e => e.TreeId), again.HeldOut.Select(e => e.TreeId));

        var (capped, _) = CriticTargets.Split(trees, "value", 0.25, 10, 7);
        Assert.Equal(10, capped.Count);
        Assert.Empty(CriticTargets.Split(trees, "value", 0, 0, 7).HeldOut);
    }

    [Fact]
    public void An_unknown_kind_is_a_clear_error()
    {
        Assert.Contains("value or prm", Assert.Throws<ArgumentException>(() => CriticTargets.Extract(Tree(), "orm")).Message);
        Assert.True(CriticTargets.IsTrained("prm"));
        Assert.False(CriticTargets.IsTrained("verifier"));
    }
}
