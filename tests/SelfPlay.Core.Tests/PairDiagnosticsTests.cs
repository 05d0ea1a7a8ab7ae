using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Tests;

public class PairDiagnosticsTests
{
    [Fact]
    public void Distributions_take_the_middle_of_an_even_count()
    {
        Assert.Equal(new Distribution(4, 1, 2.5, 9), Distribution.Of([9, 1, 2, 3]));
        Assert.Equal(new Distribution(3, 1, 2, 3), Distribution.Of([3, 2, 1]));
        Assert.Equal(new Distribution(0, 0, 0, 0), Distribution.Of([]));
    }

    [Fact]
    public void A_report_counts_empty_and_identical_pairs_gaps_and_invalid_rejected_steps()
    {
        var t = PreferenceTree.Create("t", "P\n");
        t.AddChild(0, new TreeNode { Action = "good", StepText = "good\n", TokenIds = [1, 2], Visits = 1, Q = 1 });
        t.AddChild(0, new TreeNode { Action = "bad", StepText = "bad\n", TokenIds = [3], Visits = 1, IsTerminal = true, TerminalReward = 0 });
        t.AddChild(0, new TreeNode { Action = "meh", StepText = "meh\n", TokenIds = [4], Visits = 1, Q = 0.5 });
        Candidate C(string text, double score) => new([new CompletionStep(text, [], [])], score);
        var examples = new List<PreferenceExample>
        {
            PreferenceExample.Pair("t", "P\n", C("good\n", 1), C("bad\n", 0)),
            PreferenceExample.Pair("t", "P\n", C("good\n", 1), C("meh\n", 0.5)),
            PreferenceExample.Pair("t", "P\n", C("meh\n", 0.5), C("", 0.25)),       // an empty rejected span
            PreferenceExample.Pair("t", "P\n", C("meh\n", 0.5), C("meh\n", 0.5)),   // identical
        };
        var report = PairDiagnostics.Of("x", examples, new Dictionary<string, PreferenceTree> { ["t"] = t }, (_, c) => c.Text.Length);
        Assert.Equal((4, 1, 1), (report.Pairs, report.EmptySpans, report.Identical));
        Assert.Equal(new Distribution(4, 0, 0.375, 1), report.ScoreGap);
        Assert.Equal(new Distribution(4, 0, 4, 4), report.RejectedTokens);
        // Rejected steps found in the tree: bad (ended with reward 0), meh twice; the empty one is not a step of it.
        Assert.Equal(1 / 3.0, report.RejectedInvalidShare!.Value, 12);
        // Gaps 1, 0.5, 0.25, 0 in the bins [0, 0.1) [0.1, 0.25) [0.25, 0.5) [0.5, ∞); only the identical pair begins with the same step.
        Assert.Equal([1, 0, 1, 2], report.ScoreGapBins!);
        Assert.Equal(1, report.SameFirstStep);
    }
}
