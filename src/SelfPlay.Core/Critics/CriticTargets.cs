using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Critics;

/// <summary>A state (the text the policy is prompted with at a node) and what a trained critic should say of it.</summary>
public sealed record CriticExample(string TreeId, string State, double Target);

/// <summary>
/// The training targets of the trained critics that search.critic names, read from stored trees:
/// <list type="bullet">
/// <item>"value" (CPL's value model, §6.4): every visited non-root node, target its state value V as the search backed
/// it up; trained with mean squared error, scores unbounded.</item>
/// <item>"prm" (process reward model, Math-Shepherd's soft label): every non-root node with a rewarded leaf below it,
/// target the share of those leaves that reached reward 1; trained with binary cross-entropy, scores in [0, 1].</item>
/// </list>
/// Roots are left out: every tree of a task shares its root, and its value says nothing about a step.
/// </summary>
public static class CriticTargets
{
    public static readonly string[] Kinds = ["value", "prm"];

    /// <summary>Whether search.critic names a critic trained from the trees (rather than the verifier, the environment or an LLM).</summary>
    public static bool IsTrained(string critic) => Kinds.Contains(critic);

    public static List<CriticExample> Extract(PreferenceTree tree, string kind)
    {
        var examples = new List<CriticExample>();
        switch (kind)
        {
            case "value":
                foreach (var node in tree.Nodes.Skip(1).Where(n => n.Visits > 0 && double.IsFinite(n.V)))
                    examples.Add(new CriticExample(tree.TreeId, tree.StateAt(node.Index), node.V));
                break;
            case "prm":
                var success = TreePlvPairs.SuccessRates(tree);
                foreach (var node in tree.Nodes.Skip(1).Where(n => success[n.Index] is not null))
                    examples.Add(new CriticExample(tree.TreeId, tree.StateAt(node.Index), success[node.Index]!.Value));
                break;
            default:
                throw new ArgumentException($"critic kind must be {string.Join(" or ", Kinds)}, got '{kind}'");
        }
        return examples;
    }

    /// <summary>
    /// The examples of many trees, split by tree into training and held-out examples (a tree's nodes share their
    /// prefixes, so splitting inside a tree would leak), the training part capped at <paramref name="maxExamples"/>
    /// by a seeded sample (0 = no cap).
    /// </summary>
    public static (List<CriticExample> Train, List<CriticExample> HeldOut) Split(IEnumerable<PreferenceTree> trees, string kind,
        double heldOutShare, int maxExamples, int seed)
    {
        var random = new Random(seed);
        var (trainTrees, heldOutTrees) = Training.HeldOutSlice.Split(trees, t => t.TreeId, heldOutShare, random);
        List<CriticExample> train = [.. trainTrees.SelectMany(t => Extract(t, kind))], heldOut = [.. heldOutTrees.SelectMany(t => Extract(t, kind))];
        if (maxExamples > 0 && train.Count > maxExamples)
        {
            var shuffled = train.ToArray();
            random.Shuffle(shuffled);
            train = [.. shuffled.Take(maxExamples)];
        }
        return (train, heldOut);
    }
}
