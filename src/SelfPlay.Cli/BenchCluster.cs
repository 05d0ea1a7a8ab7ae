using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Singleton;
using Akka.Streams;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Actors.Search;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay bench cluster`: the coordinator and the replay at scale. This process is the cluster's coordinator and
/// replay node: the real <see cref="CampaignCoordinator"/> (a singleton) and the real sharded replay on SQLite or
/// PostgreSQL. `--processes` search processes on 127.0.0.1 run `--workers` real <see cref="SearchWorker"/>s in all,
/// each searching the real Game-of-24 environment with MCTS. What is simulated (named as such): the policy (an instant
/// proposer, no model), the learner and the inference actors (instant stand-ins that publish and load versions
/// without weights). Every `--kill-every` seconds one random search process is killed (kill -9) and a fresh one
/// started. JSON on stdout: tasks/s through the coordinator, lease round trips, trees/s into the replay, memory per
/// 1,000 tasks, and what the kills cost: tasks lost (no tree), trees duplicated in the dataset, extra searches (leases
/// beyond one per task: tasks handed out again after their worker died), and of those the ones whose trees were
/// stored too (the killed search had stored its tree but not reported it).
/// </summary>
public static class BenchCluster
{
    internal const string WorkerFlag = "--search-process";
    const double MinKillEvery = 12;

    public static async Task<int> RunAsync(CliArgs a)
    {
        var simulations = a.PositiveInt("--simulations", 4);
        if (a.Has(WorkerFlag))
            return await SearchProcessAsync(a.Get("--seed") ?? throw new UsageException("--seed HOST:PORT"),
                a.Get("--run-dir") ?? throw new UsageException("--run-dir DIR"), a.PositiveInt("--workers", 64), a.Get("--postgres"),
                a.PositiveInt("--tasks", 20_000), simulations);
        var processes = a.PositiveInt("--processes", 4);
        var workers = a.PositiveInt("--workers", 256);
        var tasks = a.PositiveInt("--tasks", 20_000);
        var killEvery = a.Get("--kill-every") is { } k && double.TryParse(k, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? seconds : a.Get("--kill-every") is null ? 20.0 : throw new UsageException("--kill-every needs seconds");
        if (killEvery is > 0 and < MinKillEvery)
            throw new UsageException($"--kill-every must be 0 (no kills) or at least {MinKillEvery} s: a killed node is downed ~10 s after it dies, " +
                                     "and two dead at once make the split-brain resolver down the whole cluster");
        var maxKills = a.Get("--max-kills") is { } mk ? int.TryParse(mk, out var m) && m >= 0 ? m
            : throw new UsageException($"--max-kills must be 0 (no limit) or more, got '{mk}'") : 0;
        var postgres = a.Get("--postgres");
        var runDir = a.Get("--run-dir") ?? Path.Combine(Path.GetTempPath(), "selfplay-bench-cluster-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(runDir);
        // Akka's own log lines (kills make many) go to stderr: stdout holds the JSON only.
        var stdout = Console.Out;
        Console.SetOut(Console.Error);
        try
        {
            var result = await CoordinatorProcessAsync(runDir, processes, workers, tasks, killEvery, maxKills, postgres, simulations);
            stdout.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        }
        finally
        {
            Console.SetOut(stdout);
        }
        return 0;
    }

    /// <summary>The campaign of the bench: one iteration of `tasks` searches, no held-out evaluation.</summary>
    static (CampaignConfig Config, CampaignContext Context) Campaign(string runDir, int tasks, string? postgres, int simulations)
    {
        var sets = new List<string>
        {
            "name=bench-cluster", "iterations.count=1", $"iterations.trees={tasks}", "eval.greedy=false",
            $"search.simulations={simulations}", "actors.lease-seconds=120",
        };
        if (postgres is { Length: > 0 }) sets.AddRange(["persistence.provider=postgres", $"persistence.connection-string={postgres}"]);
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, sets));
        return (config, new CampaignContext(config, SelfPlayCommand.Environments().Create(config.Environment), runDir));
    }

    static async Task<object> CoordinatorProcessAsync(string runDir, int processes, int workers, int tasks, double killEvery, int maxKills, string? postgres, int simulations)
    {
        var (config, context) = Campaign(runDir, tasks, postgres, simulations);
        var port = FreePort();
        var system = SelfPlayHost.CreateNode(config.Persistence, runDir, new NodeOptions(["coordinator", "replay"], [], "127.0.0.1", port), serilog: false);
        var children = new List<Process>();
        try
        {
            var replay = ClusterSharding.Get(system).Start(SelfPlayHost.TreeTypeName, id => Props.Create(() => new TreeBucket(id, 0)),
                ClusterShardingSettings.Create(system).WithRole("replay").WithRememberEntities(true), new TreeMessageExtractor());
            var learner = system.ActorOf(Props.Create(() => new InstantLearner(runDir)), "instant-learner");
            var inference = system.ActorOf(Props.Create(() => new InstantInference()), "instant-inference");
            system.ActorOf(ClusterSingletonManager.Props(Props.Create(() => new CampaignCoordinator(context, learner, inference, null, replay)),
                PoisonPill.Instance, ClusterSingletonManagerSettings.Create(system).WithRole("coordinator")), "coordinator");
            var coordinator = SelfPlayHost.CoordinatorProxy(system);

            var seed = $"127.0.0.1:{port}";
            var perProcess = Math.Max(1, workers / processes);
            Process StartSearchProcess() => Start(runDir, ["bench", "cluster", WorkerFlag, "--seed", seed, "--run-dir", runDir, "--workers", perProcess.ToString(),
                "--tasks", tasks.ToString(), "--simulations", simulations.ToString(), .. postgres is { Length: > 0 } ? new[] { "--postgres", postgres } : []]);
            for (var i = 0; i < processes; i++) children.Add(StartSearchProcess());
            var cluster = Cluster.Get(system);
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while (cluster.State.Members.Count(m => m.Status == MemberStatus.Up) < processes + 1)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"{processes} search processes did not join within 3 minutes");
                await Task.Delay(200);
            }

            GC.Collect();
            var heapBefore = GC.GetTotalMemory(true);
            var finished = new TaskCompletionSource<CampaignFinished>();
            var searchDone = new TaskCompletionSource<double>(); // the heap when the last task is recorded
            var watcher = system.ActorOf(Props.Create(() => new ProgressWatcher(finished, searchDone)), "bench-watcher");
            coordinator.Tell(WatchProgress.Instance, watcher);
            coordinator.Tell(StartCampaign.Instance);

            // Kill one random search process every killEvery seconds until the search is done (or maxKills were made,
            // when not 0); start a fresh one each time.
            var kills = 0;
            var random = new Random(1);
            var clock = Stopwatch.StartNew();
            while (!searchDone.Task.IsCompleted && !finished.Task.IsCompleted)
            {
                var next = await Task.WhenAny(searchDone.Task, finished.Task, system.WhenTerminated,
                    Task.Delay(killEvery > 0 ? TimeSpan.FromSeconds(killEvery) : Timeout.InfiniteTimeSpan));
                if (next == system.WhenTerminated) continue;
                if (next is not Task<double> && next is not Task<CampaignFinished> && killEvery > 0 && (maxKills == 0 || kills < maxKills))
                {
                    var victim = children[random.Next(children.Count)];
                    victim.Kill(entireProcessTree: true);
                    children.Remove(victim);
                    children.Add(StartSearchProcess());
                    kills++;
                }
                if (clock.Elapsed > TimeSpan.FromHours(2)) throw new TimeoutException("the search did not finish within 2 hours");
                if (system.WhenTerminated.IsCompleted) throw new InvalidOperationException("the coordinator's node left the cluster (downed by the split-brain resolver)");
            }
            var heapAfter = await searchDone.Task.WaitAsync(TimeSpan.FromMinutes(10));
            var outcome = await finished.Task.WaitAsync(TimeSpan.FromMinutes(10));
            if (outcome.Status != "completed") throw new InvalidOperationException($"the bench campaign {outcome.Status}: {outcome.Error}");

            using var summary = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(runDir, "summary.json")));
            var searchSeconds = summary.RootElement.GetProperty("iterations")[1].GetProperty("searchSeconds").GetDouble();
            var journal = await JournalFiguresAsync(system, config.Name);
            var roundTrips = RoundTrips(runDir);
            return new
            {
                bench = "cluster",
                searchProcesses = processes,
                workers = perProcess * processes,
                tasks,
                simulationsPerTask = simulations,
                store = config.Persistence.Provider,
                killEverySeconds = killEvery,
                kills,
                searchSeconds,
                tasksPerSecond = Math.Round(tasks / searchSeconds, 1),
                treesPerSecondIntoReplay = Math.Round(journal.StoredVersions / searchSeconds, 1),
                leaseRoundTripMs = new { samples = roundTrips.Count, p50 = Percentile(roundTrips, 0.50), p99 = Percentile(roundTrips, 0.99) },
                coordinatorNodeHeapMbPer1000Tasks = Math.Round((heapAfter - heapBefore) / 1e6 / tasks * 1000, 2),
                tasksLost = tasks - journal.DistinctTrees,
                duplicatedTreesInDataset = journal.DatasetTrees - journal.DistinctTrees,
                searchesStarted = journal.Leases,
                extraSearches = journal.Leases - tasks,
                extraSearchesStored = journal.Searches - journal.DistinctTrees,
                treesStoredTwiceBySameSearch = journal.StoredVersions - journal.Searches,
                meanNodesPerTree = Math.Round(journal.Nodes / (double)Math.Max(1, journal.DatasetTrees), 1),
            };
        }
        finally
        {
            await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance);
            foreach (var child in children)
                try { child.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        }
    }

    sealed record JournalFigures(int StoredVersions, int Searches, int DistinctTrees, int DatasetTrees, long Nodes, int Leases);

    /// <summary>From the journal: every stored version, the searches behind them (a search stamps its tree with its
    /// start time), the tree ids, and what the dataset query returns.</summary>
    static async Task<JournalFigures> JournalFiguresAsync(ActorSystem system, string campaign)
    {
        var (versions, searches, ids) = (0, new HashSet<(string, DateTime)>(), new HashSet<string>());
        await TreeQueries.ReadJournal(system).CurrentEventsByTag(TreeBucket.IterationTag(campaign, 1), Akka.Persistence.Query.Offset.NoOffset())
            .RunForeach(e =>
            {
                if (e.Event is not TreesStored stored) return;
                foreach (var tree in stored.Trees)
                {
                    versions++;
                    searches.Add((tree.TreeId, tree.CreatedAtUtc));
                    ids.Add(tree.TreeId);
                }
            }, system.Materializer());
        var dataset = await TreeQueries.IterationTreesAsync(system, campaign, 1);
        // Every search started is a journaled lease (a task handed out again after its worker died is a second one).
        var leases = 0;
        await TreeQueries.ReadJournal(system).CurrentEventsByPersistenceId(CampaignCoordinator.PersistenceIdFor(campaign), 0, long.MaxValue)
            .RunForeach(e => { if (e.Event is TaskLeased { Iteration: 1 }) leases++; }, system.Materializer());
        return new JournalFigures(versions, searches.Count, ids.Count, dataset.Count, dataset.Sum(t => (long)t.Nodes.Count), leases);
    }

    static List<double> RoundTrips(string runDir) =>
        Directory.GetFiles(runDir, "bench-lease-*.json")
            .SelectMany(f =>
            {
                try { return JsonSerializer.Deserialize<List<double>>(File.ReadAllText(f)) ?? []; }
                catch (Exception e) when (e is IOException or JsonException) { return []; } // a process killed while writing
            })
            .Order().ToList();

    static double Percentile(List<double> sorted, double q) =>
        sorted.Count == 0 ? double.NaN : Math.Round(sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))], 2);

    static async Task<int> SearchProcessAsync(string seed, string runDir, int workers, string? postgres, int tasks, int simulations)
    {
        var (config, context) = Campaign(runDir, tasks, postgres, simulations);
        var system = SelfPlayHost.CreateNode(config.Persistence, runDir, new NodeOptions(["search", "inference"], [seed]), serilog: false);
        var coordinator = SelfPlayHost.CoordinatorProxy(system);
        var replay = ClusterSharding.Get(system).StartProxy(SelfPlayHost.TreeTypeName, "replay", new TreeMessageExtractor());
        var inference = system.ActorOf(Props.Create(() => new InstantInference()), "instant-inference");
        system.Scheduler.ScheduleTellRepeatedly(TimeSpan.Zero, TimeSpan.FromSeconds(5), coordinator, RegisterInference.Instance, inference);
        var steps = new InlineEnvironmentSteps(context.Setup.Environment);
        var proposer = new InstantProposer();
        var evaluator = new VerifierEvaluator(steps);
        var samples = new List<double>();
        for (var i = 0; i < workers; i++)
        {
            var timer = system.ActorOf(Props.Create(() => new LeaseTimer(coordinator, samples)), $"lease-timer-{i}");
            system.ActorOf(Props.Create(() => new SearchWorker(timer, replay, context, proposer, evaluator, steps, null)), $"search-{i}");
        }
        var file = Path.Combine(runDir, $"bench-lease-{Environment.ProcessId}.json");
        while (!system.WhenTerminated.IsCompleted)
        {
            await Task.WhenAny(system.WhenTerminated, Task.Delay(2000));
            double[] copy;
            lock (samples) copy = [.. samples];
            await File.WriteAllTextAsync(file + ".tmp", JsonSerializer.Serialize(copy));
            File.Move(file + ".tmp", file, overwrite: true);
        }
        return 0;
    }

    /// <summary>A search process; its output (Akka's warnings: failed stores, lost associations) goes to search-PID.log in the run folder.</summary>
    static Process Start(string runDir, string[] args)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var host = Environment.ProcessPath ?? "dotnet";
        start.FileName = host;
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "selfplay.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a search process");
        var log = TextWriter.Synchronized(new StreamWriter(Path.Combine(runDir, $"search-{process.Id}.log")) { AutoFlush = true });
        process.OutputDataReceived += (_, e) => { if (e.Data is { } line) log.WriteLine(line); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) log.WriteLine(line); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Simulated policy: every request gets its count of the same step at once (no model). Game of 24 judges it.</summary>
    sealed class InstantProposer : IStepProposer
    {
        public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(requests
                .Select(r => (IReadOnlyList<ProposedStep>)Enumerable.Range(0, r.Count).Select(i => new ProposedStep($"{i + 1} + 1", [1, 2], [-0.5f, -0.25f])).ToList())
                .ToList());
    }

    /// <summary>Simulated learner: publishes each version at once (no training, no weights).</summary>
    sealed class InstantLearner : ReceiveActor
    {
        public InstantLearner(string runDir)
        {
            var report = new TrainingReport(0, 0, double.NaN, double.NaN, double.NaN, 0);
            Receive<RunWarmup>(_ => Sender.Tell(new PolicyPublished(0, Path.Combine(runDir, "checkpoints", "v0"), "instant", report)));
            Receive<TrainIteration>(t => Sender.Tell(new PolicyPublished(t.Iteration, Path.Combine(runDir, "checkpoints", $"v{t.Iteration}"), "instant", report)));
        }
    }

    /// <summary>Simulated inference actor: loads any version at once (no weights).</summary>
    sealed class InstantInference : ReceiveActor
    {
        public InstantInference()
        {
            Receive<LoadPolicy>(l => Sender.Tell(new PolicyLoaded(l.Version)));
            Receive<GetInferenceStats>(_ => Sender.Tell(new InferenceStats(0, 0, 0, 0, 0)));
        }
    }

    /// <summary>Stands between one worker and the coordinator (the coordinator sees it as the worker; it lives and dies
    /// with it) and times each lease round trip: from the worker's request for work to the task's arrival.</summary>
    sealed class LeaseTimer : ReceiveActor
    {
        public LeaseTimer(IActorRef coordinator, List<double> samples)
        {
            IActorRef? worker = null;
            Stopwatch? asked = null;
            var first = true; // the first wait includes the campaign's start
            Receive<SearchTask>(task =>
            {
                if (asked is { } clock && !first) lock (samples) samples.Add(clock.Elapsed.TotalMilliseconds);
                (asked, first) = (null, false);
                worker?.Tell(task);
            });
            ReceiveAny(message =>
            {
                worker ??= Sender;
                if (message is RequestWork) asked ??= Stopwatch.StartNew();
                coordinator.Tell(message);
            });
        }
    }

    /// <summary>Receives the coordinator's progress (WatchProgress): the end of the search, and the end of the campaign.</summary>
    sealed class ProgressWatcher : ReceiveActor
    {
        public ProgressWatcher(TaskCompletionSource<CampaignFinished> finished, TaskCompletionSource<double> searchDone)
        {
            Receive<CampaignProgress>(p =>
            {
                if (p.Phase == "search" && p.Total > 0 && p.Done >= p.Total && !searchDone.Task.IsCompleted) searchDone.TrySetResult(GC.GetTotalMemory(true));
            });
            Receive<CampaignFinished>(f => finished.TrySetResult(f));
        }
    }
}
