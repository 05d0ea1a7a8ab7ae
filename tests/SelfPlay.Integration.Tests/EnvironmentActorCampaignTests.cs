using System.Text.Json;
using System.Text.RegularExpressions;

namespace SelfPlay.Integration.Tests;

/// <summary>Campaigns whose environment runs in environment actors, through the real CLI.</summary>
public class EnvironmentActorCampaignTests
{
    static readonly string[] Quick =
    [
        "--set", "model.hidden-size=32", "--set", "model.intermediate-size=64", "--set", "model.layers=1", "--set", "model.heads=2",
        "--set", "model.kv-heads=1", "--set", "warmup.epochs=1", "--set", "iterations.count=1", "--set", "iterations.trees=12",
        "--set", "search.simulations=4", "--set", "search.expansions=3", "--set", "learner.epochs=1", "--set", "actors.search-workers=4",
        "--set", "environment.held-out=20", "--set", "environment.train-tasks=100",
    ];

    static string AdditionBin => Path.Combine(CliRunner.RepoRoot, "samples", "Addition", "bin",
        new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0");

    [Fact]
    public async Task With_cluster_placement_a_faulty_plugin_runs_in_environment_actors_and_the_campaign_completes()
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-envactors-" + Guid.NewGuid().ToString("N"));
        try
        {
            // One process holds every role, the environment role included: the search workers reach its environment
            // actors through the cluster-aware router, as they would on a cluster of separate environment nodes.
            var result = await CliRunner.RunAsync(["run", "--config", "samples/Addition/addition.conf",
                "--set", $"environment.type={typeof(FaultyAdditionProvider).FullName}, {typeof(FaultyAdditionProvider).Assembly.GetName().Name}",
                "--set", $"environment.plugin-folder={AdditionBin}", "--set", "environment.step-timeout-seconds=0.3", "--set", "name=faulty-env-actors",
                "--set", "actors.environment-placement=cluster", "--set", "actors.environment-actors=2", "--set", "actors.lease-seconds=60",
                .. Quick, "--run-dir", runDir]);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            Assert.Equal("completed", summary.RootElement.GetProperty("status").GetString());
            var row = summary.RootElement.GetProperty("iterations")[1];
            Assert.True(row.GetProperty("trees").GetInt32() > 0, row.ToString());
            // Steps that hang or throw were contained by the environment actors: logged once each, one line.
            var log = File.ReadAllText(Path.Combine(runDir, "selfplay.log"));
            Assert.Matches(new Regex(@"environment faulty-addition: task [^ ]*5: environment error: step timed out after 0\.3 s"), log);
            Assert.Matches(new Regex("environment faulty-addition: task [^ ]*7: environment error: InvalidOperationException: broken step"), log);
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }
}
