using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Models.Heads;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// A trained critic in a campaign, through the real CLI: each iteration the learner trains it on the stored trees and
/// publishes it with the policy; the critic actors load it (sha256 checked) before the next search starts.
/// </summary>
public sealed class CriticCampaignTests
{
    [Theory]
    [InlineData("value")]
    [InlineData("prm")]
    public async Task A_critic_is_trained_each_iteration_and_loaded_before_the_next_search(string kind)
    {
        var runDir = Path.Combine(Path.GetTempPath(), $"selfplay-critic-{kind}-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"),
                "--set", $"search.critic={kind}", "--set", "critic.epochs=1", "--set", "critic.held-out-share=0.25",
                "--set", "iterations.count=2", "--set", "iterations.trees=8", "--set", "eval.greedy=false", "--set", "learner.epochs=0",
                "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);

            using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json"))))
            {
                var rows = summary.RootElement.GetProperty("iterations");
                Assert.False(rows[0].TryGetProperty("critic", out _)); // the warm-up trains no critic
                for (var i = 1; i <= 2; i++)
                {
                    var critic = rows[i].GetProperty("critic");
                    Assert.Equal(i, critic.GetProperty("version").GetInt32());
                    Assert.Equal(kind, critic.GetProperty("kind").GetString());
                    Assert.True(critic.GetProperty("examples").GetInt32() > 0);
                    Assert.True(double.IsFinite(critic.GetProperty("firstLoss").GetDouble()));
                    // The checkpoint the critic actors loaded is the one on disk, whole.
                    using var loaded = CriticModel.Load(critic.GetProperty("directory").GetString()!, "cpu", critic.GetProperty("sha256").GetString());
                    Assert.Equal(kind, loaded.Kind);
                }
            }
            // The next iteration's search waits for the critic actor to hold the new critic.
            var log = File.ReadAllText(Path.Combine(runDir, "selfplay.log"));
            var loaded1 = log.IndexOf($"critic: loaded {kind} critic v1", StringComparison.Ordinal);
            Assert.True(loaded1 >= 0, log);
            Assert.True(loaded1 < log.IndexOf("iteration 2: first task leased", StringComparison.Ordinal), "critic v1 was loaded after iteration 2 started");

            var system = ActorSystem.Create("critic-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), runDir, serilog: false));
            try
            {
                var second = await TreeQueries.IterationTreesAsync(system, "game24-quick", 2);
                Assert.Equal(8, second.Count);
                Assert.All(second, t => Assert.Equal(kind, t.Critic));
                // Terminal nodes keep their verified reward whoever scores the open ones (the quick policy rarely
                // writes a valid step; CriticActorTests checks the scores of open nodes).
                Assert.All(second.SelectMany(t => t.Nodes.Skip(1)).Where(n => n.IsTerminal), n => Assert.Contains(n.CriticScores[kind], new[] { 0.0, 1.0 }));
                if (kind == "prm") Assert.All(second.SelectMany(t => t.Nodes.Skip(1)), n => Assert.InRange(n.CriticScores[kind], 0, 1));
            }
            finally
            {
                await system.Terminate();
            }
        }
        finally
        {
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }
    [Fact]
    public async Task A_training_retry_after_the_critic_failed_to_save_keeps_the_policy_it_trained()
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-critic-retry-" + Guid.NewGuid().ToString("N"));
        var criticDir = Path.Combine(runDir, "checkpoints", "critic-v1");
        try
        {
            var run = CliRunner.RunAsync("run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"),
                "--set", "search.critic=value", "--set", "critic.epochs=1", "--set", "iterations.count=1", "--set", "iterations.trees=8",
                "--set", "eval.greedy=false", "--set", "learner.epochs=0", "--run-dir", runDir);
            // A file where the critic's folder goes makes its save fail like a disk error would; it is removed once the
            // coordinator has logged the failure, so the resent command succeeds.
            var log = Path.Combine(runDir, "selfplay.log");
            var blocked = false;
            while (!run.IsCompleted)
            {
                if (!blocked && Directory.Exists(Path.Combine(runDir, "checkpoints", "v0")))
                {
                    File.WriteAllText(criticDir, "not a folder");
                    blocked = true;
                }
                if (blocked && File.Exists(criticDir) && ReadShared(log).Contains("training failed (attempt 1 of", StringComparison.Ordinal))
                    File.Delete(criticDir);
                await Task.Delay(50);
            }
            var result = await run;
            Assert.True(blocked, "the warm-up checkpoint never appeared");
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);

            var text = File.ReadAllText(log);
            Assert.Contains("training failed (attempt 1 of", text);
            // The policy of iteration 1 was trained once; only the critic was trained again.
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(text, "iteration 1: training (?!the )"));
            Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(text, "iteration 1: training the value critic").Count);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            var critic = summary.RootElement.GetProperty("iterations")[1].GetProperty("critic");
            using var loaded = CriticModel.Load(critic.GetProperty("directory").GetString()!, "cpu", critic.GetProperty("sha256").GetString());
            Assert.Equal("value", loaded.Kind);
        }
        finally
        {
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }

    /// <summary>The campaign's log while it is being written.</summary>
    static string ReadShared(string path)
    {
        if (!File.Exists(path)) return "";
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(stream).ReadToEnd();
    }
}
