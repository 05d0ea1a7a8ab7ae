using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Models.Checkpoints;

namespace SelfPlay.Integration.Tests;

/// <summary>One quick campaign through the real CLI, shared by the tests that inspect its output.</summary>
public sealed class QuickCampaign : IAsyncLifetime
{
    public string RunDir { get; } = Path.Combine(Path.GetTempPath(), "selfplay-e2e-" + Guid.NewGuid().ToString("N"));
    public CliResult Result { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Result = await CliRunner.RunAsync("run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"),
            "--set", "iterations.count=2", "--run-dir", RunDir);

    public Task DisposeAsync()
    {
        try { Directory.Delete(RunDir, true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

public sealed class CampaignTests(QuickCampaign campaign) : IClassFixture<QuickCampaign>
{
    [Fact]
    public void Quick_campaign_completes_and_writes_the_summary()
    {
        Assert.True(campaign.Result.ExitCode == 0, campaign.Result.Stdout + campaign.Result.Stderr);
        Assert.Contains("held-out", campaign.Result.Stdout);        // the closing table
        Assert.Contains("[iteration 1] search", campaign.Result.Stdout); // live progress

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(campaign.RunDir, "summary.json")));
        var root = doc.RootElement;
        Assert.Equal("game24-quick", root.GetProperty("name").GetString());
        Assert.Equal("game24", root.GetProperty("environment").GetString());
        Assert.Equal("completed", root.GetProperty("status").GetString());
        var rows = root.GetProperty("iterations").EnumerateArray().ToList();
        Assert.Equal(3, rows.Count);
        Assert.Equal("sft", rows[0].GetProperty("phase").GetString());
        Assert.Equal(0, rows[0].GetProperty("trees").GetInt32());
        for (var i = 0; i < rows.Count; i++)
        {
            Assert.Equal(i, rows[i].GetProperty("iteration").GetInt32());
            Assert.Equal(i, rows[i].GetProperty("policyVersion").GetInt32());
            var held = rows[i].GetProperty("heldOut");
            Assert.Equal(40, held.GetProperty("total").GetInt32());
            var solved = held.GetProperty("solved").GetInt32();
            Assert.Equal(solved / 40.0, held.GetProperty("rate").GetDouble(), 4);
            Assert.True(rows[i].GetProperty("wallSeconds").GetDouble() > 0);
            Assert.True(rows[i].GetProperty("pairs").GetInt32() >= 0);
        }
        Assert.Equal("selfplay", rows[1].GetProperty("phase").GetString());
        Assert.Equal(16, rows[1].GetProperty("trees").GetInt32());
        Assert.Equal(16, rows[2].GetProperty("trees").GetInt32());
        TrainingChecks.AssertTrainedOnPairs(campaign.RunDir, 1);
    }

    [Fact]
    public async Task The_database_holds_one_tree_per_task_and_every_checkpoint_verifies()
    {
        Assert.Equal(0, campaign.Result.ExitCode);
        foreach (var version in new[] { 0, 1, 2 })
        {
            var dir = Path.Combine(campaign.RunDir, "checkpoints", $"v{version}");
            var (model, _, meta) = Checkpoint.Load(dir);
            model.Dispose();
            Assert.Equal(version, meta.PolicyVersion);
        }
        Assert.True(new FileInfo(Path.Combine(campaign.RunDir, "selfplay.log")).Length > 0);
        Assert.Contains("search", File.ReadAllText(Path.Combine(campaign.RunDir, "config.conf")));
        if (!OperatingSystem.IsWindows()) // the resolved settings are the owner's only
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(campaign.RunDir, "config.conf")));
        // No journal row goes through a type-named serializer (Newtonsoft's identifier 1): 48 of 86 did before the
        // sharding serializers were bound up front.
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(campaign.RunDir, "selfplay.db")};Mode=ReadOnly;Pooling=false"))
        {
            db.Open();
            using var count = db.CreateCommand();
            count.CommandText = "SELECT COUNT(*), SUM(identifier = 1) FROM journal";
            using var reader = count.ExecuteReader();
            reader.Read();
            Assert.True(reader.GetInt64(0) > 40);
            Assert.Equal(0, reader.GetInt64(1));
        }

        var system = ActorSystem.Create("e2e-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), campaign.RunDir, serilog: false));
        try
        {
            foreach (var iteration in new[] { 1, 2 })
            {
                var trees = await TreeQueries.IterationTreesAsync(system, "game24-quick", iteration);
                Assert.Equal(16, trees.Count);
                Assert.Equal(16, trees.Select(t => t.TreeId).Distinct().Count());
                Assert.All(trees, t =>
                {
                    Assert.Equal(iteration, t.Iteration);
                    Assert.StartsWith($"game24-quick/{iteration}/", t.TreeId);
                    Assert.True(t.Nodes.Count > 1);
                    Assert.Equal(16, t.Root.Visits); // quick config: 16 simulations per tree
                    Assert.Equal(iteration - 1, t.PolicyVersion);
                    Assert.All(t.Nodes.Skip(1), n => Assert.Equal(n.TokenIds.Length, n.LogProbs.Length));
                });
            }
            Assert.Equal(32, (await TreeQueries.CampaignTreesAsync(system, "game24-quick")).Count);
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public void TensorBoard_event_files_hold_the_summary_scalars()
    {
        Assert.Equal(0, campaign.Result.ExitCode);
        var files = Directory.GetFiles(Path.Combine(campaign.RunDir, "tensorboard"), "events.out.tfevents.*");
        var scalars = Assert.Single(files) is var file ? TensorBoardEvents.Read(file) : []; // framing and CRCs checked
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(campaign.RunDir, "summary.json")));
        var rows = doc.RootElement.GetProperty("iterations").EnumerateArray().ToList();
        var rates = scalars.Where(s => s.Tag == "heldout/rate").OrderBy(s => s.Step).ToList();
        Assert.Equal(new long[] { 0, 1, 2 }, rates.Select(s => s.Step));
        for (var i = 0; i < 3; i++) Assert.Equal(rows[i].GetProperty("heldOut").GetProperty("rate").GetDouble(), rates[i].Value, 5);
        // Every optimizer step's loss, numbered across the iterations.
        var losses = rows.Skip(1).SelectMany(r => r.GetProperty("learner").GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("loss").GetDouble())).ToList();
        var logged = scalars.Where(s => s.Tag == "train_step/loss").OrderBy(s => s.Step).ToList();
        Assert.Equal(losses.Count, logged.Count);
        Assert.Equal(Enumerable.Range(1, losses.Count).Select(n => (long)n), logged.Select(s => s.Step));
        for (var k = 0; k < losses.Count; k++) Assert.Equal(losses[k], logged[k].Value, 4);
        Assert.Contains(scalars, s => s.Tag == "pairs" && s.Step == 1 && s.Value == rows[1].GetProperty("pairs").GetInt32());
        Assert.All(scalars, s => Assert.True(s.WallTime > 1.7e9));
        // metrics.jsonl: the same scalars, a JSON object per line.
        var lines = File.ReadAllLines(Path.Combine(campaign.RunDir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(scalars.Count, lines.Count);
        Assert.Equal(losses.Count, lines.Count(l => l.GetProperty("tag").GetString() == "train_step/loss"));
    }

    [Fact]
    public async Task Inspect_lists_and_shows_the_stored_trees()
    {
        Assert.Equal(0, campaign.Result.ExitCode);
        var list = await CliRunner.RunAsync("inspect", "--run-dir", campaign.RunDir, "--format", "json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        var rows = JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(32, rows.Count);
        var id = rows[0].GetProperty("treeId").GetString()!;

        var text = await CliRunner.RunAsync("inspect", "--run-dir", campaign.RunDir, "--tree", id);
        Assert.True(text.ExitCode == 0, text.Stderr);
        Assert.StartsWith(id, text.Stdout);
        Assert.Contains("Input: ", text.Stdout);
        Assert.Contains("N=", text.Stdout);

        var json = await CliRunner.RunAsync("inspect", "--run-dir", campaign.RunDir, "--tree", id, "--format", "json");
        Assert.Equal(id, JsonDocument.Parse(json.Stdout).RootElement.GetProperty("TreeId").GetString());
        var dot = await CliRunner.RunAsync("inspect", "--run-dir", campaign.RunDir, "--tree", id, "--format", "dot");
        Assert.StartsWith("digraph tree {", dot.Stdout);

        var missing = await CliRunner.RunAsync("inspect", "--run-dir", campaign.RunDir, "--tree", "no/such/tree");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no tree 'no/such/tree'", missing.Stderr);
    }

    [Fact]
    public async Task A_run_folder_that_holds_a_campaign_is_not_overwritten()
    {
        Assert.Equal(0, campaign.Result.ExitCode);
        var before = File.ReadAllText(Path.Combine(campaign.RunDir, "summary.json"));
        var again = await CliRunner.RunAsync("run", "--run-dir", campaign.RunDir);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already holds a campaign", again.Stderr);
        Assert.Equal(before, File.ReadAllText(Path.Combine(campaign.RunDir, "summary.json")));
    }

    [Fact]
    public async Task Eval_reads_a_tree_of_thoughts_csv_range()
    {
        Assert.Equal(0, campaign.Result.ExitCode);
        var csv = Path.Combine(campaign.RunDir, "24.csv");
        File.WriteAllLines(csv, ["Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean (s),1-sigma STD (s)",
            "1,1 1 4 6,4.4,99.60%,4.67,1.48", "2,1 1 11 11,4.41,99.60%,4.68,1.45", "3,1 1 3 8,4.45,99.60%,4.69,1.48",
            "4,1 1 1 8,4.48,99.50%,4.71,1.50"]);
        var result = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(campaign.RunDir, "checkpoints", "v1"),
            "--puzzles", csv, "--range", "1:4");
        Assert.True(result.ExitCode == 0, result.Stderr);
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.Equal(3, doc.RootElement.GetProperty("total").GetInt32());
        var solved = doc.RootElement.GetProperty("solved").GetInt32();
        Assert.InRange(solved, 0, 3);
        Assert.Equal(solved / 3.0, doc.RootElement.GetProperty("rate").GetDouble(), 3);

        // --tasks: one input per line, for any environment (here the same puzzles).
        var inputs = Path.Combine(campaign.RunDir, "tasks.txt");
        File.WriteAllLines(inputs, ["# two puzzles", "1 1 11 11", "", "1 1 3 8"]);
        var fromFile = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(campaign.RunDir, "checkpoints", "v1"), "--tasks", inputs);
        Assert.True(fromFile.ExitCode == 0, fromFile.Stderr);
        Assert.Equal(2, JsonDocument.Parse(fromFile.Stdout).RootElement.GetProperty("total").GetInt32());

        // Without --puzzles: the held-out split of the run the checkpoint belongs to (40 in the quick campaign).
        var heldOut = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(campaign.RunDir, "checkpoints", "v2"));
        Assert.True(heldOut.ExitCode == 0, heldOut.Stderr);
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(campaign.RunDir, "summary.json"))).RootElement
            .GetProperty("iterations")[2].GetProperty("heldOut");
        var measured = JsonDocument.Parse(heldOut.Stdout).RootElement;
        Assert.Equal(40, measured.GetProperty("total").GetInt32());
        Assert.Equal(expected.GetProperty("solved").GetInt32(), measured.GetProperty("solved").GetInt32()); // greedy is deterministic

        var search = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(campaign.RunDir, "checkpoints", "v1"),
            "--puzzles", csv, "--range", "0:2", "--search", "mcts:4");
        Assert.True(search.ExitCode == 0, search.Stderr);
        Assert.Equal(2, JsonDocument.Parse(search.Stdout).RootElement.GetProperty("total").GetInt32());
        // Any of the campaign's searches, with its search.* settings.
        var bestFirst = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(campaign.RunDir, "checkpoints", "v1"),
            "--puzzles", csv, "--range", "0:2", "--search", "best-first", "--set", "search.simulations=4");
        Assert.True(bestFirst.ExitCode == 0, bestFirst.Stderr);
        Assert.Equal(2, JsonDocument.Parse(bestFirst.Stdout).RootElement.GetProperty("total").GetInt32());

        // The search alone: a uniform policy over the legal operations, no model (Game24Tests checks that it solves).
        var uniform = await CliRunner.RunAsync("eval", "--policy", "uniform", "--puzzles", csv, "--range", "0:4", "--search", "mcts:16");
        Assert.True(uniform.ExitCode == 0, uniform.Stderr);
        Assert.Equal(4, JsonDocument.Parse(uniform.Stdout).RootElement.GetProperty("total").GetInt32());
        var greedy = await CliRunner.RunAsync("eval", "--policy", "uniform", "--puzzles", csv, "--range", "0:4");
        Assert.Equal(2, greedy.ExitCode);
        Assert.Contains("--policy uniform needs --search mcts:N", greedy.Stderr);
    }
}
