using System.Text.Json;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// The quick SPaR campaign (instructions-quick.conf) through the real CLI: its refinement pairs, exported for TRL, are
/// whole responses that differ, and training on them changes the policy.
/// </summary>
public sealed class SparCampaignTests
{
    [Fact]
    public async Task Quick_instructions_campaign_exports_non_empty_different_refinement_pairs_and_learns()
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-spar-" + Guid.NewGuid().ToString("N"));
        try
        {
            // Three epochs over the pairs: enough optimizer steps to see the loss fall.
            var result = await CliRunner.RunAsync("run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/instructions-quick.conf"),
                "--set", "learner.epochs=3", "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            TrainingChecks.AssertLearned(runDir);

            var file = Path.Combine(runDir, "pairs.jsonl");
            var export = await CliRunner.RunAsync("export", "--run-dir", runDir, "--format", "trl-preference", "--out", file);
            Assert.True(export.ExitCode == 0, export.Stdout + export.Stderr);
            var records = File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.NotEmpty(records);
            foreach (var r in records)
            {
                var (prompt, chosen, rejected) = (r.GetProperty("prompt").GetString()!, r.GetProperty("chosen").GetString()!, r.GetProperty("rejected").GetString()!);
                Assert.StartsWith("Write about ", prompt);
                Assert.False(string.IsNullOrWhiteSpace(chosen) || string.IsNullOrWhiteSpace(rejected), r.ToString());
                Assert.NotEqual(chosen, rejected);
                // One line each: a whole response, never responses joined.
                Assert.Equal(1, chosen.Count(ch => ch == '\n'));
                Assert.Equal(1, rejected.Count(ch => ch == '\n'));
                // A refinement edits the response: it keeps its first words (a one-word response can only be sampled afresh).
                Assert.True(chosen.StartsWith(rejected[..(rejected.IndexOf(' ') + 1)], StringComparison.Ordinal), r.ToString());
            }

            // inspect --pairs: the same pairs, none empty or identical; text and JSON; bad combinations in one line.
            var inspect = await CliRunner.RunAsync("inspect", "--pairs", "--run-dir", runDir, "--iteration", "1", "--format", "json");
            Assert.True(inspect.ExitCode == 0, inspect.Stdout + inspect.Stderr);
            var report = JsonDocument.Parse(inspect.Stdout).RootElement;
            Assert.Equal("spar", report.GetProperty("configured").GetString());
            var spar = Assert.Single(report.GetProperty("extractors").EnumerateArray());   // SPaR trees: only its own pairs
            Assert.Equal(records.Count, spar.GetProperty("pairs").GetInt32());
            Assert.Equal(0, spar.GetProperty("emptySpans").GetInt32());
            Assert.Equal(0, spar.GetProperty("identical").GetInt32());
            Assert.True(spar.GetProperty("chosenTokens").GetProperty("min").GetDouble() > 0);
            Assert.Equal(1.0, spar.GetProperty("scoreGap").GetProperty("min").GetDouble());     // accepted (1) vs failing (0)
            var text = await CliRunner.RunAsync("inspect", "--pairs", "--run-dir", runDir);
            Assert.Matches($@"spar\*\s+{records.Count}\s+0\s+0\s", text.Stdout);
            var misread = await CliRunner.RunAsync("export", "--run-dir", runDir, "--format", "trl-preference", "--extractor", "mcts-dpo", "--out", file);
            Assert.Equal(2, misread.ExitCode);
            Assert.Contains("only --extractor spar reads", misread.Stderr + misread.Stdout);
            var bad = await CliRunner.RunAsync("inspect", "--pairs", "--tree", "x", "--run-dir", runDir);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("--tree ID or --pairs, not both", bad.Stderr + bad.Stdout);
        }
        finally
        {
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }
}
