using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Integration.Tests;

/// <summary>environment.exclude-file: a benchmark's tasks never reach the campaign's training data.</summary>
public sealed class ExclusionCampaignTests
{
    [Fact]
    public async Task No_excluded_task_is_searched_and_the_summary_counts_them()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-exclude-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // Every training puzzle but 20 is excluded (numbers reversed), so the 16 trees can only come from those 20.
            var train = new Game24Provider().Create(new EnvironmentConfig("game24", "operation", HeldOut: 40, SplitSeed: 24, MaxSteps: 4)).Train;
            var excluded = train.Skip(20).ToList();
            var file = Path.Combine(dir, "test-set.txt");
            File.WriteAllLines(file, excluded.Select(t => string.Join(' ', t.Input.Split(' ').Reverse())));
            var runDir = Path.Combine(dir, "run");
            var result = await CliRunner.RunAsync("run", "--config", "hocon/campaigns/game24-quick.conf", "--set", $"environment.exclude-file={file}",
                "--set", "environment.train-tasks=2000", "--set", "name=excluding", "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json"))))
                Assert.Equal(excluded.Count, summary.RootElement.GetProperty("excludedTasks").GetInt32());

            var system = ActorSystem.Create("exclusion-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), runDir, serilog: false));
            try
            {
                var trees = await TreeQueries.CampaignTreesAsync(system, "excluding");
                Assert.Equal(16, trees.Count);
                var banned = excluded.Select(t => TaskExclusion.Canonical(t.Input)).ToHashSet();
                Assert.All(trees, t => Assert.DoesNotContain(TaskExclusion.Canonical(t.TaskInput), banned));
            }
            finally
            {
                await system.Terminate();
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
