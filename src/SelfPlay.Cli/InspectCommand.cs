using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay inspect`: the trees of a run, read back from its journal through Persistence.Query; with --pairs, what
/// each extractor makes of them (<see cref="PairDiagnostics"/>).
/// </summary>
public static class InspectCommand
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var runDir = a.Get("--run-dir") ?? throw new UsageException("inspect needs --run-dir DIR");
        var format = a.Get("--format") ?? "text";
        if (format is not ("text" or "json" or "dot")) throw new UsageException($"--format must be text, json or dot, got '{format}'");
        var pairs = a.Has("--pairs");
        if (pairs && a.Get("--tree") is not null) throw new UsageException("inspect takes --tree ID or --pairs, not both");
        if (pairs && format == "dot") throw new UsageException("inspect --pairs writes text or json, not dot");
        if (!pairs && a.Get("--iteration") is not null) throw new UsageException("--iteration goes with --pairs");
        int? iteration = pairs && a.Get("--iteration") is not null ? a.PositiveInt("--iteration", 1) : null;
        var configFile = Path.Combine(runDir, "config.conf");
        if (!File.Exists(configFile)) throw new UsageException($"{runDir} is not a run folder (no config.conf)");
        var config = ConfigLoader.Parse(ConfigLoader.Build(configFile, []));

        var system = ActorSystem.Create("inspect", SelfPlayHost.AkkaConfig(config.Persistence, runDir, serilog: false));
        try
        {
            var trees = iteration is { } n ? await TreeQueries.IterationTreesAsync(system, config.Name, n) : await TreeQueries.CampaignTreesAsync(system, config.Name);
            if (pairs) Console.Write(Pairs(runDir, config, trees, iteration, format));
            else if (a.Get("--tree") is { } id)
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

    /// <summary>
    /// Every pair, list or visit-distribution extractor (its most vs least visited child) on the trees (only spar on SPaR trees, whose whole-response nodes other extractors
    /// misread), with the token counts the learner would score under the run's tokenizer.
    /// </summary>
    static string Pairs(string runDir, SelfPlay.Core.Config.CampaignConfig config, IReadOnlyList<PreferenceTree> trees, int? iteration, string format)
    {
        var tokenizerDir = Path.Combine(runDir, "checkpoints", "v0");
        if (!Directory.Exists(tokenizerDir)) throw new UsageException($"{runDir} has no checkpoints/v0 to read the tokenizer from");
        var tokenizer = SelfPlay.Models.Checkpoints.Checkpoint.LoadTokenizer(tokenizerDir, out _);
        var byId = trees.ToDictionary(t => t.TreeId);
        var extractors = trees.Any(t => t.Algorithm == "spar") ? [Extractors.Get("spar")]
            : Extractors.All.Where(e => e.Kind is ExampleKind.Pair or ExampleKind.List or ExampleKind.Distribution).ToList();
        var reports = extractors.Select(e => PairDiagnostics.Of(e.Name,
            Actors.Learning.PreferenceLearning.Extract(trees, config.Preferences with { Extractor = e.Name }, config.Seed), byId,
            (prompt, candidate) => PreferenceData.Encode(tokenizer, prompt, candidate).StepOf.Length)).ToList();
        var scope = iteration is { } i ? $"iteration {i}" : "all iterations";
        if (format == "json")
            return JsonSerializer.Serialize(new { scope, trees = trees.Count, configured = config.Preferences.Extractor, extractors = reports },
                new JsonSerializerOptions(Indented) { PropertyNamingPolicy = JsonNamingPolicy.CamelCase }) + "\n";
        static string D(Distribution d, string f) => d.Count == 0 ? "-" : $"{d.Min.ToString(f, CultureInfo.InvariantCulture)}/{d.Median.ToString(f, CultureInfo.InvariantCulture)}/{d.Max.ToString(f, CultureInfo.InvariantCulture)}";
        var text = new StringBuilder($"pairs from {trees.Count} trees ({scope}); * = preferences.extractor; tokens and |score gap| as min/median/max\n");
        text.Append($"{"extractor",-19} {"pairs",6} {"empty",6} {"same",5} {"chosen tokens",15} {"rejected tokens",15} {"|score gap|",18} {"rejected invalid",16}\n");
        foreach (var r in reports)
            text.Append($"{r.Extractor + (r.Extractor == config.Preferences.Extractor ? "*" : ""),-19} {r.Pairs,6} {r.EmptySpans,6} {r.Identical,5} {D(r.ChosenTokens, "0"),15} {D(r.RejectedTokens, "0"),15} {D(r.ScoreGap, "0.000"),18} {(r.RejectedInvalidShare is { } s ? s.ToString("P0", CultureInfo.InvariantCulture) : "-"),16}\n");
        return text.ToString();
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
