using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Core.Trees;
using SelfPlay.Tests.Shared;

namespace SelfPlay.Actors.Tests;

public sealed class ReplayTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-replay-" + Guid.NewGuid().ToString("N"));
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public ReplayTests() => Directory.CreateDirectory(_dir);

    PersistenceConfig _store = new("sqlite", "");

    ActorSystem NewSystem() =>
        ActorSystem.Create("replay-test", SelfPlayHost.AkkaConfig(_store, _dir, serilog: false));

    async Task OnPostgres() => _store = new PersistenceConfig("postgres", await TestPostgres.NewDatabaseAsync());

    static PreferenceTree Tree(string campaign, int iteration, string task, string firstStep)
    {
        var tree = PreferenceTree.Create(PreferenceTree.MakeId(campaign, iteration, task), "Input: 1 2 3 4\n");
        tree.Campaign = campaign;
        tree.Iteration = iteration;
        tree.TaskId = task;
        tree.AddChild(0, new TreeNode { Action = firstStep, StepText = firstStep + " = x\n", TokenIds = [5, 6], LogProbs = [-0.5f, -1.25f], Visits = 3, Q = 0.75 });
        tree.AddChild(0, new TreeNode { Action = "2 * 3", StepText = "2 * 3 = 6 (left: 1 4 6)\n", IsTerminal = true, TerminalReward = 0, TerminalReason = "dead end" });
        return tree;
    }

    static string Json(PreferenceTree? tree) => JsonSerializer.Serialize(tree);

    [PostgresFact]
    public async Task Trees_survive_a_killed_entity_and_a_restarted_actor_system_on_postgres()
    {
        await OnPostgres();
        await Trees_survive_a_killed_entity_and_a_restarted_actor_system();
    }

    [PostgresFact]
    public async Task Queries_by_tag_return_each_tree_once_with_its_latest_version_on_postgres()
    {
        await OnPostgres();
        await Queries_by_tag_return_each_tree_once_with_its_latest_version();
    }

    /// <summary>
    /// A PostgreSQL node sets LZ4 on the journal's and snapshot store's payload columns once the plugins have created
    /// them (a fresh database: in the background of the start), and trees stored under either codec recover alike.
    /// </summary>
    [PostgresFact]
    public async Task A_postgres_node_compresses_payloads_with_lz4_and_recovers_trees_of_both_codecs()
    {
        await OnPostgres();
        var connectionString = SelfPlayHost.ConnectionString(_store, _dir);
        async Task<string> CodecOf(string table, string column) =>
            await PostgresStorage.CodecAsync(connectionString, table, column) is { } c and not '\0' ? c.ToString() : "default";
        var before = Tree("lz4", 1, "1-2-3-4", "4 - 1");
        var after = Tree("lz4", 1, "2-3-4-5", "5 - 2");
        // Large enough to be compressed at all (PostgreSQL compresses values above about 2 kB).
        foreach (var tree in new[] { before, after })
            for (var i = 0; i < 60; i++) tree.AddChild(1, new TreeNode { Action = $"{i} + 1", StepText = $"{i} + 1 = {i + 1} (left: 1 2 3)\n", TokenIds = [i, i + 1], LogProbs = [-0.25f, -0.5f], Visits = i });
        // A process that is not a node (a tool) leaves the server's default codec: the first tree is stored with it.
        var tool = NewSystem();
        try
        {
            await tool.ActorOf(Props.Create(() => new ReplayActor()), "replay").Ask<StoreTreeAck>(new StoreTree(before), Timeout);
        }
        finally
        {
            await tool.Terminate();
        }
        Assert.Equal("default", await CodecOf("journal", "message"));
        var system = SelfPlayHost.CreateNode(_store, _dir, new NodeOptions(["replay"], []), serilog: false);
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            // The node's background step sets the codec within a few hundred milliseconds of its start.
            var deadline = DateTime.UtcNow + Timeout;
            while (await CodecOf("journal", "message") != "l" && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.Equal("l", await CodecOf("journal", "message"));
            Assert.Equal("l", await CodecOf("snapshot", "snapshot"));
            await replay.Ask<StoreTreeAck>(new StoreTree(after), Timeout);
            Assert.Null(await PostgresStorage.UseLz4Async(connectionString)); // set already: nothing to do, no error
        }
        finally
        {
            await system.Terminate();
        }
        var restarted = NewSystem();
        try
        {
            var replay = restarted.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            foreach (var tree in new[] { before, after })
                Assert.Equal(Json(tree), Json((await replay.Ask<TreeReply>(new GetTree(tree.TreeId), Timeout)).Tree));
        }
        finally
        {
            await restarted.Terminate();
        }
    }

    /// <summary>
    /// learner.solution-buffer keeps no state of its own: after a restart (a resumed campaign) the journal gives the same
    /// buffer, including a task solved only in an earlier iteration.
    /// </summary>
    [Fact]
    public async Task The_solution_buffer_is_rebuilt_from_the_journal_after_a_restart()
    {
        PreferenceTree Solved(int iteration, string task)
        {
            var tree = Tree("sb", iteration, task, "4 * 6");
            tree.AddChild(1, new TreeNode { Action = "1 * 1", StepText = "done\n", IsTerminal = true, TerminalReward = 1, TerminalReason = "solved", Visits = 1 });
            return tree;
        }
        // a solved in 1 and 2, b solved in 1 and failed in 2, c never solved.
        PreferenceTree[] trees = [Solved(1, "a"), Solved(1, "b"), Tree("sb", 1, "c", "1 + 1"), Solved(2, "a"), Tree("sb", 2, "b", "1 + 2")];
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            foreach (var tree in trees) await replay.Ask<StoreTreeAck>(new StoreTree(tree), Timeout);
        }
        finally
        {
            await system.Terminate();
        }
        var restarted = NewSystem();
        try
        {
            var stored = new List<PreferenceTree>();
            for (var i = 1; i <= 2; i++) stored.AddRange(await TreeQueries.IterationTreesAsync(restarted, "sb", i));
            Assert.Equal(5, stored.Count);
            var buffer = SelfPlay.Core.Preferences.SolutionBuffer.NewestSolved(stored);
            Assert.Equal(["sb/1/b/0", "sb/2/a/0"], buffer.Select(t => t.TreeId));
            Assert.Equal(SelfPlay.Core.Preferences.SolutionBuffer.NewestSolved(trees).Select(Json), buffer.Select(Json));
        }
        finally
        {
            await restarted.Terminate();
        }
    }

    /// <summary>
    /// On SQLite a recovery and a tag query read without the write lock: another connection holding it (as the journal
    /// does while it writes) does not hold them up. At the plugins' default isolation every read began IMMEDIATE and
    /// waited for the lock (this recovery timed out after 10 s).
    /// </summary>
    [Fact]
    public async Task Sqlite_recoveries_and_queries_do_not_wait_for_the_write_lock()
    {
        var tree = Tree("lock", 1, "1-2-3-4", "4 - 1");
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            await replay.Ask<StoreTreeAck>(new StoreTree(tree), Timeout);
        }
        finally
        {
            await system.Terminate();
        }
        var restarted = NewSystem();
        await using var writer = new Microsoft.Data.Sqlite.SqliteConnection(SelfPlayHost.ConnectionString(_store, _dir));
        try
        {
            var replay = restarted.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            // The plugins' start-up (their CREATE TABLE IF NOT EXISTS) before the lock is taken: a write of its own.
            Assert.Null((await replay.Ask<TreeReply>(new GetTree(Tree("other", 1, "x", "1 + 1").TreeId), Timeout)).Tree);
            await writer.OpenAsync();
            await using (var begin = writer.CreateCommand())
            {
                begin.CommandText = "BEGIN IMMEDIATE";
                await begin.ExecuteNonQueryAsync();
            }
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var recovered = await replay.Ask<TreeReply>(new GetTree(tree.TreeId), TimeSpan.FromSeconds(10));
            Assert.Equal(Json(tree), Json(recovered.Tree));
            var queried = await TreeQueries.IterationTreesAsync(restarted, "lock", 1).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal([tree.TreeId], queried.Select(t => t.TreeId));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"reads took {clock.Elapsed.TotalSeconds:F1} s with the write lock held elsewhere");
        }
        finally
        {
            await writer.CloseAsync(); // rolls the lock holder's transaction back
            await restarted.Terminate();
        }
    }

    [Fact]
    public async Task Trees_survive_a_killed_entity_and_a_restarted_actor_system()
    {
        var tree = Tree("c1", 1, "1-2-3-4", "4 - 1");
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            var ack = await replay.Ask<StoreTreeAck>(new StoreTree(tree), Timeout);
            Assert.Equal(3, ack.Nodes);

            var entity = await system.ActorSelection($"/user/replay/{ReplayActor.ChildName(tree.TreeId)}").ResolveOne(Timeout);
            await entity.GracefulStop(Timeout); // the in-memory state is gone; the next query recovers from SQLite
            var recovered = await replay.Ask<TreeReply>(new GetTree(tree.TreeId), Timeout);
            Assert.Equal(Json(tree), Json(recovered.Tree));
        }
        finally
        {
            await system.Terminate();
        }

        var restarted = NewSystem();
        try
        {
            var replay = restarted.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            var recovered = await replay.Ask<TreeReply>(new GetTree(tree.TreeId), Timeout);
            Assert.Equal(Json(tree), Json(recovered.Tree));
            var missing = await replay.Ask<TreeReply>(new GetTree("c1/1/none/0"), Timeout);
            Assert.Null(missing.Tree);
        }
        finally
        {
            await restarted.Terminate();
        }
    }

    [Fact]
    public async Task Queries_by_tag_return_each_tree_once_with_its_latest_version()
    {
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 1, "b", "1 + 3")), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 1, "a", "1 + 2")), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 2, "a", "1 + 4")), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("other", 1, "a", "1 + 5")), Timeout);
            // A re-run of the same task (same deterministic id) replaces the first tree.
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 1, "a", "4 - 1")), Timeout);

            var iteration1 = await TreeQueries.IterationTreesAsync(system, "c2", 1);
            // In tree-id order whatever order the searches finished in: datasets do not depend on timing.
            Assert.Equal(["c2/1/a/0", "c2/1/b/0"], iteration1.Select(t => t.TreeId));
            Assert.Equal("4 - 1", iteration1.Single(t => t.TaskId == "a").Nodes[1].Action);
            Assert.Equal(3, (await TreeQueries.CampaignTreesAsync(system, "c2")).Count);
            Assert.Single(await TreeQueries.CampaignTreesAsync(system, "other"));
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>An iteration opened ahead (as the coordinator does while its first searches run) starts every bucket its
    /// trees go to through the sharded replay, each answering once recovered: empty before the trees, holding them after
    /// a restart.</summary>
    [Fact]
    public async Task Opening_an_iteration_starts_every_bucket_its_trees_go_to_and_each_answers_recovered()
    {
        var tasks = Enumerable.Range(0, 200).Select(i => $"t{i}").ToList();
        var buckets = TreeBucket.BucketsOfIteration("c8", 3).ToList();
        Assert.Equal(TreeBucket.BucketsPerIteration, buckets.Distinct().Count());
        Assert.Equal(buckets.Order(), tasks.Select(t => TreeBucket.BucketOf(PreferenceTree.MakeId("c8", 3, t))).Distinct().Order());
        var trees = tasks.Take(40).Select(t => Tree("c8", 3, t, "1 + 2")).ToList();
        foreach (var restart in new[] { false, true })
        {
            var system = SelfPlayHost.CreateNode(_store, _dir, new NodeOptions(["replay"], []), serilog: false);
            try
            {
                var region = Akka.Cluster.Sharding.ClusterSharding.Get(system).Start(SelfPlayHost.TreeTypeName, id => Props.Create(() => new TreeBucket(id, 0)),
                    Akka.Cluster.Sharding.ClusterShardingSettings.Create(system).WithRole("replay").WithRememberEntities(true), new TreeMessageExtractor());
                var open = await TreeBucket.OpenIterationAsync(region, "c8", 3, Timeout);
                Assert.Equal(buckets, open.Select(o => o.BucketId));
                Assert.Equal(restart ? trees.Count : 0, open.Sum(o => o.Trees));
                if (!restart) await Task.WhenAll(trees.Select(t => region.Ask<StoreTreeAck>(new StoreTree(t), Timeout)));
            }
            finally
            {
                await system.Terminate();
            }
        }
        // The local replay (no sharding) opens the same buckets.
        var local = NewSystem();
        try
        {
            var open = await TreeBucket.OpenIterationAsync(local.ActorOf(Props.Create(() => new ReplayActor()), "replay"), "c8", 3, Timeout);
            Assert.Equal(trees.Count, open.Sum(o => o.Trees));
        }
        finally
        {
            await local.Terminate();
        }
    }

    /// <summary>Trees that reach a bucket together are written as one event (one row); a later version of a tree in
    /// the same burst replaces the earlier one, in queries and in the bucket.</summary>
    [Fact]
    public async Task Trees_stored_together_are_written_in_few_rows_and_the_newest_version_wins()
    {
        var trees = Enumerable.Range(0, 60).Select(i => Tree("c4", 1, $"t{i}", "1 + 2")).ToList();
        var newer = Tree("c4", 1, "t7", "4 - 1");
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            await Task.WhenAll([.. trees.Select(t => replay.Ask<StoreTreeAck>(new StoreTree(t), Timeout)), replay.Ask<StoreTreeAck>(new StoreTree(newer), Timeout)]);
            var stored = await TreeQueries.IterationTreesAsync(system, "c4", 1);
            Assert.Equal(60, stored.Count);
            Assert.Equal("4 - 1", stored.Single(t => t.TaskId == "t7").Nodes[1].Action);
            Assert.Equal("4 - 1", (await replay.Ask<TreeReply>(new GetTree(newer.TreeId), Timeout)).Tree!.Nodes[1].Action);
        }
        finally
        {
            await system.Terminate();
        }
        Assert.InRange(JournalRows("trees|c4/1/"), TreeBucket.BucketsPerIteration / 2, 40); // 61 stores: one first write per bucket, then the rest batched
    }

    /// <summary>A store retried after a late acknowledgement sends the same tree again: it is acknowledged, not written twice.</summary>
    [Fact]
    public async Task The_same_tree_stored_again_is_acknowledged_without_a_second_row()
    {
        var tree = Tree("c5", 1, "a", "1 + 2");
        tree.CreatedAtUtc = new DateTime(2026, 12, 4, 23, 0, 0, DateTimeKind.Utc);
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            await replay.Ask<StoreTreeAck>(new StoreTree(tree), Timeout);
            var copy = JsonSerializer.Deserialize<PreferenceTree>(Json(tree))!; // what a second message carries: an equal tree
            Assert.Equal(tree.Nodes.Count, (await replay.Ask<StoreTreeAck>(new StoreTree(copy), Timeout)).Nodes);
            var changed = JsonSerializer.Deserialize<PreferenceTree>(Json(tree))!;
            changed.Nodes[1].Visits++;
            await replay.Ask<StoreTreeAck>(new StoreTree(changed), Timeout); // a different version is written
        }
        finally
        {
            await system.Terminate();
        }
        Assert.Equal(2L, JournalRows("trees|c5/1/"));
    }

    /// <summary>Rows of the SQLite journal whose persistence id starts with the prefix.</summary>
    long JournalRows(string prefix)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(SelfPlayHost.ConnectionString(_store, _dir));
        connection.Open();
        using var rows = connection.CreateCommand();
        rows.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id LIKE $prefix || '%'";
        rows.Parameters.AddWithValue("$prefix", prefix);
        return (long)rows.ExecuteScalar()!;
    }

    /// <summary>Rows of the snapshots of the tree's bucket in the SQLite snapshot store: (count, newest sequence number).</summary>
    (long Count, long Newest) Snapshots(string treeId)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(SelfPlayHost.ConnectionString(_store, _dir));
        connection.Open();
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT COUNT(*), COALESCE(MAX(sequence_number), 0) FROM snapshot WHERE persistence_id = $id";
        query.Parameters.AddWithValue("$id", TreeBucket.PersistenceIdFor(TreeBucket.BucketOf(treeId)));
        using var reader = query.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>A bucket is snapshotted once replaced versions of at least snapshot-nodes nodes sit in its journal.</summary>
    [Fact]
    public async Task A_bucket_with_a_large_tree_stored_again_recovers_from_its_newest_snapshot_and_queries_are_unchanged()
    {
        var small = Tree("c3", 1, "small", "1 + 2"); // 3 nodes: below a threshold of 4
        var versions = new[] { "1 + 2", "4 - 1", "5 - 1" }.Select(step =>
        {
            var t = Tree("c3", 1, "large", step);
            t.AddChild(1, new TreeNode { Action = "3 * 8", StepText = "3 * 8 = 24 (left: 24)\n", Visits = 1, Q = 1 }); // 4 nodes
            return t;
        }).ToList();
        Assert.NotEqual(TreeBucket.BucketOf(small.TreeId), TreeBucket.BucketOf(versions[0].TreeId)); // each its own bucket
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor(4)), "replay");
            await replay.Ask<StoreTreeAck>(new StoreTree(versions[0]), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(small), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(small), Timeout);
            foreach (var version in versions.Skip(1)) await replay.Ask<StoreTreeAck>(new StoreTree(version), Timeout);

            // Saved after the second and third store; the second's is deleted once the third's is saved.
            var deadline = DateTime.UtcNow + Timeout;
            while (Snapshots(versions[0].TreeId) != (1, 3) && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.Equal((1L, 3L), Snapshots(versions[0].TreeId));
            Assert.Equal((0L, 0L), Snapshots(small.TreeId)); // too small to pay

            var entity = await system.ActorSelection($"/user/replay/{ReplayActor.ChildName(versions[0].TreeId)}").ResolveOne(Timeout);
            await entity.GracefulStop(Timeout);
            Assert.Equal(Json(versions[2]), Json((await replay.Ask<TreeReply>(new GetTree(versions[0].TreeId), Timeout)).Tree));
            var trees = await TreeQueries.IterationTreesAsync(system, "c3", 1); // the events are all still there
            Assert.Equal(2, trees.Count);
            Assert.Equal("5 - 1", trees.Single(t => t.TaskId == "large").Nodes[1].Action);
        }
        finally
        {
            await system.Terminate();
        }

        var restarted = NewSystem();
        try
        {
            var replay = restarted.ActorOf(Props.Create(() => new ReplayActor(4)), "replay");
            Assert.Equal(Json(versions[2]), Json((await replay.Ask<TreeReply>(new GetTree(versions[0].TreeId), Timeout)).Tree));
            Assert.Equal(Json(small), Json((await replay.Ask<TreeReply>(new GetTree(small.TreeId), Timeout)).Tree));
        }
        finally
        {
            await restarted.Terminate();
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
