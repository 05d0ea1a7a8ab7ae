using System.Text;
using System.Text.Json;
using SelfPlay.Actors.Campaign;

namespace SelfPlay.Cli;

/// <summary>
/// <c>selfplay report --run-dir DIR [--run-dir DIR]... [--format text|markdown|json] [--plot FILE.png|svg]</c>: a campaign's summary.json as a
/// table (held-out rate per iteration, trees, pairs, phase times, throughput); with several run folders, also one
/// comparison row per run (warm-up rate, the rate after each iteration, the change), which is how runs that differ in
/// one setting (a loss, an extractor, a search) are compared. Reads only summary.json, so it works on a running campaign.
/// </summary>
public static class ReportCommand
{
    public static int Run(CliArgs a)
    {
        var dirs = a.All("--run-dir");
        if (dirs.Count == 0) throw new UsageException("report needs --run-dir DIR (repeat it to compare runs)");
        var format = a.Get("--format") ?? "text";
        if (format is not ("text" or "markdown" or "json")) throw new UsageException($"--format must be text, markdown or json, got '{format}'");
        var summaries = dirs.Select(Read).ToList();
        if (a.Get("--plot") is { } plot)
        {
            ReportPlot.Save(summaries, plot);
            Console.Error.WriteLine($"report: plot written to {Path.GetFullPath(plot)}");
        }
        if (format == "json")
        {
            Console.WriteLine(JsonSerializer.Serialize(summaries.Select(s => new { s.Name, s.Environment, s.Status, s.Error, s.WallSeconds,
                heldOut = Rates(s), s.Iterations }), new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
            return 0;
        }
        var markdown = format == "markdown";
        foreach (var (summary, dir) in summaries.Zip(dirs))
        {
            Console.WriteLine($"{summary.Name} ({summary.Environment}): {summary.Status}, {summary.WallSeconds / 60:F1} min; {Path.GetFullPath(dir)}");
            if (summary.Error is { } error) Console.WriteLine($"error: {error}");
            Console.Write(Table(summary, markdown));
        }
        if (summaries.Count > 1) Console.Write(Comparison(summaries, markdown));
        if (summaries.GroupBy(s => s.Name).Any(g => g.Count() > 1)) Console.Write(OverSeeds(summaries, markdown));
        return 0;
    }

    static CampaignSummary Read(string dir)
    {
        var path = Path.Combine(dir, CampaignSummary.FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} not found: not a run folder, or its campaign has not started");
        try { return CampaignSummary.Read(dir); }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not a campaign summary: {e.Message.ReplaceLineEndings(" ")}"); }
    }

    /// <summary>Held-out solve rate after the warm-up and after each iteration, in order (null where not evaluated).</summary>
    static double?[] Rates(CampaignSummary s) => [.. s.Iterations.OrderBy(r => r.Iteration).Select(r => r.HeldOut?.Rate)];

    /// <summary>One row per iteration; also printed at the end of `selfplay run`.</summary>
    public static string Table(CampaignSummary summary, bool markdown = false)
    {
        string[] header = ["iter", "phase", "policy", "trees", "solved", "pairs", "held-out", "search s", "train s", "eval s", "wall s", "tok/s", "fill"];
        var rows = summary.Iterations.OrderBy(r => r.Iteration).Select(r => new[]
        {
            r.Iteration.ToString(), r.Phase, "v" + r.PolicyVersion, r.Trees.ToString(), r.SolvedTrees.ToString(), r.Pairs.ToString(),
            r.HeldOut is { } h ? $"{h.Solved}/{h.Total} {h.Rate * 100:F1}%" : "-",
            $"{r.SearchSeconds:F1}", $"{r.TrainSeconds:F1}", $"{r.EvalSeconds:F1}", $"{r.WallSeconds:F1}",
            r.Throughput is { } t ? $"{t.InferenceTokensPerSecond:F0}" : "-", r.Throughput is { } f ? $"{f.BatchFill:F2}" : "-",
        }).ToList();
        return Format(header, rows, markdown) + CriticTable(summary, markdown);
    }

    /// <summary>With a trained critic (search.critic = value | prm): how each iteration's critic did on held-out trees,
    /// against always predicting the mean (empty without one).</summary>
    static string CriticTable(CampaignSummary summary, bool markdown)
    {
        var critics = summary.Iterations.OrderBy(r => r.Iteration).Where(r => r.Critic is not null).Select(r => r.Critic!).ToList();
        if (critics.Count == 0) return "";
        string[] header = ["critic", "kind", "examples", "held out", "loss", "held-out loss before", "after", "constant", "train s"];
        var rows = critics.Select(c => new[]
        {
            "v" + c.Version, c.Kind, c.Examples.ToString(), c.HeldOutExamples.ToString(), $"{c.FirstLoss:F4} -> {c.LastLoss:F4}",
            $"{c.HeldOutLossBefore:F4}", $"{c.HeldOutLossAfter:F4}", $"{c.HeldOutLossConstant:F4}", $"{c.WallSeconds:F1}",
        }).ToList();
        return Format(header, rows, markdown);
    }

    static string Comparison(IReadOnlyList<CampaignSummary> summaries, bool markdown)
    {
        var iterations = summaries.Max(s => s.Iterations.Count) - 1;
        string[] header = ["run", "environment", "warm-up", .. Enumerable.Range(1, iterations).Select(i => $"iter {i}"), "change"];
        var rows = summaries.Select(s =>
        {
            var rates = Rates(s);
            string Percent(double? rate) => rate is { } r ? $"{r * 100:F1}%" : "-";
            var change = rates.Length > 1 && rates[0] is { } first && rates.LastOrDefault(r => r is not null) is { } last ? $"{(last - first) * 100:+0.0;-0.0;0.0} pts" : "-";
            return (string[])[s.Name, s.Environment, .. Enumerable.Range(0, iterations + 1).Select(i => i < rates.Length ? Percent(rates[i]) : ""), change];
        }).ToList();
        return "\n" + Format(header, rows, markdown);
    }

    /// <summary>Runs that share a name (a setting run with several seeds): held-out rate after the warm-up and after
    /// the last iteration, and the change, as mean and range over the runs.</summary>
    public static string OverSeeds(IReadOnlyList<CampaignSummary> summaries, bool markdown = false)
    {
        static string Stat(IReadOnlyList<double> values, Func<double, string> format) => values.Count == 0 ? "-"
            : $"{format(values.Average())} ({format(values.Min())} to {format(values.Max())})";
        string[] header = ["setting", "runs", "warm-up mean (range)", "final mean (range)", "change mean (range)"];
        var rows = summaries.GroupBy(s => s.Name).Select(g =>
        {
            var rates = g.Select(Rates).ToList();
            var warmup = rates.Where(r => r.Length > 0 && r[0] is not null).Select(r => r[0]!.Value).ToList();
            var final = rates.Where(r => r.Length > 1 && r[^1] is not null).Select(r => r[^1]!.Value).ToList();
            var change = rates.Where(r => r.Length > 1 && r[0] is not null && r[^1] is not null).Select(r => r[^1]!.Value - r[0]!.Value).ToList();
            return new[]
            {
                g.Key, g.Count().ToString(), Stat(warmup, v => $"{v * 100:F1}%"), Stat(final, v => $"{v * 100:F1}%"),
                Stat(change, v => $"{v * 100:+0.0;-0.0;0.0} pts"),
            };
        }).ToList();
        return "\n" + Format(header, rows, markdown);
    }

    static string Format(string[] header, IReadOnlyList<string[]> rows, bool markdown)
    {
        var text = new StringBuilder();
        if (markdown)
        {
            text.AppendLine("| " + string.Join(" | ", header) + " |");
            text.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
            foreach (var row in rows) text.AppendLine("| " + string.Join(" | ", row) + " |");
            return text.AppendLine().ToString();
        }
        var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Prepend(h.Length).Max()).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) => i < 2 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd();
        text.AppendLine(Line(header));
        foreach (var row in rows) text.AppendLine(Line(row));
        return text.AppendLine().ToString();
    }
}
