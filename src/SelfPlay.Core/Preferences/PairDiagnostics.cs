using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Preferences;

/// <summary>Min, median and max of some values (all 0 when there are none).</summary>
public sealed record Distribution(int Count, double Min, double Median, double Max)
{
    public static Distribution Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        if (sorted.Count == 0) return new(0, 0, 0, 0);
        var mid = sorted.Count / 2;
        var median = sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        return new(sorted.Count, sorted[0], median, sorted[^1]);
    }
}

/// <summary>
/// What one extractor makes of a run's trees, as a user's first look when a campaign does not learn: pairs (a ranked
/// list counts as its best vs its worst, as pair losses train on it), pairs with an empty chosen or rejected span (no
/// token the learner would score), identical chosen and rejected text, the scored-token lengths, the score gaps
/// (|margin| or |ΔQ|), and the share of rejected steps that the environment ended with reward 0 (an invalid step) among
/// those found in their tree (null on SPaR trees, whose rejected responses are judged, not stepped); how many pairs
/// begin with the same step (their difference comes later), and the score gaps in bins of <see cref="PairDiagnostics.GapEdges"/>.
/// </summary>
public sealed record PairReport(string Extractor, int Examples, int Pairs, int EmptySpans, int Identical,
    Distribution ChosenTokens, Distribution RejectedTokens, Distribution ScoreGap, double? RejectedInvalidShare,
    int SameFirstStep = 0, IReadOnlyList<int>? ScoreGapBins = null);

public static class PairDiagnostics
{
    /// <summary>Lower edges of the score-gap bins: [0, 0.1), [0.1, 0.25), [0.25, 0.5), [0.5, ∞).</summary>
    public static readonly IReadOnlyList<double> GapEdges = [0, 0.1, 0.25, 0.5];

    /// <param name="scoredTokens">how many tokens of a candidate the learner scores (its encoding of prompt and candidate)</param>
    public static PairReport Of(string extractor, IReadOnlyList<PreferenceExample> examples, IReadOnlyDictionary<string, PreferenceTree> trees,
        Func<string, Candidate, int> scoredTokens)
    {
        var pairs = examples.Where(e => e.Kind != ExampleKind.Advantage && e.Candidates.Count >= 2)
            .Select(e => (e.Source, e.Prompt, Chosen: e.Candidates[0], Rejected: e.Candidates[^1])).ToList();
        var chosenTokens = pairs.Select(p => scoredTokens(p.Prompt, p.Chosen)).ToList();
        var rejectedTokens = pairs.Select(p => scoredTokens(p.Prompt, p.Rejected)).ToList();
        var rejectedSteps = pairs.Select(p => trees.TryGetValue(p.Source, out var t) && t.Algorithm != "spar" ? FirstStepNode(t, p.Prompt, p.Rejected) : null)
            .OfType<TreeNode>().ToList();
        return new PairReport(extractor, examples.Count, pairs.Count,
            EmptySpans: Enumerable.Range(0, pairs.Count).Count(i => chosenTokens[i] == 0 || rejectedTokens[i] == 0),
            Identical: pairs.Count(p => p.Chosen.Text == p.Rejected.Text),
            Distribution.Of(chosenTokens.Select(n => (double)n)), Distribution.Of(rejectedTokens.Select(n => (double)n)),
            Distribution.Of(pairs.Select(p => Math.Abs(p.Chosen.Score - p.Rejected.Score))),
            rejectedSteps.Count == 0 ? null : rejectedSteps.Count(n => n.IsTerminal && n.TerminalReward == 0) / (double)rejectedSteps.Count,
            SameFirstStep: pairs.Count(p => p.Chosen.Steps.Count > 0 && p.Rejected.Steps.Count > 0 && p.Chosen.Steps[0].Text == p.Rejected.Steps[0].Text),
            ScoreGapBins: [.. GapEdges.Select((lo, i) => pairs.Count(p =>
            {
                var gap = Math.Abs(p.Chosen.Score - p.Rejected.Score) + 1e-12; // a gap of exactly 0.1 is in [0.1, 0.25)
                return gap >= lo && (i == GapEdges.Count - 1 || gap < GapEdges[i + 1]);
            }))]);
    }

    /// <summary>The node of a candidate's first step: a child of the node whose state is the prompt, with that step's text.</summary>
    public static TreeNode? FirstStepNode(PreferenceTree tree, string prompt, Candidate candidate)
    {
        if (candidate.Steps.Count == 0) return null;
        var text = candidate.Steps[0].Text;
        return tree.Nodes.Skip(1).FirstOrDefault(n => n.StepText == text && tree.StateAt(n.Parent) == prompt);
    }
}
