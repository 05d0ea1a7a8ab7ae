using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Microsoft.Data.Sqlite;
using Npgsql;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Core.Trees;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay bench persistence`: trees per second through the replay (sharded tree buckets, as in a campaign) in a
/// fresh process (cold: compilation inside the figure, and with the iteration's buckets opened ahead as a campaign's
/// coordinator does, or not, with shard allocation and bucket start-up inside it too; one child process per side, so
/// none runs on what another compiled or connected), once the iteration's buckets are started and the runtime has
/// optimized the store path (warm), and for the next iteration's first trees (opened ahead, or starting as they
/// arrive), each against a raw batched INSERT of the same serialized rows into the same
/// database, in the same run; and the recovery time of one large tree. SQLite always; PostgreSQL when --postgres or SELFPLAY_TEST_POSTGRES names a server (a
/// database of its own is created). JSON on stdout.
/// </summary>
public static class BenchPersistence
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var trees = a.PositiveInt("--trees", 2000);
        var nodes = a.PositiveInt("--nodes", 40);
        var recoveryNodes = a.PositiveInt("--recovery-nodes", 10_000);
        var rounds = a.PositiveInt("--rounds", 5);
        var warmupRounds = a.NonNegativeInt("--warmup-rounds", 20);
        var postgres = a.Get("--postgres") ?? Environment.GetEnvironmentVariable("SELFPLAY_TEST_POSTGRES");
        if (a.Get(FreshSideOption) is { } side) return await FreshSideAsync(side, a.Get(FreshStoreOption) ?? "sqlite", postgres, a.Get(FreshCodecOption) ?? "none", trees, nodes);
        var freshProcesses = a.PositiveInt("--fresh-processes", 5);

        var results = new List<object>();
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            results.Add(await MeasureAsync("sqlite", new PersistenceConfig("sqlite", ""), dir, trees, nodes, recoveryNodes, rounds, warmupRounds,
                await FreshProcessesAsync("sqlite", postgres, trees, nodes, freshProcesses)));
            if (postgres is { Length: > 0 })
                results.Add(await MeasureAsync("postgres", new PersistenceConfig("postgres", await NewPostgresDatabaseAsync(postgres)), dir, trees, nodes, recoveryNodes, rounds, warmupRounds,
                    await FreshProcessesAsync("postgres", postgres, trees, nodes, freshProcesses)));
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "persistence",
            trees,
            warmRounds = rounds,
            untimedWarmupRounds = warmupRounds,
            freshProcessRuns = freshProcesses,
            nodesPerTree = nodes,
            recoveryTreeNodes = recoveryNodes,
            postgres = postgres is { Length: > 0 } ? "measured" : "skipped: no --postgres and no SELFPLAY_TEST_POSTGRES",
            stores = results,
        }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static async Task<object> MeasureAsync(string name, PersistenceConfig store, string dir, int treeCount, int nodes, int recoveryNodes, int rounds, int warmupRounds,
        List<FreshRun> freshRuns)
    {
        var fresh = MedianPair(freshRuns.Select(r => (r.Opened, r.Raw)).ToList());
        var freshUnopened = MedianPair(freshRuns.Select(r => (r.Unopened, r.Raw)).ToList());
        var timeout = TimeSpan.FromMinutes(2);
        var (system, replay) = await StartReplayAsync(store, dir, name, nodes, timeout);
        try
        {

            var serializer = system.Serialization.FindSerializerForType(typeof(TreeStored));
            var connectionString = SelfPlayHost.ConnectionString(store, dir);
            // The node sets LZ4 on the journal's payload column in the background once the tables exist: here at once, and
            // the raw table gets the same codec (a comparison of codecs would say nothing about the replay).
            var compression = "sqlite: none";
            if (store.Provider == "postgres")
            {
                var notSet = await PostgresStorage.UseLz4Async(connectionString);
                compression = notSet is null ? "lz4" : "pglz (" + notSet + ")";
            }
            // The same rows as a raw INSERT (the serialized TreeStored events with their ids and tags), into a plain table.
            List<(string Id, byte[] Payload, string Tags)> Rows(IEnumerable<PreferenceTree> trees) => RawRows(trees, t => serializer.ToBinary(new TreeStored(t)));
            // Every timed part starts from a collected heap: neither side pays for the other's garbage, nor for promoting
            // the trees built all at once just before it (a campaign builds each tree over its search's seconds).
            var (lastPause, lastGen2) = (TimeSpan.Zero, 0); // of the last timed part: the collector's pauses and full collections in it
            async Task<double> Seconds(Func<Task> work)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                var (pauseBefore, gen2Before) = (GC.GetTotalPauseDuration(), GC.CollectionCount(2));
                var clock = Stopwatch.StartNew();
                await work();
                var elapsed = clock.Elapsed.TotalSeconds;
                (lastPause, lastGen2) = (GC.GetTotalPauseDuration() - pauseBefore, GC.CollectionCount(2) - gen2Before);
                return elapsed;
            }
            Task StoreAll(IActorRef to, IEnumerable<PreferenceTree> trees) => Task.WhenAll(trees.Select(t => to.Ask<StoreTreeAck>(new StoreTree(t), timeout)));

            // The iteration's first trees: its buckets and shards start (recover, remember) as the trees arrive.
            var batch = Enumerable.Range(0, treeCount).Select(i => Tree(name, i, nodes)).ToList();
            var replaySeconds = await Seconds(() => StoreAll(replay, batch));
            var rows = Rows(batch);
            // Untimed (the fresh processes give the cold figure): the raw table keeps the rows the journal has.
            await RawInsertAsync(store, connectionString, compression, rows);
            var bytes = rows.Sum(r => (long)r.Payload.Length);
            var legacyJsonBytes = batch.Sum(t => (long)JsonSerializer.SerializeToUtf8Bytes(new TreeStored(t)).Length);
            // Warm (the steady state of an iteration: its buckets are started), in rounds of as many new trees, each
            // timed against a raw INSERT of its rows right after it: the median ratio of the rounds is robust to the
            // load of a shared machine, which one pair of a few hundred milliseconds is not.
            // Untimed rounds first: the runtime compiles the store path's methods optimized only once they have been
            // called for a while and no new method has been compiled for 100 ms, which a few seconds of a fresh process
            // do not reach (the first rounds ran at a third of the later rounds' rate): the warm figure is the steady state.
            for (var round = 1; round <= warmupRounds; round++)
            {
                var untimed = Enumerable.Range(treeCount * round, treeCount).Select(i => Tree(name, i, nodes)).ToList();
                await StoreAll(replay, untimed);
                await RawInsertAsync(store, connectionString, compression, Rows(untimed));
            }
            var warm = new List<(double Replay, double Raw)>();
            var (gcPause, gen2) = (TimeSpan.Zero, 0);
            for (var round = warmupRounds + 1; round <= warmupRounds + rounds; round++)
            {
                var more = Enumerable.Range(treeCount * round, treeCount).Select(i => Tree(name, i, nodes)).ToList();
                var replayRound = await Seconds(() => StoreAll(replay, more));
                (gcPause, gen2) = (gcPause + lastPause, gen2 + lastGen2);
                var moreRows = Rows(more);
                warm.Add((replayRound, await Seconds(() => RawInsertAsync(store, connectionString, compression, moreRows))));
            }
            var medianWarm = MedianPair(warm);
            // The next iterations' first trees, in this warmed process, as at the start of every iteration of a campaign
            // after the first: opened ahead (as the coordinator does while the first searches run), and not (their
            // buckets start, recover and are remembered as the trees arrive). As many iterations as warm rounds of each,
            // each against a raw INSERT of its rows; the median ratio is reported.
            var (nextIterations, nextUnopened) = (new List<(double Replay, double Raw)>(), new List<(double Replay, double Raw)>());
            for (var iteration = 2; iteration < 2 + 2 * rounds; iteration++)
            {
                var opened = iteration % 2 == 0;
                var next = Enumerable.Range(0, treeCount).Select(i => Tree(name, i, nodes, iteration)).ToList();
                if (opened) await TreeBucket.OpenIterationAsync(replay, "bench-" + name, iteration, timeout);
                var nextSeconds = await Seconds(() => StoreAll(replay, next));
                var nextRows = Rows(next);
                (opened ? nextIterations : nextUnopened).Add((nextSeconds, await Seconds(() => RawInsertAsync(store, connectionString, compression, nextRows))));
            }
            var (medianNext, medianNextUnopened) = (MedianPair(nextIterations), MedianPair(nextUnopened));
            // The same number of new trees through plain (unsharded) buckets: what sharding with remember-entities adds.
            var local = system.ActorOf(Props.Create(() => new ReplayActor()), "local-replay");
            var unsharded = Enumerable.Range(0, treeCount).Select(i => Tree(name + "-unsharded", i, nodes)).ToList();
            var unshardedSeconds = await Seconds(() => StoreAll(local, unsharded));
            // Where a warm store's time goes, measured alone: encoding the trees (as a bucket does, in writes of 100), and
            // an Ask of each tree through the shard region to a started entity that only replies (the messaging floor).
            var encodeSeconds = await Seconds(() => Task.Run(() => { foreach (var chunk in unsharded.Chunk(100)) TreeBinary.EncodeMany(chunk); }));
            var echo = ClusterSharding.Get(system).Start("bench-echo", _ => Props.Create(() => new EchoEntity()),
                ClusterShardingSettings.Create(system).WithRole("replay"), new TreeMessageExtractor());
            await StoreAll(echo, unsharded); // its entities started
            var echoSeconds = await Seconds(() => StoreAll(echo, unsharded));

            // Recovery of one large tree: store it, stop its entity, time the first query (which replays the journal).
            var big = Tree($"big-{name}", 0, recoveryNodes);
            await replay.Ask<StoreTreeAck>(new StoreTree(big), timeout);
            var recoveries = await RecoveriesAsync(system, local, "local-replay", big, timeout);

            // The same tree stored 3 times (re-runs): recovered from its 3 events, or from the snapshot of its newest version.
            var restored = new Dictionary<string, List<double>>();
            foreach (var (label, snapshotNodes) in new[] { ("events", 0), ("snapshot", recoveryNodes) })
            {
                var replayOf = system.ActorOf(Props.Create(() => new ReplayActor(snapshotNodes)), "replay-" + label);
                var tree = Tree($"big3-{label}-{name}", 0, recoveryNodes);
                for (var i = 0; i < 3; i++)
                {
                    // Three versions (an identical tree stored again is not written again).
                    var version = Tree($"big3-{label}-{name}", 0, recoveryNodes);
                    version.Nodes[0].Visits = i;
                    await replayOf.Ask<StoreTreeAck>(new StoreTree(version), timeout);
                }
                if (snapshotNodes > 0) await SnapshotSavedAsync(system, TreeBucket.PersistenceIdFor(TreeBucket.BucketOf(tree.TreeId)), 3, timeout);
                restored[label] = await RecoveriesAsync(system, replayOf, "replay-" + label, tree, timeout);
            }

            return new
            {
                store = name,
                payloadCompression = compression,
                replayEventsPerSecond = Math.Round(treeCount / replaySeconds, 1),
                unshardedEntityEventsPerSecond = Math.Round(treeCount / unshardedSeconds, 1),
                encodeMicrosecondsPerTree = Math.Round(encodeSeconds * 1e6 / treeCount, 1),
                shardedAskMicrosecondsPerTree = Math.Round(echoSeconds * 1e6 / treeCount, 1),
                warmReplayMicrosecondsPerTree = Math.Round(medianWarm.Replay * 1e6 / treeCount, 1),
                warmRawMicrosecondsPerRow = Math.Round(medianWarm.Raw * 1e6 / treeCount, 1),
                // A fresh process: runs of processes, two storing the trees through a new node's replay (its iteration
                // opened ahead, as a campaign's coordinator does while the first searches run; and not), the third
                // inserting the same rows raw into a new database, each after one warm-up write of its own; the median
                // run's ratio. (In one process the later sides would run on the connections and compiled code the
                // first side warmed.)
                freshReplayEventsPerSecond = Math.Round(treeCount / fresh.Replay, 1),
                freshRawInsertRowsPerSecond = Math.Round(treeCount / fresh.Raw, 1),
                replayOverRaw = Math.Round(fresh.Raw / fresh.Replay, 3),
                freshRunsReplayOverRaw = freshRuns.Select(r => Math.Round(r.Raw / r.Opened, 3)).ToList(),
                freshOpenSeconds = freshRuns.Select(r => Math.Round(r.OpenSeconds, 3)).ToList(),
                unopenedReplayEventsPerSecond = Math.Round(treeCount / freshUnopened.Replay, 1),
                unopenedReplayOverRaw = Math.Round(freshUnopened.Raw / freshUnopened.Replay, 3),
                unopenedRunsReplayOverRaw = freshRuns.Select(r => Math.Round(r.Raw / r.Unopened, 3)).ToList(),
                firstIterationReplayEventsPerSecond = Math.Round(treeCount / replaySeconds, 1),
                nextIterationReplayEventsPerSecond = Math.Round(treeCount / medianNext.Replay, 1),
                nextIterationReplayOverRaw = Math.Round(medianNext.Raw / medianNext.Replay, 3),
                nextIterationsReplayOverRaw = nextIterations.Select(w => Math.Round(w.Raw / w.Replay, 3)).ToList(),
                nextIterationUnopenedReplayOverRaw = Math.Round(medianNextUnopened.Raw / medianNextUnopened.Replay, 3),
                nextIterationsUnopenedReplayOverRaw = nextUnopened.Select(w => Math.Round(w.Raw / w.Replay, 3)).ToList(),
                warmReplayEventsPerSecond = Math.Round(treeCount / medianWarm.Replay, 1),
                warmRawInsertRowsPerSecond = Math.Round(treeCount / medianWarm.Raw, 1),
                warmReplayOverRaw = Math.Round(medianWarm.Raw / medianWarm.Replay, 3),
                warmRoundsReplayOverRaw = warm.Select(w => Math.Round(w.Raw / w.Replay, 3)).ToList(),
                // The garbage collector's pauses inside the warm rounds' stores, and its full collections there.
                warmGcPauseShare = Math.Round(gcPause.TotalSeconds / warm.Sum(w => w.Replay), 3),
                warmGen2Collections = gen2,
                meanEventBytes = bytes / treeCount,
                eventBytesPerNode = Math.Round((double)bytes / treeCount / nodes, 1),
                jsonEventBytesPerNode = Math.Round((double)legacyJsonBytes / treeCount / nodes, 1),
                replayMegabytesPerSecond = Math.Round(bytes / replaySeconds / 1e6, 2),
                recoveryMs = recoveries.Select(r => Math.Round(r, 1)).ToList(),
                storedThriceRecoveryMs = restored.ToDictionary(kv => kv.Key, kv => kv.Value.Select(r => Math.Round(r, 1)).ToList()),
                snapshotRecoverySpeedup = Math.Round(Median(restored["events"]) / Median(restored["snapshot"]), 2),
                recoveryTreeBytes = serializer.ToBinary(new TreeStored(big)).Length,
            };
        }
        finally
        {
            await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance);
        }
    }

    /// <summary>A replay node as in a campaign (sharded buckets, remember-entities), after one stored tree: schema
    /// creation and the first connection are not part of any rate.</summary>
    static async Task<(ActorSystem System, IActorRef Replay)> StartReplayAsync(PersistenceConfig store, string dir, string name, int nodes, TimeSpan timeout)
    {
        var system = SelfPlayHost.CreateNode(store, dir, new NodeOptions(["replay"], []), serilog: false);
        var replay = ClusterSharding.Get(system).Start(SelfPlayHost.TreeTypeName, id => Props.Create(() => new TreeBucket(id)),
            ClusterShardingSettings.Create(system).WithRole("replay").WithRememberEntities(true), new TreeMessageExtractor());
        await replay.Ask<StoreTreeAck>(new StoreTree(Tree($"warm-{name}", 0, nodes)), timeout);
        return (system, replay);
    }

    /// <summary>The rows of a raw INSERT of the trees: the journal's persistence id, the serialized event and its tags.</summary>
    static List<(string Id, byte[] Payload, string Tags)> RawRows(IEnumerable<PreferenceTree> trees, Func<PreferenceTree, byte[]> encode) =>
        trees.Select(t => (Id: TreeBucket.LegacyPersistenceIdFor(t.TreeId), Payload: encode(t),
            Tags: $"{TreeBucket.CampaignTag(t.Campaign)};{TreeBucket.IterationTag(t.Campaign, t.Iteration)}")).ToList();

    /// <summary>The (replay, raw) timing pair of the median ratio.</summary>
    static (double Replay, double Raw) MedianPair(List<(double Replay, double Raw)> pairs) =>
        pairs.OrderBy(p => p.Raw / p.Replay).ElementAt(pairs.Count / 2);

    static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);

    public const string FreshSideOption = "--fresh-side", FreshStoreOption = "--fresh-store", FreshCodecOption = "--fresh-codec";

    /// <summary>One run of fresh processes: the replay's stores with the iteration opened ahead (and the untimed opening's
    /// seconds), without, and the raw INSERT's.</summary>
    sealed record FreshRun(double Opened, double OpenSeconds, double Unopened, double Raw);

    /// <summary>Runs of fresh processes, the replay's (opened ahead, unopened) and the raw INSERT's, in turns (the order
    /// rotates from run to run).</summary>
    static async Task<List<FreshRun>> FreshProcessesAsync(string store, string? postgres, int trees, int nodes, int runs)
    {
        var results = new List<FreshRun>();
        var codec = "none";
        string[] sides = ["replay-opened", "replay", "raw"];
        for (var run = 0; run < runs; run++)
        {
            Console.Error.WriteLine($"bench persistence: {store}, fresh processes {run + 1}/{runs}");
            var seconds = new Dictionary<string, (double Seconds, double OpenSeconds)>();
            foreach (var side in sides.Skip(run % 3).Concat(sides.Take(run % 3)))
            {
                var (sideSeconds, openSeconds, sideCodec) = await RunFreshSideAsync(side, store, postgres, codec, trees, nodes);
                seconds[side] = (sideSeconds, openSeconds);
                if (side != "raw") codec = sideCodec;
            }
            results.Add(new FreshRun(seconds["replay-opened"].Seconds, seconds["replay-opened"].OpenSeconds, seconds["replay"].Seconds, seconds["raw"].Seconds));
        }
        return results;
    }

    static async Task<(double Seconds, double OpenSeconds, string Codec)> RunFreshSideAsync(string side, string store, string? postgres, string codec, int trees, int nodes)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Under `dotnet selfplay.dll` the process is dotnet itself: hand it the program again.
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet") start.ArgumentList.Add(typeof(BenchPersistence).Assembly.Location);
        string[] arguments = ["bench", "persistence", FreshSideOption, side, FreshStoreOption, store, FreshCodecOption, codec,
            "--trees", trees.ToString(), "--nodes", nodes.ToString(), .. postgres is { Length: > 0 } ? new[] { "--postgres", postgres } : []];
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new IOException("cannot start selfplay bench persistence");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"the fresh {side} process ({store}) ended with exit code {process.ExitCode}: {(await stderr).Trim().Split('\n').LastOrDefault()}");
        // Its last JSON line (Akka's console logger may write around it).
        var line = stdout.Split('\n').LastOrDefault(l => l.StartsWith("{\"seconds\"", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"the fresh {side} process ({store}) printed no figure");
        var result = JsonSerializer.Deserialize<JsonElement>(line);
        return (result.GetProperty("seconds").GetDouble(), result.GetProperty("openSeconds").GetDouble(), result.GetProperty("codec").GetString() ?? "none");
    }

    /// <summary>One side of a fresh-process pair, in this process: a new database, one untimed warm-up write (the
    /// schema and the first connection are not part of the rate), then the trees timed. Prints {seconds, codec}.</summary>
    static async Task<int> FreshSideAsync(string side, string storeName, string? postgres, string codec, int treeCount, int nodes)
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var store = storeName == "postgres"
                ? new PersistenceConfig("postgres", await NewPostgresDatabaseAsync(postgres ?? throw new ArgumentException("a PostgreSQL fresh side needs --postgres")))
                : new PersistenceConfig("sqlite", "");
            var connectionString = SelfPlayHost.ConnectionString(store, dir);
            var batch = Enumerable.Range(0, treeCount).Select(i => Tree(storeName, i, nodes)).ToList();
            var (clock, openSeconds) = (new Stopwatch(), 0.0);
            if (side == "raw")
            {
                // No actor system here: the replay's serializer writes a TreeStored event as TreeBinary.Encode of its tree.
                var rows = RawRows(batch, TreeBinary.Encode);
                await RawInsertAsync(store, connectionString, codec, rows.Take(1).ToList());
                GC.Collect();
                GC.WaitForPendingFinalizers();
                clock.Start();
                await RawInsertAsync(store, connectionString, codec, rows);
            }
            else
            {
                var timeout = TimeSpan.FromMinutes(2);
                var (system, replay) = await StartReplayAsync(store, dir, storeName, nodes, timeout);
                try
                {
                    if (store.Provider == "postgres") codec = await PostgresStorage.UseLz4Async(connectionString) is null ? "lz4" : "pglz";
                    if (side == "replay-opened")
                    {
                        var opening = Stopwatch.StartNew();
                        await TreeBucket.OpenIterationAsync(replay, "bench-" + storeName, 1, timeout);
                        openSeconds = opening.Elapsed.TotalSeconds;
                    }
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    clock.Start();
                    await Task.WhenAll(batch.Select(t => replay.Ask<StoreTreeAck>(new StoreTree(t), timeout)));
                    clock.Stop(); // before the node's shut-down
                }
                finally
                {
                    await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance);
                }
            }
            clock.Stop();
            Console.WriteLine(JsonSerializer.Serialize(new { seconds = clock.Elapsed.TotalSeconds, openSeconds, codec }));
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>Three recoveries of the tree: stop its entity, time the first query (which recovers it from the store).</summary>
    static async Task<List<double>> RecoveriesAsync(ActorSystem system, IActorRef replay, string replayName, PreferenceTree tree, TimeSpan timeout)
    {
        var recoveries = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var entity = await system.ActorSelection($"/user/{replayName}/{ReplayActor.ChildName(tree.TreeId)}").ResolveOne(timeout)
                .ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null);
            if (entity is not null) await entity.GracefulStop(timeout);
            var clock = Stopwatch.StartNew();
            var reply = await replay.Ask<TreeReply>(new GetTree(tree.TreeId), timeout);
            recoveries.Add(clock.Elapsed.TotalMilliseconds);
            if (reply.Tree?.Nodes.Count != tree.Nodes.Count) throw new InvalidDataException($"recovered {reply.Tree?.Nodes.Count} of {tree.Nodes.Count} nodes");
        }
        return recoveries;
    }

    /// <summary>Waits until the snapshot store holds the entity's snapshot at <paramref name="sequenceNr"/> (it is saved after the acknowledgement).</summary>
    static async Task SnapshotSavedAsync(ActorSystem system, string persistenceId, long sequenceNr, TimeSpan timeout)
    {
        var store = Akka.Persistence.Persistence.Instance.Apply(system).SnapshotStoreFor(null);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var loaded = await store.Ask<Akka.Persistence.LoadSnapshotResult>(
                new Akka.Persistence.LoadSnapshot(persistenceId, Akka.Persistence.SnapshotSelectionCriteria.Latest, long.MaxValue), timeout);
            if (loaded.Snapshot?.Metadata.SequenceNr == sequenceNr) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no snapshot of {persistenceId} at {sequenceNr}");
            await Task.Delay(50);
        }
    }

    static PreferenceTree Tree(string campaign, int index, int nodes, int iteration = 1)
    {
        var random = new Random(index);
        var tree = PreferenceTree.Create(PreferenceTree.MakeId("bench-" + campaign, iteration, $"t{index}"), "Input: 4 5 6 10\n");
        (tree.Campaign, tree.Iteration, tree.TaskId) = ("bench-" + campaign, iteration, $"t{index}");
        for (var n = 1; n < nodes; n++)
        {
            var parent = random.Next(n);
            tree.AddChild(parent, new TreeNode
            {
                Action = "5 * 4", StepText = "5 * 4 = 20 (left: 6 10 20)\n", TokenIds = [.. Enumerable.Range(0, 8).Select(_ => random.Next(40))],
                LogProbs = [.. Enumerable.Range(0, 8).Select(_ => -(float)random.NextDouble())], Visits = random.Next(10), Q = random.NextDouble(),
            });
        }
        return tree;
    }

    const int RawBatch = 100;

    static async Task RawInsertAsync(PersistenceConfig store, string connectionString, string compression, IReadOnlyList<(string Id, byte[] Payload, string Tags)> rows)
    {
        if (store.Provider == "postgres")
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            var codec = compression == "lz4" ? " COMPRESSION lz4" : "";
            await using (var create = new NpgsqlCommand($"CREATE TABLE IF NOT EXISTS bench_raw (persistence_id text, sequence_nr bigint, manifest text, payload bytea{codec}, tags text)", connection))
                await create.ExecuteNonQueryAsync();
            await using var tx = await connection.BeginTransactionAsync();
            foreach (var chunk in rows.Chunk(RawBatch))
            {
                await using var batch = new NpgsqlBatch(connection, tx);
                foreach (var r in chunk)
                {
                    var command = new NpgsqlBatchCommand("INSERT INTO bench_raw VALUES ($1, 1, 'tree-stored.v1', $2, $3)");
                    command.Parameters.Add(new NpgsqlParameter { Value = r.Id });
                    command.Parameters.Add(new NpgsqlParameter { Value = r.Payload });
                    command.Parameters.Add(new NpgsqlParameter { Value = r.Tags });
                    batch.BatchCommands.Add(command);
                }
                await batch.ExecuteNonQueryAsync();
            }
            await tx.CommitAsync();
            return;
        }
        await using var sqlite = new SqliteConnection(connectionString);
        await sqlite.OpenAsync();
        await using (var create = sqlite.CreateCommand())
        {
            create.CommandText = "CREATE TABLE IF NOT EXISTS bench_raw (persistence_id TEXT, sequence_nr INTEGER, manifest TEXT, payload BLOB, tags TEXT)";
            await create.ExecuteNonQueryAsync();
        }
        foreach (var chunk in rows.Chunk(RawBatch))
        {
            await using var tx = (SqliteTransaction)await sqlite.BeginTransactionAsync();
            await using var insert = sqlite.CreateCommand();
            insert.Transaction = tx;
            insert.CommandText = "INSERT INTO bench_raw VALUES ($id, 1, 'tree-stored.v1', $payload, $tags)";
            var id = insert.Parameters.Add("$id", SqliteType.Text);
            var payload = insert.Parameters.Add("$payload", SqliteType.Blob);
            var tags = insert.Parameters.Add("$tags", SqliteType.Text);
            foreach (var r in chunk)
            {
                (id.Value, payload.Value, tags.Value) = (r.Id, r.Payload, r.Tags);
                await insert.ExecuteNonQueryAsync();
            }
            await tx.CommitAsync();
        }
    }

    static async Task<string> NewPostgresDatabaseAsync(string server)
    {
        var name = "selfplay_bench_" + Guid.NewGuid().ToString("N")[..8];
        await using var connection = new NpgsqlConnection(server);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await create.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
    }
}

/// <summary>A sharded entity that acknowledges a store without storing it: what the messaging alone costs.</summary>
sealed class EchoEntity : ReceiveActor
{
    public EchoEntity() => Receive<StoreTree>(cmd => Sender.Tell(new StoreTreeAck(cmd.Tree.TreeId, cmd.Tree.Nodes.Count)));
}
