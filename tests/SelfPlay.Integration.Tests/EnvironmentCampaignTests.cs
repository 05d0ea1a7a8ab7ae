using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.WebShop;

namespace SelfPlay.Integration.Tests;

/// <summary>Every built-in environment's quick campaign through the real CLI, as its config file says.</summary>
public class EnvironmentCampaignTests
{
    [Theory]
    [InlineData("countdown")]
    [InlineData("word-problems")]
    [InlineData("tool-use")]
    [InlineData("webshop")]
    [InlineData("instructions")]
    public async Task Quick_campaign_completes(string environment)
    {
        var runDir = Path.Combine(Path.GetTempPath(), $"selfplay-{environment}-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("run", "--config", $"hocon/campaigns/{environment}-quick.conf", "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            var root = summary.RootElement;
            Assert.Equal(environment, root.GetProperty("environment").GetString());
            Assert.Equal("completed", root.GetProperty("status").GetString());
            var rows = root.GetProperty("iterations");
            Assert.Equal(2, rows.GetArrayLength());
            Assert.Equal(12, rows[1].GetProperty("trees").GetInt32());
            Assert.Equal(0, rows[1].GetProperty("failedTasks").GetInt32());
            Assert.Equal(20, rows[1].GetProperty("heldOut").GetProperty("total").GetInt32());
            TrainingChecks.AssertTrainedOnPairs(runDir); // the quick conf's warm-up is good enough for pairs (it had 0)
            // Every held-out episode of each evaluation is on record, in the split's order, agreeing with the summary.
            for (var v = 0; v <= 1; v++)
            {
                var episodes = File.ReadAllLines(Path.Combine(runDir, "eval", $"v{v}.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
                Assert.Equal(20, episodes.Count);
                Assert.Equal(20, episodes.Select(e => e.GetProperty("TaskId").GetString()).Distinct().Count());
                Assert.Equal(rows[v].GetProperty("heldOut").GetProperty("solved").GetInt32(), episodes.Count(e => e.GetProperty("Solved").GetBoolean()));
                Assert.All(episodes, e => Assert.False(string.IsNullOrEmpty(e.GetProperty("State").GetString())));
            }
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }

    [Fact]
    public async Task The_environment_critic_scores_open_webshop_steps_with_the_shops_step_scores()
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-webshop-critic-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("run", "--config", "hocon/campaigns/webshop-quick.conf", "--set", "search.critic=environment",
                // Enough warm-up that the tiny policy writes some valid search[...] steps (open nodes to score).
                "--set", "warmup.share=0.5", "--set", "warmup.epochs=200", "--set", "eval.greedy=false", "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            var system = ActorSystem.Create("webshop-critic-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), runDir, serilog: false));
            try
            {
                var trees = await TreeQueries.IterationTreesAsync(system, "webshop-quick", 1);
                Assert.Equal(12, trees.Count);
                using var shop = ShopServer.Start(new Catalogue());
                using var env = new WebShopEnvironment(shop.Address, shop.Catalogue);
                var openScores = new List<double>();
                foreach (var tree in trees)
                {
                    Assert.Equal("environment", tree.Critic);
                    var task = new EnvTask(tree.TaskId, tree.TaskInput);
                    foreach (var node in tree.Nodes.Skip(1))
                    {
                        var score = node.CriticScores["environment"];
                        if (node.IsTerminal)
                        {
                            Assert.Equal(node.TerminalReward, score);
                            continue;
                        }
                        // The shop's own score of the step, recomputed here from the stored texts.
                        openScores.Add(score);
                        Assert.Equal(env.ScoreStep(task, tree.StateAt(node.Parent), node.Action, StepOutcome.Continue(node.StepText)), score);
                    }
                }
                Assert.True(openScores.Count > 0, "no open node was stored");
                Assert.Contains(openScores, s => s > 0); // some step found the goal or an item partly like it
            }
            finally
            {
                await system.Terminate();
            }
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }
}
