using System.Text.Json;
using Akka.Actor;
using Akka.Streams;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Tests.Shared;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// Campaigns that lose processes, nodes or their database, run as real `selfplay` processes on 127.0.0.1.
/// Each ends with exactly one stored tree per task of every iteration.
/// </summary>
public sealed class FaultTests : IDisposable
{
    static readonly TimeSpan Long = TimeSpan.FromMinutes(4);
    static string QuickConfig => Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf");
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-fault-" + Guid.NewGuid().ToString("N"));

    static string SearchAt(int iteration, int atLeast, int total) =>
        $@"\[iteration {iteration}\] search +0*([{atLeast}-9]|[1-9]\d)/{total}\b";

    [Fact]
    public async Task A_campaign_stopped_mid_iteration_resumes_at_that_iteration_and_stores_every_tree_once()
    {
        await using (var run = CliProcess.Start("run", "run", "--config", QuickConfig, "--set", "iterations.count=1",
                         "--set", "iterations.trees=24", "--set", "actors.search-workers=2", "--run-dir", _dir))
        {
            await run.WaitForAsync(SearchAt(1, 3, 24), Long);
            run.Kill(); // every process of the campaign is gone, mid-iteration
        }
        var stopped = Summary();
        Assert.Equal("running", stopped.GetProperty("status").GetString());
        Assert.Single(stopped.GetProperty("iterations").EnumerateArray()); // the warm-up only

        var resumed = await CliRunner.RunAsync("run", "--resume", "--run-dir", _dir);
        Assert.True(resumed.ExitCode == 0, resumed.Stdout + resumed.Stderr);
        Assert.Matches(@"resuming at iteration 1 \(policy v0, \d+ of 24 tasks done\)", File.ReadAllText(Path.Combine(_dir, "selfplay.log")));
        var summary = Summary();
        Assert.Equal("completed", summary.GetProperty("status").GetString());
        var rows = summary.GetProperty("iterations").EnumerateArray().ToList();
        Assert.Equal([0, 1], rows.Select(r => r.GetProperty("iteration").GetInt32()));
        Assert.Equal([0, 24], rows.Select(r => r.GetProperty("trees").GetInt32()));
        // The same tree count as an uninterrupted run of this configuration: one tree per task and iteration.
        await AssertOneTreePerTask(new PersistenceConfig("sqlite", ""), "game24-quick", 24, 1);

        // A completed campaign resumed again reports completion and changes nothing.
        var again = await CliRunner.RunAsync("run", "--resume", "--run-dir", _dir);
        Assert.True(again.ExitCode == 0, again.Stderr);
        await AssertOneTreePerTask(new PersistenceConfig("sqlite", ""), "game24-quick", 24, 1);
    }

    [Fact]
    public async Task Resume_needs_a_run_folder_with_a_campaign()
    {
        var missing = await CliRunner.RunAsync("run", "--resume", "--run-dir", _dir);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("holds no campaign to resume", missing.Stderr);
        var mixed = await CliRunner.RunAsync("run", "--resume", "--run-dir", _dir, "--set", "iterations.count=3");
        Assert.Equal(2, mixed.ExitCode);
        Assert.Contains("--config and --set are not allowed", mixed.Stderr);
    }

    [PostgresFact]
    public async Task On_a_cluster_a_killed_search_node_and_a_killed_learner_cost_only_their_work_in_flight()
    {
        var database = await TestPostgres.NewDatabaseAsync();
        string[] sets = ["--config", QuickConfig, "--run-dir", _dir, "--set", "persistence.provider=postgres",
            "--set", $"persistence.connection-string={database}", "--set", "iterations.count=2", "--set", "iterations.trees=16",
            "--set", "actors.search-workers=2", "--set", "actors.lease-seconds=120"];
        var seedPort = CliProcess.FreePort();
        var seed = $"127.0.0.1:{seedPort}";
        var processes = new List<CliProcess>();
        CliProcess Node(string name, string roles, int port) =>
            Add(CliProcess.Start(name, ["node", .. sets, "--roles", roles, "--seed", seed, "--port", port.ToString()]));
        CliProcess Add(CliProcess p)
        {
            processes.Add(p);
            return p;
        }
        try
        {
            var coordinator = Node("coordinator", "coordinator,replay", seedPort);
            await coordinator.WaitForAsync("node up", Long);
            var searchA = Node("search-a", "search,inference", CliProcess.FreePort());
            var searchB = Node("search-b", "search,inference", CliProcess.FreePort());
            var learner = Node("learner", "learner", CliProcess.FreePort());
            foreach (var node in new[] { searchA, searchB, learner }) await node.WaitForAsync("node up", Long);

            var run = Add(CliProcess.Start("run", ["run", .. sets, "--seed", seed]));
            await run.WaitForAsync(SearchAt(1, 3, 16), Long);
            searchA.Kill(); // mid-iteration: its leased tasks are handed out again once the cluster downs the node

            await run.WaitForAsync(@"\[iteration 1\] search +16/16\b", Long);
            learner.Kill(); // as iteration 1's training starts
            var restarted = Node("learner-2", "learner", CliProcess.FreePort());

            Assert.True(await run.WaitForExitAsync(Long) == 0, run.Output + coordinator.Output);
            var logs = string.Concat(Directory.GetFiles(_dir, "node-*.log").Select(File.ReadAllText));
            Assert.Matches("lease (released|expired): task", logs);
            Assert.Matches(@"learner resumed from policy v[01]", logs); // the restarted learner loaded its last checkpoint
            var summary = Summary();
            Assert.Equal("completed", summary.GetProperty("status").GetString());
            Assert.Equal([0, 16, 16], summary.GetProperty("iterations").EnumerateArray().Select(r => r.GetProperty("trees").GetInt32()));
            Assert.All(summary.GetProperty("iterations").EnumerateArray(), r => Assert.Equal(0, r.GetProperty("failedTasks").GetInt32()));
            await AssertOneTreePerTask(new PersistenceConfig("postgres", database), "game24-quick", 16, 2);
        }
        finally
        {
            // Non-seed nodes first, so that the seed does not wait for them to leave.
            for (var i = processes.Count - 1; i >= 0; i--) await processes[i].DisposeAsync();
        }
    }

    /// <summary>
    /// The node running the coordinator singleton (the oldest coordinator node, also the first seed) is killed mid-iteration.
    /// The other members are already in the cluster, so they need no seed; the four that are left (a second coordinator
    /// node, the search and learner node, the `run` process) are a majority, so keep-majority downs the dead node, the
    /// singleton starts on the second coordinator node, recovers the campaign from the journal and finishes it.
    /// </summary>
    [PostgresFact]
    public async Task A_killed_coordinator_node_hands_the_campaign_to_another_coordinator_node()
    {
        var database = await TestPostgres.NewDatabaseAsync();
        string[] sets = ["--config", QuickConfig, "--run-dir", _dir, "--set", "persistence.provider=postgres",
            "--set", $"persistence.connection-string={database}", "--set", "iterations.count=1", "--set", "iterations.trees=12",
            "--set", "actors.search-workers=2", "--set", "actors.lease-seconds=120", "--set", "eval.greedy=false"];
        var seedPort = CliProcess.FreePort();
        var seed = $"127.0.0.1:{seedPort}";
        var processes = new List<CliProcess>();
        CliProcess Start(string name, params string[] args)
        {
            var p = CliProcess.Start(name, args);
            processes.Add(p);
            return p;
        }
        CliProcess Node(string name, string roles, int port) => Start(name, ["node", .. sets, "--roles", roles, "--seed", seed, "--port", port.ToString()]);
        try
        {
            var first = Node("coordinator-a", "coordinator,replay", seedPort);
            await first.WaitForAsync("node up", Long); // the oldest coordinator node: the singleton starts here
            var second = Node("coordinator-b", "coordinator,replay", CliProcess.FreePort());
            var worker = Node("search-learner", "search,inference,learner", CliProcess.FreePort());
            foreach (var node in new[] { second, worker }) await node.WaitForAsync("node up", Long);

            var run = Start("run", ["run", .. sets, "--seed", seed]);
            await run.WaitForAsync(SearchAt(1, 3, 12), Long);
            first.Kill(); // the coordinator singleton, a replay region and the sharding coordinator go with it

            Assert.True(await run.WaitForExitAsync(Long) == 0, run.Output + second.Output);
            var secondLog = File.ReadAllText(Directory.GetFiles(_dir, $"node-*-{second.Pid}.log").Single());
            Assert.Matches(@"coordinator \(re\)started: recovered \d+ journal events, iteration 1", secondLog);
            Assert.Matches(@"resuming at iteration 1 \(policy v0, \d+ of 12 tasks done\)", secondLog);
            var summary = Summary();
            Assert.Equal("completed", summary.GetProperty("status").GetString());
            Assert.Equal([0, 12], summary.GetProperty("iterations").EnumerateArray().Select(r => r.GetProperty("trees").GetInt32()));
            Assert.Equal(0, summary.GetProperty("iterations")[1].GetProperty("failedTasks").GetInt32());
            await AssertOneTreePerTask(new PersistenceConfig("postgres", database), "game24-quick", 12, 1);
            // Journaled leases: the new coordinator left the tasks in flight to their workers, so no tree was searched twice
            // (a store retried after a time-out may write the same search's tree twice: same id, same creation time).
            var searches = await SearchesStored(new PersistenceConfig("postgres", database), "game24-quick", 1);
            var leaseLines = Directory.GetFiles(_dir, "node-*.log").SelectMany(File.ReadLines)
                .Where(l => l.Contains("lease") || l.Contains("store attempt") || l.Contains("failed (attempt"));
            Assert.True(searches == 12, $"{searches} searches stored for 12 tasks; the nodes' lease lines:\n{string.Join("\n", leaseLines)}");
        }
        finally
        {
            for (var i = processes.Count - 1; i >= 0; i--) await processes[i].DisposeAsync();
        }
    }

    [PostgresFact]
    public async Task When_PostgreSQL_stops_for_10_seconds_the_campaign_waits_and_goes_on_within_seconds_of_its_return()
    {
        Assert.True(TestPostgresServer.CanRestart, "POSTGRES_DIR/POSTGRES_BIN are not set: the server of tests/postgres.sh is needed");
        var database = await TestPostgres.NewDatabaseAsync();
        await using var run = CliProcess.Start("run", "run", "--config", QuickConfig, "--run-dir", _dir,
            "--set", "persistence.provider=postgres", "--set", $"persistence.connection-string={database}",
            "--set", "iterations.trees=80", "--set", "actors.search-workers=2");
        await run.WaitForAsync(SearchAt(1, 4, 80), Long);
        var outage = TimeSpan.FromSeconds(10);
        await TestPostgresServer.StopAsync();
        try
        {
            await Task.Delay(outage);
        }
        finally
        {
            await TestPostgresServer.StartAsync();
        }
        // The outage costs what it lasts: the next task is recorded within seconds of the server's return.
        var back = System.Diagnostics.Stopwatch.StartNew();
        var doneAtReturn = LastSearchCount(run.Output);
        while (LastSearchCount(run.Output) <= doneAtReturn && !run.HasExited && back.Elapsed < Long) await Task.Delay(100);
        var resumed = back.Elapsed.TotalSeconds;
        Directory.CreateDirectory(ResultsDir);
        File.WriteAllText(Path.Combine(ResultsDir, "postgres-outage.json"), JsonSerializer.Serialize(new { outageSeconds = outage.TotalSeconds, resumedSecondsAfterReturn = Math.Round(resumed, 1), doneAtReturn }));
        Assert.True(resumed < 15, $"the campaign recorded its next task {resumed:F1} s after PostgreSQL was back");
        Assert.True(await run.WaitForExitAsync(Long) == 0, run.Output);
        Assert.Matches("Failed to persist|Persistence failure|could not store the tree", File.ReadAllText(Path.Combine(_dir, "selfplay.log"))); // the outage was seen
        var summary = Summary();
        Assert.Equal("completed", summary.GetProperty("status").GetString());
        Assert.Equal(0, summary.GetProperty("iterations")[1].GetProperty("failedTasks").GetInt32());
        await AssertOneTreePerTask(new PersistenceConfig("postgres", database), "game24-quick", 80, 1);
    }

    static string ResultsDir => Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "TestResults");

    /// <summary>The highest "search N/TOTAL" count the run has printed so far.</summary>
    static int LastSearchCount(string output) =>
        System.Text.RegularExpressions.Regex.Matches(output, @"\] search +(\d+)/\d+").Select(m => int.Parse(m.Groups[1].Value)).DefaultIfEmpty(0).Max();

    JsonElement Summary() => JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "summary.json"))).RootElement.Clone();

    /// <summary>Searches whose trees the journal holds for the iteration: one per task unless a task was searched twice
    /// (each search stamps its tree with its start time).</summary>
    async Task<int> SearchesStored(PersistenceConfig store, string campaign, int iteration)
    {
        var system = ActorSystem.Create("fault-count", SelfPlayHost.AkkaConfig(store, _dir, serilog: false));
        try
        {
            var searches = new HashSet<(string, DateTime)>();
            await TreeQueries.ReadJournal(system).CurrentEventsByTag(TreeBucket.IterationTag(campaign, iteration), Akka.Persistence.Query.Offset.NoOffset())
                .RunForeach(e =>
                {
                    if (e.Event is TreesStored stored)
                        foreach (var tree in stored.Trees) searches.Add((tree.TreeId, tree.CreatedAtUtc));
                }, system.Materializer());
            return searches.Count;
        }
        finally
        {
            await system.Terminate();
        }
    }

    async Task AssertOneTreePerTask(PersistenceConfig store, string campaign, int tasks, int iterations)
    {
        var system = ActorSystem.Create("fault-check", SelfPlayHost.AkkaConfig(store, _dir, serilog: false));
        try
        {
            for (var i = 1; i <= iterations; i++)
            {
                var trees = await TreeQueries.IterationTreesAsync(system, campaign, i);
                Assert.Equal(tasks, trees.Count);
                Assert.Equal(tasks, trees.Select(t => t.TreeId).Distinct().Count());
                Assert.All(trees, t => Assert.Equal(i - 1, t.PolicyVersion));
            }
            Assert.Equal(tasks * iterations, (await TreeQueries.CampaignTreesAsync(system, campaign)).Count);
        }
        finally
        {
            await system.Terminate();
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
