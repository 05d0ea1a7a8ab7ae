using System.Text.Json;

namespace SelfPlay.Integration.Tests;

/// <summary>The test-sized `bench cluster`: real processes, the real coordinator and replay, search processes killed
/// while they work; nothing may be lost or duplicated.</summary>
public sealed class BenchClusterTests
{
    [Fact]
    public async Task A_search_process_killed_mid_iteration_loses_no_task_and_duplicates_no_tree()
    {
        // Enough tasks that the search outlasts the kill at 12 s with margin (~400 tasks/s here without kills), and one
        // kill only: under the full suite's load a kill every 12 s kept the cluster from finishing in 5 minutes.
        const int tasks = 12000;
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-bench-cluster-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("bench", "cluster", "--processes", "3", "--workers", "12", "--tasks", tasks.ToString(),
                "--kill-every", "12", "--max-kills", "1", "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stderr[^Math.Min(3000, result.Stderr.Length)..]);
            using var json = JsonDocument.Parse(result.Stdout);
            var r = json.RootElement;
            Assert.True(r.GetProperty("kills").GetInt32() == 1, result.Stdout);
            Assert.Equal(0, r.GetProperty("tasksLost").GetInt32());
            Assert.Equal(0, r.GetProperty("duplicatedTreesInDataset").GetInt32());
            Assert.Equal(r.GetProperty("searchesStarted").GetInt32() - tasks, r.GetProperty("extraSearches").GetInt32());
            Assert.True(r.GetProperty("tasksPerSecond").GetDouble() > 0);
            Assert.True(r.GetProperty("leaseRoundTripMs").GetProperty("samples").GetInt32() > 100);
        }
        finally
        {
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task Kills_faster_than_the_failure_detector_are_refused()
    {
        var result = await CliRunner.RunAsync("bench", "cluster", "--kill-every", "5");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--kill-every must be 0 (no kills) or at least 12 s", result.Stderr);
    }
}
