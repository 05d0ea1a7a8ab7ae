using Akka.Actor;
using Akka.Pattern;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Singleton;
using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Akka.Remote.Hosting;
using LinqToDB;
using Microsoft.Extensions.DependencyInjection;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Environments;
using SelfPlay.Actors.Inference;
using SelfPlay.Actors.Learning;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Actors.Search;
using SelfPlay.Core.Config;
using SelfPlay.Core.Critics;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Search;

namespace SelfPlay.Actors.Hosting;

/// <summary>The actors of one node: the coordinator and learner proxies (cluster singletons), the replay region, this node's inference actor.</summary>
public sealed record CampaignActors(ActorSystem System, IActorRef Coordinator, IActorRef Replay, IActorRef? Inference, IActorRef Learner);

/// <summary>Where a node listens, which roles it runs, which seed nodes it joins (none: it forms a cluster of its own),
/// under which actor-system name, and with which TLS certificate (none: plain TCP).</summary>
public sealed record NodeOptions(IReadOnlyCollection<string> Roles, IReadOnlyList<string> Seeds, string Hostname = "127.0.0.1", int Port = 0,
    string SystemName = SelfPlayHost.DefaultSystemName, RemoteTls? Tls = null)
{
    public static readonly string[] AllRoles = ["coordinator", "search", "inference", "learner", "replay", EnvironmentPlacement.Role];

    /// <summary>Every role in one process, a one-node cluster on a free port of loopback (`selfplay run`).</summary>
    public static NodeOptions SingleProcess => new(AllRoles, []);

    /// <summary>A node of the campaign: its system name and TLS certificate come from the campaign's cluster section.</summary>
    public static NodeOptions For(CampaignConfig config, IReadOnlyCollection<string> roles, IReadOnlyList<string> seeds, string hostname = "127.0.0.1", int port = 0) =>
        new(roles, seeds, hostname, port, ClusterSecurity.SystemName(config), ClusterSecurity.LoadTls(config.Security));

    /// <summary>"host:port" or a full "akka.tcp://name@host:port" address.</summary>
    public string SeedAddress(string seed) => seed.Contains("://", StringComparison.Ordinal) ? seed : $"akka.tcp://{SystemName}@{seed}";
}

/// <summary>Builds the ActorSystem configuration (persistence, cluster, serializer, logging, dispatchers) and starts the roles.</summary>
public static class SelfPlayHost
{
    public const string PinnedDispatcher = "selfplay.pinned-dispatcher";
    /// <summary>The system name of nodes that are not given a campaign's (tools, benches, tests).</summary>
    public const string DefaultSystemName = "selfplay";
    const string CoordinatorName = "coordinator", LearnerName = "learner";
    /// <summary>The sharded replay's type name. "tree" was the type of one entity per tree: a new name, so that the
    /// remembered entities of a journal written before buckets are not started as buckets.</summary>
    public const string TreeTypeName = "tree-bucket";
    /// <summary>Where the learner runs (the singleton manager's child): the only sender whose publications count.</summary>
    public const string LearnerSingletonPath = "/user/" + LearnerName + "/singleton";

    public static string ConnectionString(PersistenceConfig persistence, string runDir)
    {
        if (persistence.Provider == "sqlite" && persistence.ConnectionString.Length == 0)
            return $"Data Source={Path.Combine(Path.GetFullPath(runDir), "selfplay.db")}";
        if (persistence.PasswordEnv.Length == 0) return persistence.ConnectionString;
        var password = Environment.GetEnvironmentVariable(persistence.PasswordEnv)
            ?? throw new Configuration.ConfigException($"selfplay.persistence.password-env names {persistence.PasswordEnv}, which is not set");
        return new System.Data.Common.DbConnectionStringBuilder { ConnectionString = persistence.ConnectionString, ["Password"] = password }.ConnectionString;
    }

    /// <summary>
    /// The Akka settings of every SelfPlay process as one Akka.Hosting chain: Serilog (or Akka's default logger),
    /// SQL persistence (journal with tags, snapshots, queries), the closed serialization; and with <paramref name="node"/>
    /// remoting (TLS when the node has a certificate), clustering (roles, seeds, keep-majority split-brain resolver) and
    /// <see cref="ClusterPace"/>. Values come in as typed options; only fixed settings are HOCON text.
    /// </summary>
    public static AkkaConfigurationBuilder AddSelfPlay(this AkkaConfigurationBuilder builder, PersistenceConfig persistence, string runDir,
        NodeOptions? node = null, bool serilog = true)
    {
        builder
            .ConfigureLoggers(loggers =>
            {
                loggers.LogLevel = serilog ? Akka.Event.LogLevel.InfoLevel : Akka.Event.LogLevel.WarningLevel;
                loggers.ClearLoggers();
                if (serilog) loggers.AddLogger<Akka.Logger.Serilog.SerilogLogger>();
                else loggers.AddLogger<StandardErrorLogger>();
            })
            .WithSqlPersistence(ConnectionString(persistence, runDir), persistence.Provider == "postgres" ? ProviderName.PostgreSQL15 : ProviderName.SQLiteMS,
                autoInitialize: true)
            .AddHocon(ClosedSerialization.Config, HoconAddMode.Append);
        if (node is not null)
        {
            builder
                .WithRemoting(new RemoteOptions
                {
                    HostName = node.Hostname, Port = node.Port, EnableSsl = node.Tls is not null,
                    // Large frames: a tree travels as one message.
                    MaxFrameSize = MessageLimits.MaxFrameBytes, SendBufferSize = MessageLimits.MaxFrameBytes, ReceiveBufferSize = MessageLimits.MaxFrameBytes,
                })
                .WithClustering(new ClusterOptions
                {
                    Roles = [.. node.Roles], SeedNodes = [.. node.Seeds.Select(node.SeedAddress)], SplitBrainResolver = new KeepMajorityOption(),
                })
                .AddHocon(ClusterPace, HoconAddMode.Prepend);
            if (node.Tls is { } tls) builder.AddSetup(ClusterSecurity.SslSetup(tls));
        }
        if (persistence.Provider != "postgres") builder.AddHocon(SqliteWrites, HoconAddMode.Prepend);
        return builder.AddHocon(ProcessSettings, HoconAddMode.Prepend); // last: these win over the plugins' defaults
    }

    /// <summary>The chain's settings for a process without a cluster (tools, benches, tests): persistence, serialization, logging.</summary>
    public static Config AkkaConfig(PersistenceConfig persistence, string runDir, bool serilog = true) =>
        new AkkaConfigurationBuilder(new ServiceCollection(), DefaultSystemName).AddSelfPlay(persistence, runDir, serilog: serilog).Configuration.Value;

    /// <summary>Fixed settings of every process: quiet dead letters, the pinned dispatcher, and SQL circuit breakers that try the
    /// database again 2 s after they opened (default 30 s): a database that comes back is used within seconds, not after a
    /// half-minute of "Circuit Breaker is open".</summary>
    static readonly Config ProcessSettings = ConfigurationFactory.ParseString("""
        akka {
          stdout-loglevel = WARNING
          log-dead-letters = off
          log-dead-letters-during-shutdown = off
          persistence.journal.sql.circuit-breaker { max-failures = 10, call-timeout = 10s, reset-timeout = 2s }
          persistence.snapshot-store.sql.circuit-breaker { max-failures = 5, call-timeout = 20s, reset-timeout = 2s }
        }
        selfplay.pinned-dispatcher { type = PinnedDispatcher, executor = thread-pool-executor }
        """);

    /// <summary>SQLite takes one writer at a time: parallel journal writes (the plugin's default 3) only wait on each
    /// other's file lock, in SQLite's busy-handler sleeps of up to tens of milliseconds each. And reads run in deferred
    /// transactions: at the plugins' default isolation Microsoft.Data.Sqlite begins every transaction IMMEDIATE, which
    /// takes the write lock, so each recovery and query waited behind the writes (a new iteration's 16 buckets started in
    /// 0.6-1.1 s, now 0.2 s). "read-uncommitted" is what selects a deferred transaction; without a shared cache SQLite
    /// reads only committed data whatever it says (a WAL reader sees the last commit before it began).</summary>
    static readonly Config SqliteWrites = ConfigurationFactory.ParseString("""
        akka.persistence.journal.sql { parallelism = 1, read-isolation-level = read-uncommitted }
        akka.persistence.query.journal.sql.read-isolation-level = read-uncommitted
        akka.persistence.snapshot-store.sql.read-isolation-level = read-uncommitted
        """);

    /// <summary>
    /// The cluster's fixed settings, all explicit: split-brain resolver keep-majority (a node that stops answering is downed
    /// after the failure detector plus 5 s of stability, and its leased tasks are handed out again); replay entities
    /// sharded on the replay role and remembered through the journal (the ddata store's durable LMDB file fails at run
    /// time with Akka.DistributedData.LightningDB 1.5's LightningDB).
    /// </summary>
    static readonly Config ClusterPace = ConfigurationFactory.ParseString("""
        akka.cluster {
          split-brain-resolver {
            active-strategy = keep-majority
            stable-after = 5s
            down-all-when-unstable = on
          }
          failure-detector.acceptable-heartbeat-pause = 4s
          run-coordinated-shutdown-when-down = on
          # Start-up and shut-down pace (timers, not safety): the defaults' 1 s ticks made up about 2 s of every
          # one-node run. Failure detection, SBR stability and the hand-over window (15 x 1 s) are unchanged.
          periodic-tasks-initial-delay = 100ms
          leader-actions-interval = 250ms
          singleton.hand-over-retry-interval = 200ms
          singleton.min-number-of-hand-over-retries = 75
          singleton-proxy.singleton-identification-interval = 200ms
          # Off: its first check fires when the proxy starts, before any answer can come, so every start logged a
          # false "failed to find an associated singleton" warning (akka.net#8568).
          singleton-proxy.log-singleton-identification-failure = off
          sharding {
            role = "replay"
            remember-entities = on
            remember-entities-store = eventsourced
            state-store-mode = persistence
            retry-interval = 500ms
            # A shard or entity whose recovery failed (the database was away) starts again after 1 s, not 10 s.
            shard-failure-backoff = 1s
            entity-restart-backoff = 1s
            coordinator-failure-backoff = 1s
          }
        }
        akka.coordinated-shutdown.phases.cluster-exiting.timeout = 3s
        """);

    /// <summary>Prints (and logs) <see cref="ClusterSecurity.ExposureWarnings"/> for a node about to listen.</summary>
    public static void WarnAboutExposure(NodeOptions node)
    {
        foreach (var warning in ClusterSecurity.ExposureWarnings(node.Hostname, node.Port, node.Tls is not null))
        {
            Console.Error.WriteLine($"selfplay: warning: {warning}");
            Serilog.Log.Warning("{Warning}", warning);
        }
    }

    /// <summary>
    /// Creates the node's ActorSystem through the Akka.Hosting chain (<see cref="AddSelfPlay"/>, then with a campaign
    /// its roles, <see cref="WithSelfPlayRoles"/>) and, for a node without seeds, has it join itself (a one-node
    /// cluster). `selfplay run` and `selfplay node` both start here; <see cref="Actors"/> finds what the roles started.
    /// </summary>
    public static ActorSystem CreateNode(PersistenceConfig persistence, string runDir, NodeOptions node, bool serilog = true, CampaignContext? campaign = null)
    {
        if (persistence.Provider == "sqlite") UseWriteAheadLog(ConnectionString(persistence, runDir));
        var roles = new RoleStart();
        var services = new ServiceCollection()
            .AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(Microsoft.Extensions.Logging.Abstractions.NullLogger<>))
            .AddSingleton<Microsoft.Extensions.Hosting.IHostApplicationLifetime, ProcessLifetime>()
            .AddAkka(node.SystemName, builder =>
            {
                builder.AddSelfPlay(persistence, runDir, node, serilog);
                if (campaign is not null) builder.WithSelfPlayRoles(campaign, node.Roles, roles);
            });
        // The system is made by Akka.Hosting's factory; nothing here disposes the container (that would terminate the system).
        var provider = services.BuildServiceProvider();
        var system = provider.GetRequiredService<ActorSystem>();
        if (persistence.Provider == "postgres")
        {
            var stopped = new CancellationTokenSource();
            system.WhenTerminated.ContinueWith(_ => stopped.Cancel());
            PostgresStorage.UseLz4WhenCreated(ConnectionString(persistence, runDir), system.Log, stopped.Token);
        }
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (node.Seeds.Count == 0) cluster.Join(cluster.SelfAddress);
        if (campaign is null) return system;
        // Akka.Hosting's start runs the chain's actor steps (and would log and swallow their exceptions: RoleStart keeps the first).
        foreach (var hosted in provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>())
            hosted.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        if (roles.Failure is { } failure)
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(20));
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
        return system;
    }

    /// <summary>What Akka.Hosting's start needs of a host, for a process that is not one: the process's own signals stop it.</summary>
    sealed class ProcessLifetime : Microsoft.Extensions.Hosting.IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;
        public CancellationToken ApplicationStopping => CancellationToken.None;
        public CancellationToken ApplicationStopped => CancellationToken.None;
        public void StopApplication() { }
    }

    /// <summary>
    /// Puts the SQLite journal in write-ahead-log mode (a property of the file, kept once set): each commit appends to
    /// the log instead of rewriting a rollback journal, which multiplies the small-write rate of the journal, and
    /// readers (queries, recoveries) no longer wait for writers.
    /// </summary>
    static void UseWriteAheadLog(string connectionString)
    {
        var builder = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connectionString);
        if (Path.GetDirectoryName(Path.GetFullPath(builder.DataSource)) is { } folder) Directory.CreateDirectory(folder);
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL";
        pragma.ExecuteNonQuery();
    }

    const int MinPoolThreads = 128;

    /// <summary>Keys of a node's actors in Akka.Hosting's ActorRegistry.</summary>
    public sealed class ReplayRegion;
    public sealed class InferenceOfNode;
    public sealed class LearnerProxy;
    public sealed class CoordinatorProxyOfNode;

    /// <summary>The first exception of a role's start (Akka.Hosting's start would swallow it); later steps are skipped.</summary>
    internal sealed class RoleStart
    {
        public Exception? Failure { get; private set; }

        public ActorStarter Step(Action<ActorSystem, IActorRegistry> start) => (system, registry) =>
        {
            if (Failure is not null) return Task.CompletedTask;
            try { start(system, registry); }
            catch (Exception e) { Failure = e; }
            return Task.CompletedTask;
        };
    }

    /// <summary>
    /// This node's roles as the chain's last steps, in the order they need each other: the replay (sharded buckets, or
    /// a proxy), the inference actor, the learner singleton, the environment actors, the coordinator singleton and the
    /// search workers. The coordinator and the learner are cluster singletons (reached through proxies on every node);
    /// search workers use their own node's inference and critic, and the environment actors that
    /// actors.environment-placement names (their own node's, or the environment members').
    /// </summary>
    internal static AkkaConfigurationBuilder WithSelfPlayRoles(this AkkaConfigurationBuilder builder, CampaignContext context,
        IReadOnlyCollection<string> roles, RoleStart start)
    {
        var unknown = roles.Except(NodeOptions.AllRoles).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"unknown role(s) {string.Join(",", unknown)}; roles are {string.Join(",", NodeOptions.AllRoles)}");
        if (roles.Contains("search") && !roles.Contains("inference"))
            throw new ArgumentException("a search node needs the inference role too: its workers generate with their node's inference actor");
        var config = context.Config;
        IEnvironmentSteps? steps = null;
        return builder
            .WithActors(start.Step((_, _) =>
            {
                TorchSharp.torch.set_num_threads(config.Model.Threads);
                // Environment calls are synchronous: each batch waits on a pool thread for the guarded environment threads. An
                // environment that itself needs the pool (the web shop's in-process Kestrel server) would starve while the pool
                // grows by about one thread per second: 40 evaluation episodes starting at once timed out 4 of them.
                ThreadPool.GetMinThreads(out var workers, out var io);
                ThreadPool.SetMinThreads(Math.Max(workers, MinPoolThreads), io);
            }))
            .WithActors(start.Step((system, registry) =>
            {
                var sharding = ClusterSharding.Get(system);
                var extractor = new TreeMessageExtractor();
                registry.Register<ReplayRegion>(roles.Contains("replay")
                    ? sharding.Start(TreeTypeName, bucketId => Props.Create(() => new TreeBucket(bucketId, config.Persistence.SnapshotNodes)),
                        ClusterShardingSettings.Create(system).WithRole("replay").WithRememberEntities(true), extractor)
                    : sharding.StartProxy(TreeTypeName, "replay", extractor));
            }))
            .WithActors(start.Step((system, registry) =>
            {
                if (roles.Contains("inference") || roles.Contains("coordinator"))
                    registry.Register<InferenceOfNode>(system.ActorOf(Props.Create(() => new InferenceActor(config.Model.Device, context.Setup.Environment.StepStop,
                        config.Model.MaxStepTokens, config.Actors.InferenceBatchRows, config.Model.DType,
                        config.Model.PrefixCacheMb, config.InferenceBackend)).WithDispatcher(PinnedDispatcher), "inference"));
            }))
            .WithActors(start.Step((system, registry) =>
            {
                if (roles.Contains("learner"))
                    system.ActorOf(ClusterSingletonManager.Props(Props.Create(() => new LearnerActor(context)).WithDispatcher(PinnedDispatcher),
                        PoisonPill.Instance, ClusterSingletonManagerSettings.Create(system).WithRole("learner")), LearnerName);
                registry.Register<LearnerProxy>(system.ActorOf(ClusterSingletonProxy.Props($"/user/{LearnerName}",
                    ClusterSingletonProxySettings.Create(system).WithRole("learner")), LearnerName + "-proxy"));
            }))
            .WithActors(start.Step((system, _) =>
            {
                // Environment code (steps, initial states, verification) runs in environment actors: this node's under the
                // local placement, the environment members' under the cluster placement. A node with neither (a coordinator
                // without the search role, locally placed) calls its guarded environment in-process for the evaluation.
                var actors = config.Actors;
                var hostsEnvironment = EnvironmentPlacement.Hosts(actors.EnvironmentPlacement, roles);
                var scoreSteps = config.Search.Critic == StepScoreEvaluator.CriticName; // ScoreStep only when a critic reads it
                if (hostsEnvironment) EnvironmentPlacement.StartActors(system, context.Setup.Environment, actors.EnvironmentActors, scoreSteps);
                steps = hostsEnvironment || actors.EnvironmentPlacement == "cluster"
                    ? new ActorEnvironmentSteps(EnvironmentPlacement.Router(system, actors.EnvironmentPlacement, actors.EnvironmentActors), context.AskTimeout)
                    : new InlineEnvironmentSteps(context.Setup.Environment, scoreSteps);
            }))
            .WithActors(start.Step((system, registry) =>
            {
                if (roles.Contains("coordinator"))
                {
                    // A coordinator whose journal write or recovery fails stops; it is started again with backoff and
                    // resumes from its journal (the journal may be down for a while). At most 2 s apart: a failed recovery is
                    // one cheap query, and a database that is back is used within seconds.
                    var (learner, inference, replay) = (registry.Get<LearnerProxy>(), registry.Get<InferenceOfNode>(), registry.Get<ReplayRegion>());
                    var coordinatorProps = BackoffSupervisor.Props(Backoff.OnStop(
                        Props.Create(() => new CampaignCoordinator(context, learner, inference, steps!, replay)), "campaign",
                        TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(2), 0.2, -1));
                    system.ActorOf(ClusterSingletonManager.Props(coordinatorProps, PoisonPill.Instance,
                        ClusterSingletonManagerSettings.Create(system).WithRole("coordinator")), CoordinatorName);
                }
                registry.Register<CoordinatorProxyOfNode>(CoordinatorProxy(system));
            }))
            .WithActors(start.Step((system, registry) =>
            {
                if (!roles.Contains("search")) return;
                var (coordinator, inference, replay) = (registry.Get<CoordinatorProxyOfNode>(), registry.Get<InferenceOfNode>(), registry.Get<ReplayRegion>());
                // Registered again every few seconds: a restarted coordinator learns its search nodes this way.
                system.Scheduler.ScheduleTellRepeatedly(TimeSpan.Zero, TimeSpan.FromSeconds(5), coordinator, RegisterInference.Instance, inference);
                var (criticEvaluator, judge) = LlmSelection.Create(config.Search, config.Environment.Llm, steps!);
                var trainedCritic = CriticTargets.IsTrained(config.Search.Critic);
                var critic = system.ActorOf(Props.Create(() => new CriticActor(criticEvaluator, new VerifierEvaluator(steps!), config.Model.Device))
                    .WithDispatcher(PinnedDispatcher), "critic");
                // A trained critic is kept on the current version by the coordinator, like the policy of the inference actor.
                if (trainedCritic) system.Scheduler.ScheduleTellRepeatedly(TimeSpan.Zero, TimeSpan.FromSeconds(5), coordinator, RegisterCritic.Instance, critic);
                var proposer = new ActorStepProposer(inference, context.AskTimeout);
                var evaluator = new ActorNodeEvaluator(critic, trainedCritic ? config.Search.Critic : criticEvaluator.Name, context.AskTimeout);
                for (var i = 0; i < config.Actors.SearchWorkers; i++)
                    system.ActorOf(Props.Create(() => new SearchWorker(coordinator, replay, context, proposer, evaluator, steps!, judge)), $"search-{i}");
            }));
    }

    /// <summary>The actors a node's roles started (<see cref="CreateNode"/> with a campaign), from its ActorRegistry.</summary>
    public static CampaignActors Actors(ActorSystem system)
    {
        var registry = ActorRegistry.For(system);
        return new CampaignActors(system, registry.Get<CoordinatorProxyOfNode>(), registry.Get<ReplayRegion>(),
            registry.TryGet<InferenceOfNode>(out var inference) ? inference : null, registry.Get<LearnerProxy>());
    }

    /// <summary>The coordinator singleton, from any node (also a `selfplay run` attached to a cluster with no roles).</summary>
    public static IActorRef CoordinatorProxy(ActorSystem system) =>
        system.ActorOf(ClusterSingletonProxy.Props($"/user/{CoordinatorName}",
            ClusterSingletonProxySettings.Create(system).WithRole("coordinator")), CoordinatorName + "-proxy");
}

/// <summary>Routes replay commands to the bucket of their tree (entity id = <see cref="TreeBucket.BucketOf"/>).</summary>
public sealed class TreeMessageExtractor() : HashCodeMessageExtractor(64)
{
    public override string? EntityId(object message) => message switch
    {
        StoreTree s => TreeBucket.BucketOf(s.Tree.TreeId),
        GetTree g => TreeBucket.BucketOf(g.TreeId),
        OpenBucket o => o.BucketId,
        _ => null,
    };
}

/// <summary>Akka's log events on standard error, for processes without Serilog (tools, benches, tests): their standard
/// output stays the JSON they print (Akka's default logger writes to standard output).</summary>
public sealed class StandardErrorLogger : ReceiveActor, Akka.Dispatch.IRequiresMessageQueue<Akka.Event.ILoggerMessageQueueSemantics>
{
    public StandardErrorLogger()
    {
        Receive<Akka.Event.InitializeLogger>(_ => Sender.Tell(new Akka.Event.LoggerInitialized()));
        Receive<Akka.Event.LogEvent>(e => Console.Error.WriteLine(e.ToString()));
    }
}
