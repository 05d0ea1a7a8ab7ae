using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Learning;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;

namespace SelfPlay.Cli.Dashboard;

/// <summary>
/// The campaign's dashboard, read-only over its run folder (so it works on a running or a finished campaign, and on a
/// cluster's run folder): server-rendered pages, no script or style from outside this machine. <c>/</c> shows the
/// status, the live phase (progress.json), held-out success and training per iteration (summary.json, refreshed every
/// 2 s by a small inline script polling <c>/api/summary</c>), the plot of <c>report --plot</c> and failed tasks with
/// their reasons (the log); <c>/trees?iteration=N</c> lists an iteration's trees and <c>/tree?id=ID</c> shows one: each
/// node with its step, N, Q, reward, critic score and policy version, the path that solved it, and the pairs the run's
/// extractor makes of it, chosen and rejected marked.
/// </summary>
public static class DashboardServer
{
    public static WebApplication Build(string runDir, string host, int port, string? token)
    {
        var configFile = Path.Combine(runDir, "config.conf");
        if (!File.Exists(configFile)) throw new UsageException($"{runDir} is not a run folder (no config.conf)");
        var config = ConfigLoader.Parse(ConfigLoader.Build(configFile, []));
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{(host.Contains(':') ? $"[{host}]" : host)}:{port}");
        var app = builder.Build();
        var journal = new Lazy<ActorSystem>(() => ActorSystem.Create("dashboard", SelfPlayHost.AkkaConfig(config.Persistence, runDir, serilog: false)));
        app.Lifetime.ApplicationStopped.Register(() => { if (journal.IsValueCreated) journal.Value.Terminate().Wait(TimeSpan.FromSeconds(10)); });
        if (token is not null)
        {
            var expected = Encoding.UTF8.GetBytes(token);
            app.Use(async (context, next) =>
            {
                var given = context.Request.Headers.Authorization.ToString() is { } h && h.StartsWith("Bearer ", StringComparison.Ordinal) ? h[7..]
                    : context.Request.Query["token"].ToString();
                if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), expected))
                {
                    context.Response.StatusCode = 401;
                    await context.Response.WriteAsync("a bearer token is needed (Authorization header or ?token=)");
                    return;
                }
                await next(context);
            });
        }
        app.MapGet("/", () => Html(Overview(runDir, config)));
        app.MapGet("/api/summary", () => File.Exists(Path.Combine(runDir, CampaignSummary.FileName))
            ? Results.Text(File.ReadAllText(Path.Combine(runDir, CampaignSummary.FileName)), "application/json") : Results.NotFound());
        app.MapGet("/api/progress", () => Progress(runDir) is { } p ? Results.Text(p, "application/json") : Results.NotFound());
        app.MapGet("/plot.svg", () =>
        {
            if (!File.Exists(Path.Combine(runDir, CampaignSummary.FileName))) return Results.NotFound();
            var svg = new MemoryStream();
            ReportPlot.WriteSvg([CampaignSummary.Read(runDir)], svg);
            return Results.Bytes(svg.ToArray(), "image/svg+xml");
        });
        app.MapGet("/trees", async (int iteration) =>
            Html(TreeList(config, iteration, await TreeQueries.IterationTreesAsync(journal.Value, config.Name, iteration))));
        app.MapGet("/tree", async (string id) =>
        {
            // Tree ids are CAMPAIGN/ITERATION/TASK/ATTEMPT (PreferenceTree.MakeId): the iteration says which tag to read.
            var parts = id.Split('/');
            var trees = parts.Length >= 3 && parts[0] == config.Name && int.TryParse(parts[1], out var i)
                ? await TreeQueries.IterationTreesAsync(journal.Value, config.Name, i) : [];
            return trees.FirstOrDefault(t => t.TreeId == id) is { } tree ? Html(TreePage(config, tree)) : Results.NotFound($"no tree '{id}'");
        });
        return app;
    }

    static IResult Html(string body) => Results.Text(body, "text/html; charset=utf-8", Encoding.UTF8);

    static string E(string? text) => WebUtility.HtmlEncode(text ?? "");

    static string F(double? x, string format = "0.###") => x is { } v && double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    /// <summary>progress.json as a line: "search, iteration 3: 120/400" (the script formats it the same way).</summary>
    static string PhaseLine(string? json)
    {
        if (json is null) return "-";
        try
        {
            var p = System.Text.Json.JsonDocument.Parse(json).RootElement;
            return $"{p.GetProperty("phase").GetString()}, iteration {p.GetProperty("iteration").GetInt32()}: {p.GetProperty("done").GetInt32()}/{p.GetProperty("total").GetInt32()}";
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException) { return "-"; }
    }

    static string? Progress(string runDir) => File.Exists(Path.Combine(runDir, "progress.json")) ? File.ReadAllText(Path.Combine(runDir, "progress.json")) : null;

    const string Style = """
        <style>
        body { font-family: sans-serif; margin: 1.5em; color: #222; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
        th { background: #f0f0f0; } td.text { text-align: left; font-family: monospace; white-space: pre; }
        ul.tree { list-style: none; font-family: monospace; } ul.tree ul { list-style: none; border-left: 1px dotted #aaa; margin-left: 0.5em; padding-left: 1em; }
        .solved-path > .step { background: #d8f5d0; } .terminal-fail > .step { color: #a33; }
        .meta { color: #666; font-size: 90%; } .chosen { background: #d8f5d0; } .rejected { background: #f8d8d8; }
        pre { background: #f7f7f7; padding: 0.5em; }
        </style>
        """;

    static string Page(string title, string body) =>
        $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{E(title)}</title>{Style}</head><body>{body}</body></html>";

    static string Overview(string runDir, CampaignConfig config)
    {
        var summary = File.Exists(Path.Combine(runDir, CampaignSummary.FileName)) ? CampaignSummary.Read(runDir) : null;
        var body = new StringBuilder();
        body.Append($"<h1>{E(config.Name)}</h1><p>environment <b>{E(config.Environment.Type)}</b>, search <b>{E(config.Search.Algorithm)}</b>, " +
                    $"extractor <b>{E(config.Preferences.Extractor)}</b>, loss <b>{E(config.Learner.Loss)}</b>; " +
                    $"status <b id=\"status\">{E(summary?.Status ?? "not started")}</b>{(summary?.Error is { } error ? $" <span class=\"rejected\">{E(error)}</span>" : "")}</p>");
        body.Append($"<p>phase: <span id=\"progress\">{E(PhaseLine(Progress(runDir)))}</span></p>");
        body.Append("<h2>Iterations</h2><table><thead><tr><th>iteration</th><th>phase</th><th>policy</th><th>trees</th><th>solved trees</th><th>pairs</th>" +
                    "<th>held-out</th><th>rate</th><th>loss first</th><th>loss last</th><th>reward accuracy</th><th>trees/s</th><th>tokens/s</th><th>failed tasks</th><th>trees</th></tr></thead>" +
                    "<tbody id=\"iterations\">");
        foreach (var r in (summary?.Iterations ?? []).OrderBy(r => r.Iteration))
            body.Append($"<tr data-iteration=\"{r.Iteration}\"><td>{r.Iteration}</td><td>{E(r.Phase)}</td><td>v{r.PolicyVersion}</td><td>{r.Trees}</td><td>{r.SolvedTrees}</td><td>{r.Pairs}</td>" +
                        $"<td class=\"held-out\">{(r.HeldOut is { } h ? $"{h.Solved}/{h.Total}" : "-")}</td><td>{(r.HeldOut is { } hr ? F(hr.Rate * 100, "0.0") + "%" : "-")}</td>" +
                        $"<td>{F(r.TrainLossFirst, "0.0000")}</td><td>{F(r.TrainLossLast, "0.0000")}</td><td>{F(r.RewardAccuracy)}</td>" +
                        $"<td>{F(r.Throughput?.TreesPerSecond)}</td><td>{F(r.Throughput?.InferenceTokensPerSecond, "0")}</td><td>{r.FailedTasks}</td>" +
                        $"<td>{(r.Iteration > 0 ? $"<a href=\"trees?iteration={r.Iteration}\">trees</a>" : "")}</td></tr>");
        body.Append("</tbody></table>");
        if (summary is not null) body.Append("<h2>Plots</h2><img src=\"plot.svg\" alt=\"held-out success, training loss, pairs and solved trees\" width=\"900\">");
        var failures = FailedTasks(runDir);
        body.Append($"<h2>Failed tasks</h2>{(failures.Count == 0 ? "<p>none</p>" : "<pre>" + E(string.Join("\n", failures)) + "</pre>")}");
        // Live: the status, the phase and the iteration rows follow summary.json and progress.json.
        body.Append("""
            <script>
            async function refresh() {
              try {
                const p = await fetch('api/progress');
                if (p.ok) { const g = await p.json(); document.getElementById('progress').textContent = `${g.phase}, iteration ${g.iteration}: ${g.done}/${g.total}`; }
                const s = await fetch('api/summary'); if (!s.ok) return;
                const summary = await s.json();
                document.getElementById('status').textContent = summary.status;
                const known = new Set([...document.querySelectorAll('#iterations tr')].map(r => r.dataset.iteration));
                if (summary.iterations.some(r => !known.has(String(r.iteration)))) location.reload();
              } catch (e) { }
            }
            setInterval(refresh, 2000);
            </script>
            """);
        return Page($"{config.Name}: SelfPlay dashboard", body.ToString());
    }

    /// <summary>The log's task failures and skipped tasks, newest last (at most 50).</summary>
    static List<string> FailedTasks(string runDir)
    {
        var log = Path.Combine(runDir, "selfplay.log");
        if (!File.Exists(log)) return [];
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
            if (line.Contains("] task ", StringComparison.Ordinal) && line.Contains(" failed", StringComparison.Ordinal)) lines.Add(line);
        return lines.TakeLast(50).ToList();
    }

    static string TreeList(CampaignConfig config, int iteration, IReadOnlyList<PreferenceTree> trees)
    {
        var body = new StringBuilder($"<p><a href=\"./\">{E(config.Name)}</a></p><h1>Iteration {iteration}: {trees.Count} trees</h1>");
        body.Append("<table><thead><tr><th>tree</th><th>nodes</th><th>root visits</th><th>solved</th><th>root V</th><th>policy</th></tr></thead><tbody>");
        foreach (var t in trees.OrderBy(t => t.TreeId, StringComparer.Ordinal))
            body.Append($"<tr><td class=\"text\"><a href=\"tree?id={Uri.EscapeDataString(t.TreeId)}\">{E(t.TreeId)}</a></td><td>{t.Nodes.Count}</td><td>{t.Root.Visits}</td>" +
                        $"<td>{(t.Solved ? "yes" : "no")}</td><td>{F(t.Root.V)}</td><td>v{t.PolicyVersion}</td></tr>");
        return Page($"iteration {iteration}", body.Append("</tbody></table>").ToString());
    }

    static string TreePage(CampaignConfig config, PreferenceTree tree)
    {
        // The solved path: every node on the way to a terminal that the environment rewarded 1.
        var onPath = new HashSet<int>();
        foreach (var leaf in tree.Nodes.Where(n => n.IsTerminal && n.TerminalReward >= 1))
            for (var n = leaf.Index; n >= 0; n = tree.Nodes[n].Parent) onPath.Add(n);
        var body = new StringBuilder($"<p><a href=\"./\">{E(config.Name)}</a> / <a href=\"trees?iteration={tree.Iteration}\">iteration {tree.Iteration}</a></p>");
        body.Append($"<h1 class=\"text\">{E(tree.TreeId)}</h1><p class=\"meta\">{E(tree.Algorithm)}, policy v{tree.PolicyVersion}, {tree.Nodes.Count} nodes, " +
                    $"{(tree.Solved ? "solved" : "not solved")}</p><pre>{E(tree.Root.StepText.TrimEnd())}</pre><ul class=\"tree\">");
        void Node(int index)
        {
            var n = tree.Nodes[index];
            var classes = "node" + (onPath.Contains(index) ? " solved-path" : "") + (n.IsTerminal && n.TerminalReward < 1 ? " terminal-fail" : "");
            body.Append($"<li class=\"{classes}\" data-index=\"{index}\">");
            if (index > 0)
            {
                var outcome = n.IsTerminal ? $" reward={F(n.TerminalReward)} ({E(n.TerminalReason)})" : "";
                body.Append($"<span class=\"step\">[{index}] {E(n.StepText.TrimEnd())}</span> <span class=\"meta\">N={n.Visits} Q={F(n.Q)}{outcome}" +
                            $"{string.Concat(n.CriticScores.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $" {E(c.Key)}={F(c.Value)}"))} v{n.PolicyVersion}</span>");
            }
            else body.Append($"<span class=\"step\">root</span> <span class=\"meta\">N={n.Visits} V={F(n.V)}</span>");
            if (n.Children.Count > 0)
            {
                body.Append("<ul>");
                foreach (var c in n.Children) Node(c);
                body.Append("</ul>");
            }
            body.Append("</li>");
        }
        Node(0);
        body.Append("</ul>");
        var examples = PreferenceLearning.Extract([tree], config.Preferences, config.Seed);
        body.Append($"<h2>Pairs ({E(config.Preferences.Extractor)}): {examples.Count}</h2>");
        foreach (var e in examples)
        {
            body.Append($"<div class=\"example\"><p class=\"meta\">{E(e.Kind.ToString())} after</p><pre>{E(e.Prompt.TrimEnd())}</pre><table><tbody>");
            for (var k = 0; k < e.Candidates.Count; k++)
            {
                var role = e.Kind == ExampleKind.Pair || e.Kind == ExampleKind.List ? k == 0 ? "chosen" : k == e.Candidates.Count - 1 ? "rejected" : "" : "";
                body.Append($"<tr class=\"{role}\"><td>{E(role)}</td><td>{F(e.Candidates[k].Score)}</td><td class=\"text\">{E(e.Candidates[k].Text.TrimEnd())}</td></tr>");
            }
            body.Append("</tbody></table></div>");
        }
        return Page(tree.TreeId, body.ToString());
    }
}
