using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// `selfplay dashboard` on a finished quick campaign, loaded in Debian's chromium (headless, scripts run): the rendered
/// page holds the numbers of summary.json, a tree opens with its nodes and solved path, and a screenshot is saved under
/// tests/TestResults.
/// </summary>
public sealed class DashboardTests(QuickCampaign campaign) : IClassFixture<QuickCampaign>
{
    static async Task<string> ChromiumAsync(params string[] args)
    {
        var start = new ProcessStartInfo("chromium") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--headless", "--no-sandbox", "--disable-gpu", $"--user-data-dir={Path.Combine(Path.GetTempPath(), "selfplay-chromium-" + Guid.NewGuid().ToString("N"))}", .. args])
            start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception) { throw new Xunit.Sdk.XunitException("chromium is not installed (tests/run.sh installs it with apt-get as root)"); }
        var output = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return await output;
    }

    [Fact]
    public async Task The_page_shows_the_summary_and_a_tree_in_a_real_browser()
    {
        Assert.Equal(0, campaign.Result.ExitCode);
        await using var dashboard = CliProcess.Start("dashboard", "dashboard", "--run-dir", campaign.RunDir, "--port", "0");
        var url = (await dashboard.WaitForAsync(@"dashboard on (http://127\.0\.0\.1:\d+)", TimeSpan.FromMinutes(1))).Groups[1].Value;

        // The overview after its script ran: the status and every iteration's held-out result, as summary.json has them.
        var dom = await ChromiumAsync("--virtual-time-budget=3000", "--dump-dom", url + "/");
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(campaign.RunDir, "summary.json")));
        Assert.Contains($"<b id=\"status\">{summary.RootElement.GetProperty("status").GetString()}</b>", dom);
        var cells = Regex.Matches(dom, "<td class=\"held-out\">([^<]*)</td>").Select(m => m.Groups[1].Value).ToList();
        var expected = summary.RootElement.GetProperty("iterations").EnumerateArray()
            .Select(r => $"{r.GetProperty("heldOut").GetProperty("solved").GetInt32()}/{r.GetProperty("heldOut").GetProperty("total").GetInt32()}").ToList();
        Assert.Equal(expected, cells);
        Assert.Contains("src=\"plot.svg\"", dom);
        Assert.Contains("<span id=\"progress\">completed, iteration 2: 1/1</span>", dom); // progress.json's last state, formatted by the script

        // An iteration's trees, then one tree: its nodes, the solved path when it was solved, the pairs section.
        var list = await ChromiumAsync("--dump-dom", url + "/trees?iteration=1");
        var links = Regex.Matches(list, "href=\"(tree\\?id=[^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(16, links.Count);
        var tree = await ChromiumAsync("--dump-dom", $"{url}/{links[0].Replace("&amp;", "&")}");
        Assert.True(Regex.Matches(tree, "<li class=\"node").Count > 1, tree);
        if (tree.Contains(", solved</p>")) Assert.Contains("solved-path", tree);
        Assert.Contains("<h2>Pairs (mcts-dpo)", tree);

        var screenshot = Path.Combine(CliRunner.RepoRoot, "tests", "TestResults", "dashboard.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await ChromiumAsync("--window-size=1280,1700", $"--screenshot={screenshot}", url + "/");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(screenshot)[..4]);
    }

    [Fact]
    public async Task A_dashboard_off_loopback_needs_a_token()
    {
        var result = await CliRunner.RunAsync("dashboard", "--run-dir", campaign.RunDir, "--host", "0.0.0.0", "--port", "0");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("needs --token-env VAR", result.Stderr);
    }
}

/// <summary>--metrics-port: the SelfPlay meter in Prometheus' text format over real HTTP.</summary>
public sealed class PrometheusMetricsTests
{
    [Fact]
    public async Task Metrics_are_served_in_the_prometheus_text_format()
    {
        using var metrics = new SelfPlay.Cli.Dashboard.PrometheusMetrics();
        SelfPlay.Actors.Hosting.SelfPlayMetrics.Trees.Add(3);
        SelfPlay.Actors.Hosting.SelfPlayMetrics.LeaseExpiries.Add(1);
        SelfPlay.Actors.Hosting.SelfPlayMetrics.Queue(5, 2);
        await using var app = await metrics.StartAsync(0);
        using var http = new HttpClient();
        using var response = await http.GetAsync(app.Urls.First() + "/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE selfplay_trees_total counter\n", text);
        Assert.Contains("# TYPE selfplay_queue_pending gauge\n", text);
        // Other tests in this process may add trees too: at least what this one added.
        double Value(string name) => double.Parse(System.Text.RegularExpressions.Regex.Match(text, $"^{name} (\\S+)$", System.Text.RegularExpressions.RegexOptions.Multiline).Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Value("selfplay_trees_total") >= 3);
        Assert.True(Value("selfplay_leases_expired_total") >= 1);
        Assert.All(text.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.Matches(@"^(# (HELP|TYPE) selfplay_\w+ .+|selfplay_\w+ -?[0-9.eE+-]+)$", line));
    }
}
