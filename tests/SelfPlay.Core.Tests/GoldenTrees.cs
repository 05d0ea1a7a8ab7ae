using System.Runtime.CompilerServices;
using System.Text.Json;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Tests;

/// <summary>
/// Golden JSON trees: the fields a search decides (shape, actions, statistics, values), rounded, without clocks.
/// SELFPLAY_UPDATE_GOLDEN=1 rewrites the fixtures in the source tree; the tests that use them also assert hand-checked numbers.
/// </summary>
internal static class GoldenTrees
{
    sealed record Node(int Index, int Parent, int Depth, string Action, int Visits, double Q, double V, double Value,
        bool IsTerminal, double? TerminalReward, double Prior, int CriticRank, bool Committed, string? Critique);

    public static string Render(PreferenceTree tree) =>
        JsonSerializer.Serialize(new
        {
            algorithm = tree.Algorithm,
            nodes = tree.Nodes.Select(n => new Node(n.Index, n.Parent, n.Depth, n.Action, n.Visits, Math.Round(n.Q, 6), Math.Round(n.V, 6),
                Math.Round(n.Value, 6), n.IsTerminal, n.TerminalReward, Math.Round(n.Prior, 6), n.CriticRank, n.Committed, n.Critique)),
        }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }).ReplaceLineEndings("\n") + "\n";

    public static void Check(string name, PreferenceTree tree) => CheckText(name, Render(tree));

    /// <summary>Compares a rendered fixture with Golden/NAME.json (or rewrites it with SELFPLAY_UPDATE_GOLDEN=1).</summary>
    public static void CheckText(string name, string json)
    {
        if (Environment.GetEnvironmentVariable("SELFPLAY_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(Path.Combine(SourceDirectory(), "Golden", name + ".json"), json);
            return;
        }
        var expected = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", name + ".json")).ReplaceLineEndings("\n");
        Assert.Equal(expected, json);
    }

    static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    /// <summary>Checks the invariants every search tree must keep: parent/child links, depths, no duplicate children, finite statistics.</summary>
    public static void AssertWellFormed(PreferenceTree tree, string why = "")
    {
        for (var i = 0; i < tree.Nodes.Count; i++)
        {
            var n = tree.Nodes[i];
            Assert.True(n.Index == i, $"{why} index {i}");
            if (i > 0)
            {
                Assert.Contains(i, tree.Nodes[n.Parent].Children);
                Assert.Equal(tree.Nodes[n.Parent].Depth + 1, n.Depth);
            }
            Assert.True(n.Children.Select(c => tree.Nodes[c].StepText + "\u0001" + tree.Nodes[c].Action).Distinct().Count() == n.Children.Count,
                $"{why} node {i}: duplicate children");
            Assert.True(double.IsFinite(n.Q) && double.IsFinite(n.V) && double.IsFinite(n.Value), $"{why} node {i}: non-finite statistics");
            Assert.True(n.Visits >= 0);
        }
    }
}

/// <summary>A critic that answers from a script of the node.</summary>
internal sealed class ScriptedEvaluator(string name, Func<NodeToScore, double> score) : INodeEvaluator
{
    public string Name => name;
    public int Calls { get; private set; }

    public Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default)
    {
        Calls++;
        return Task.FromResult<IReadOnlyList<double>>(nodes.Select(score).ToArray());
    }
}
