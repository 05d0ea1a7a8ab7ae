using System.Text.Json;
using SelfPlay.Actors.Campaign;

namespace SelfPlay.Integration.Tests;

/// <summary>`selfplay report` over summary.json files written by the campaign's own writer.</summary>
public class ReportTests
{
    static string RunFolder(string name, params double[] rates) => RunFolder(name, false, rates);

    static string RunFolder(string name, bool critic, params double[] rates)
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-report-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var rows = rates.Select((rate, i) => new IterationSummary(i, i == 0 ? "sft" : "selfplay", i, i == 0 ? 0 : 100, i * 10,
            new HeldOutResult((int)Math.Round(rate * 200), 200, rate), 60 + i, 30, 20, 5, 900, 40, 0, 1.5, 0.9, 0.7,
            Throughput: i == 0 ? null : new RoleThroughput(3.3, 30, 1234, 0.81, 50, 25),
            Critic: !critic || i == 0 ? null : new SelfPlay.Actors.Protocol.CriticReport(i, "prm", $"{name}/critic-v{i}", "ab", 4705 * i, 395, 0.2377, 0.1149,
                0.7803, 0.1532, 0.2913, 248))).ToList();
        new CampaignSummary(name, "countdown", "completed", rows, WallSeconds: 600).Write(dir);
        return dir;
    }

    [Fact]
    public async Task Report_prints_each_run_and_a_comparison_of_runs()
    {
        var dpo = RunFolder("dpo", 0.10, 0.15, 0.225);
        var tpo = RunFolder("tpo", 0.10, 0.12);
        var text = await CliRunner.RunAsync("report", "--run-dir", dpo, "--run-dir", tpo);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("dpo (countdown): completed, 10.0 min", text.Stdout);
        Assert.Contains("45/200 22.5%", text.Stdout);           // the last iteration's held-out result
        Assert.Contains("1234", text.Stdout);                    // inference tokens/s
        var comparison = text.Stdout.Split('\n').Single(l => l.StartsWith("dpo ") && l.Contains("pts"));
        Assert.Contains("10.0%", comparison);
        Assert.EndsWith("+12.5 pts", comparison.TrimEnd());
        Assert.EndsWith("+2.0 pts", text.Stdout.Split('\n').Single(l => l.StartsWith("tpo ") && l.Contains("pts")).TrimEnd());

        var markdown = await CliRunner.RunAsync("report", "--run-dir", dpo, "--format", "markdown");
        Assert.Contains("| 2 | selfplay | v2 | 100 | 40 | 20 | 45/200 22.5% |", markdown.Stdout);

        var json = await CliRunner.RunAsync("report", "--run-dir", dpo, "--format", "json");
        var parsed = JsonDocument.Parse(json.Stdout).RootElement[0];
        Assert.Equal(0.225, parsed.GetProperty("heldOut")[2].GetDouble(), 6);
    }

    [Fact]
    public async Task Runs_that_share_a_name_are_summarised_by_mean_and_range_over_seeds()
    {
        var text = await CliRunner.RunAsync("report", "--run-dir", RunFolder("dpo", 0.10, 0.20), "--run-dir", RunFolder("dpo", 0.12, 0.16),
            "--run-dir", RunFolder("dpo", 0.08, 0.24), "--run-dir", RunFolder("sft", 0.10, 0.30));
        Assert.Equal(0, text.ExitCode);
        var row = text.Stdout.Split('\n').Single(l => l.StartsWith("dpo ") && l.Contains(" to "));
        Assert.Equal("dpo  3  10.0% (8.0% to 12.0%)  20.0% (16.0% to 24.0%)  +10.0 pts (+4.0 pts to +16.0 pts)",
            string.Join("  ", row.Split("  ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
        Assert.Contains(text.Stdout.Split('\n'), l => l.StartsWith("sft ") && l.Contains(" 1 ") && l.Contains("+20.0 pts (+20.0 pts to +20.0 pts)"));
    }

    [Fact]
    public async Task A_sweep_runs_every_seed_of_every_setting_one_at_a_time_and_reports_them_over_seeds()
    {
        var root = Path.Combine(Path.GetTempPath(), "selfplay-sweep-" + Guid.NewGuid().ToString("N"));
        try
        {
            string[] args = ["sweep", "--config", "hocon/campaigns/game24-quick.conf", "--seeds", "2", "--set", "iterations.trees=4",
                "--set", "environment.held-out=8", "--variant", "preferences.extractor=mcts-dpo;learner.loss=dpo",
                "--variant", "preferences.extractor=solved-paths; learner.loss=sft", "--runs-dir", root];
            var result = await CliRunner.RunAsync(args);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            foreach (var seed in new[] { 1, 2 })
            {
                var first = Path.Combine(root, $"game24-quick-mcts-dpo-dpo-seed{seed}");
                var second = Path.Combine(root, $"game24-quick-solved-paths-sft-seed{seed}");
                Assert.Equal(("completed", "completed"), (CampaignSummary.Read(first).Status, CampaignSummary.Read(second).Status));
                Assert.Contains($"selfplay.seed = {seed}", File.ReadAllText(Path.Combine(first, "config.conf")));
                // The variant's settings go together; the second run of a seed starts from the first one's warm-up.
                var config = File.ReadAllText(Path.Combine(second, "config.conf"));
                Assert.Contains("loss = \"sft\"", config);
                Assert.Contains($"game24-quick-mcts-dpo-dpo-seed{seed}", config);
                Assert.Equal(CampaignSummary.Read(first).Iterations[0].HeldOut, CampaignSummary.Read(second).Iterations[0].HeldOut);
            }
            Assert.Contains(result.Stdout.Split('\n'), l => l.StartsWith("game24-quick-solved-paths-sft ") && l.Contains(" 2 ") && l.Contains(" to "));
            // Started again, the sweep keeps what completed.
            var again = await CliRunner.RunAsync(args);
            Assert.Equal(4, again.Stdout.Split('\n').Count(l => l.Contains("completed earlier, kept")));
            var unpaired = await CliRunner.RunAsync(["sweep", "--config", "hocon/campaigns/game24-quick.conf", "--seeds", "1", "--variant", "learner.loss"]);
            Assert.Equal(2, unpaired.ExitCode);
            Assert.Contains("--variant expects key=value;key=value", unpaired.Stderr);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, true);
        }
    }

    [Fact]
    public async Task Report_plot_writes_a_png_or_an_svg_with_the_runs_in_its_legends()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-plot-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string[] runs = ["--run-dir", RunFolder("dpo", 0.10, 0.20), "--run-dir", RunFolder("dpo", 0.12, 0.16), "--run-dir", RunFolder("sft", 0.10, 0.30)];
            var png = Path.Combine(dir, "runs.png");
            var result = await CliRunner.RunAsync(["report", .. runs, "--plot", png]);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            var bytes = File.ReadAllBytes(png);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
            Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
            Assert.Equal((900, 960), (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20))));

            var svg = Path.Combine(dir, "runs.svg");
            Assert.Equal(0, (await CliRunner.RunAsync(["report", .. runs, "--plot", svg])).ExitCode);
            var texts = System.Xml.Linq.XDocument.Load(svg).Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()).ToList();
            Assert.Contains("dpo (2 runs: mean, range)", texts);      // the seeds of one setting: mean and range
            Assert.Contains("sft", texts);
            Assert.Contains("held-out success", texts);
            Assert.Contains("sft: pairs", texts);

            var bad = await CliRunner.RunAsync(["report", .. runs, "--plot", Path.Combine(dir, "runs.jpg")]);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("--plot needs a .png or .svg file", bad.Stderr);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Report_shows_each_iterations_critic_against_the_constant_predictor()
    {
        var withCritic = await CliRunner.RunAsync("report", "--run-dir", RunFolder("prm", true, 0.10, 0.12, 0.13));
        Assert.Equal(0, withCritic.ExitCode);
        var v2 = withCritic.Stdout.Split('\n').Single(l => l.StartsWith("v2 "));
        Assert.Equal(["v2", "prm", "9410", "395", "0.2377", "->", "0.1149", "0.7803", "0.1532", "0.2913", "248.0"],
            v2.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("constant", (await CliRunner.RunAsync("report", "--run-dir", RunFolder("plain", 0.10, 0.12))).Stdout);
    }

    [Fact]
    public async Task Report_of_a_folder_without_a_summary_is_a_one_line_error()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-report-empty-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var result = await CliRunner.RunAsync("report", "--run-dir", dir);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("summary.json not found", result.Stderr);
        Assert.DoesNotContain('\n', result.Stderr.Trim());
        File.WriteAllText(Path.Combine(dir, "summary.json"), "{ truncated");
        result = await CliRunner.RunAsync("report", "--run-dir", dir);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("is not a campaign summary", result.Stderr);
        Assert.Equal(2, (await CliRunner.RunAsync("report")).ExitCode);
    }
}
