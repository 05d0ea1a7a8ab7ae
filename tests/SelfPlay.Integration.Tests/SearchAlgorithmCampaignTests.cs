using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// Every search.algorithm runs in a Game-of-24 campaign through the real CLI: a tiny quick campaign (no warm-up
/// epochs, no evaluation, no training epochs, 4 trees, small per-algorithm budgets) that must store one tree per task,
/// made by that algorithm.
/// </summary>
public sealed class SearchAlgorithmCampaignTests
{
    [Theory]
    [InlineData("mcts", "search.mcts.parallel-simulations=3", "search.mcts.commit-and-reuse=true")]
    [InlineData("mcts", "search.mcts.selection=ucb1", "search.mcts.value=agent-q")]
    [InlineData("best-first", "search.best-first.look-ahead=2", "search.best-first.max-expansions=2")]
    [InlineData("spar", "search.spar.branch=2", "preferences.extractor=spar")]
    [InlineData("beam", "search.beam.width=2", "search.expansions=2")]
    [InlineData("dfsdt", "search.dfsdt.max-expansions=4", "search.expansions=2")]
    [InlineData("tree-rollout", "search.tree-rollout.branch-depths=0,2", "search.tree-rollout.max-width=4")]
    public async Task Every_algorithm_runs_in_a_game24_campaign(string algorithm, string setting1, string setting2)
    {
        var runDir = Path.Combine(Path.GetTempPath(), $"selfplay-{algorithm}-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"),
                "--set", $"search.algorithm={algorithm}", "--set", setting1, "--set", setting2,
                "--set", "iterations.trees=4", "--set", "warmup.epochs=0", "--set", "eval.greedy=false", "--set", "learner.epochs=0",
                "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json"))))
                Assert.Equal(4, summary.RootElement.GetProperty("iterations")[1].GetProperty("trees").GetInt32());

            var system = ActorSystem.Create("algorithm-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), runDir, serilog: false));
            try
            {
                var trees = await TreeQueries.IterationTreesAsync(system, "game24-quick", 1);
                Assert.Equal(4, trees.Count);
                Assert.All(trees, t =>
                {
                    Assert.Equal(algorithm, t.Algorithm);
                    Assert.True(t.Nodes.Count > 1, t.TreeId);
                    Assert.True(t.Stats.WallMs > 0 && t.Stats.ProposerCalls > 0, t.TreeId);
                    Assert.All(t.Nodes.Skip(1), n => Assert.Equal(n.TokenIds.Length, n.LogProbs.Length));
                });
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
}
