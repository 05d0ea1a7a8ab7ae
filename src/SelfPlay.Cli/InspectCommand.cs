using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Trees;

namespace SelfPlay.Cli;

/// <summary>`selfplay inspect`: the trees of a run, read back from its journal through Persistence.Query.</summary>
public static class InspectCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var a = new CliArgs(args, ["--run-dir", "--tree", "--format"], []);
        var runDir = a.Get("--run-dir") ?? throw new UsageException("inspect needs --run-dir DIR");
        var format = a.Get("--format") ?? "text";
        if (format is not ("text" or "json" or "dot")) throw new UsageException($"--format must be text, json or dot, got '{format}'");
        var configFile = Path.Combine(runDir, "config.conf");
        if (!File.Exists(configFile)) throw new UsageException($"{runDir} is not a run folder (no config.conf)");
        var config = ConfigLoader.Parse(ConfigLoader.Build(configFile, []));

        var system = ActorSystem.Create("inspect", SelfPlayHost.AkkaConfig(config.Persistence, runDir, serilog: false));
        try
        {
            var trees = await TreeQueries.CampaignTreesAsync(system, config.Name);
            if (a.Get("--tree") is { } id)
            {
                var tree = trees.FirstOrDefault(t => t.TreeId == id)
                           ?? throw new ArgumentException($"no tree '{id}' in {runDir} ({trees.Count} trees; run inspect without --tree to list them)");
                Console.Write(format switch { "json" => JsonSerializer.Serialize(tree, Indented) + "\n", "dot" => Dot(tree), _ => Text(tree) });
            }
            else if (format == "json")
                Console.WriteLine(JsonSerializer.Serialize(trees.Select(Row), Indented));
            else
            {
                Console.WriteLine($"{"tree",-32} {"nodes",6} {"visits",6} {"solved",6} {"root V",7}");
                foreach (var t in trees) Console.WriteLine($"{t.TreeId,-32} {t.Nodes.Count,6} {t.Root.Visits,6} {(t.Solved ? "yes" : "no"),6} {t.Root.V,7:F3}");
                Console.WriteLine($"{trees.Count} trees");
            }
        }
        finally
        {
            await system.Terminate();
        }
        return 0;
    }

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    static object Row(PreferenceTree t) => new { treeId = t.TreeId, iteration = t.Iteration, nodes = t.Nodes.Count, visits = t.Root.Visits, solved = t.Solved, rootV = t.Root.V };

    /// <summary>One line per node, indented by depth: the step the environment wrote, visits, Q, and the outcome of terminals.</summary>
    public static string Text(PreferenceTree tree)
    {
        var text = new StringBuilder($"{tree.TreeId}  ({tree.Algorithm}, policy v{tree.PolicyVersion}, {tree.Nodes.Count} nodes)\n{tree.Root.StepText.TrimEnd()}\n");
        void Write(int index)
        {
            var n = tree.Nodes[index];
            if (index > 0)
            {
                var outcome = n.IsTerminal ? $"  -> {n.TerminalReward?.ToString("0.##", CultureInfo.InvariantCulture)} ({n.TerminalReason})" : "";
                text.Append(new string(' ', 2 * n.Depth)).Append($"[{n.Index}] {n.StepText.Split('\n')[0]}  N={n.Visits} Q={n.Q:F3}{outcome}\n");
            }
            foreach (var c in n.Children) Write(c);
        }
        Write(0);
        return text.ToString();
    }

    static string Dot(PreferenceTree tree)
    {
        var dot = new StringBuilder("digraph tree {\n  node [shape=box, fontname=monospace];\n");
        foreach (var n in tree.Nodes)
        {
            var label = (n.Index == 0 ? n.StepText : n.StepText.Split('\n')[0]).Trim().Replace("\\", "\\\\").Replace("\"", "\\\"");
            dot.Append($"  n{n.Index} [label=\"{label}\\nN={n.Visits} Q={n.Q:F2}\"{(n.IsTerminal && n.TerminalReward >= 1 ? ", color=green" : "")}];\n");
            if (n.Parent >= 0) dot.Append($"  n{n.Parent} -> n{n.Index};\n");
        }
        return dot.Append("}\n").ToString();
    }
}
