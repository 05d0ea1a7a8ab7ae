using Akka.Actor;
using Akka.Cluster;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Config;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Actors.Tests;

/// <summary>The Akka.Hosting chain gives every setting the campaign relies on: the values read back from a running node.</summary>
public sealed class HostingChainTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-hosting-" + Guid.NewGuid().ToString("N"));

    public HostingChainTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public void A_tool_system_gets_the_journal_snapshots_queries_breakers_and_closed_serialization()
    {
        var config = SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), _dir, serilog: false);
        var connection = $"Data Source={Path.Combine(Path.GetFullPath(_dir), "selfplay.db")}";
        Assert.Equal("akka.persistence.journal.sql", config.GetString("akka.persistence.journal.plugin"));
        Assert.Equal("akka.persistence.snapshot-store.sql", config.GetString("akka.persistence.snapshot-store.plugin"));
        foreach (var path in new[] { "akka.persistence.journal.sql", "akka.persistence.snapshot-store.sql", "akka.persistence.query.journal.sql" })
        {
            Assert.Equal(connection, config.GetString(path + ".connection-string"));
            Assert.Equal("SQLite.MS", config.GetString(path + ".provider-name"));
        }
        Assert.True(config.GetBoolean("akka.persistence.journal.sql.auto-initialize"));
        Assert.Equal("TagTable", config.GetString("akka.persistence.journal.sql.tag-write-mode"));
        Assert.Equal(TimeSpan.FromSeconds(2), config.GetTimeSpan("akka.persistence.journal.sql.circuit-breaker.reset-timeout"));
        Assert.Equal(TimeSpan.FromSeconds(2), config.GetTimeSpan("akka.persistence.snapshot-store.sql.circuit-breaker.reset-timeout"));
        Assert.Equal("WARNING", config.GetString("akka.loglevel"), ignoreCase: true);
        Assert.False(config.GetBoolean("akka.log-dead-letters"));
        Assert.Equal("PinnedDispatcher", config.GetString("selfplay.pinned-dispatcher.type"));

        using var system = ActorSystem.Create("tool", config);
        var serialization = system.Serialization;
        Assert.IsType<SelfPlaySerializer>(serialization.FindSerializerForType(typeof(TaskCompleted)));
        Assert.IsType<LegacyJsonSerializer>(serialization.FindSerializerForType(typeof(object))); // the guarded "json"
        Assert.NotNull(system.GetExtension<RefusedPayloadLog>());
    }

    [Fact]
    public async Task A_node_gets_its_roles_seeds_frames_resolver_and_sharding_and_serilog_when_asked()
    {
        var node = new NodeOptions(["replay", "search"], ["127.0.0.1:1"], "127.0.0.1", 0, "hosted");
        var system = SelfPlayHost.CreateNode(new PersistenceConfig("sqlite", ""), _dir, node);
        try
        {
            var config = system.Settings.Config;
            Assert.IsType<Akka.Cluster.ClusterActorRefProvider>(((ExtendedActorSystem)system).Provider);
            Assert.Equal("hosted", system.Name);
            Assert.Equal(["replay", "search"], config.GetStringList("akka.cluster.roles"));
            Assert.Equal(["akka.tcp://hosted@127.0.0.1:1"], config.GetStringList("akka.cluster.seed-nodes"));
            Assert.Equal("127.0.0.1", config.GetString("akka.remote.dot-netty.tcp.hostname"));
            Assert.Equal(MessageLimits.MaxFrameBytes, config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size"));
            Assert.False(config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl"));
            Assert.Contains("SplitBrainResolverProvider", config.GetString("akka.cluster.downing-provider-class"));
            Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
            Assert.Equal(TimeSpan.FromSeconds(5), config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
            Assert.True(config.GetBoolean("akka.cluster.sharding.remember-entities"));
            Assert.Equal("replay", config.GetString("akka.cluster.sharding.role"));
            Assert.Equal(TimeSpan.FromSeconds(1), config.GetTimeSpan("akka.cluster.sharding.shard-failure-backoff"));
            Assert.Equal(TimeSpan.FromMilliseconds(200), config.GetTimeSpan("akka.cluster.singleton.hand-over-retry-interval"));
            Assert.Equal("INFO", config.GetString("akka.loglevel"), ignoreCase: true);
            Assert.Contains(config.GetStringList("akka.loggers"), l => l.Contains("SerilogLogger"));
            Assert.Equal(TimeSpan.FromSeconds(2), config.GetTimeSpan("akka.persistence.journal.sql.circuit-breaker.reset-timeout"));
            Assert.IsType<SelfPlaySerializer>(system.Serialization.FindSerializerForType(typeof(TaskCompleted)));
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(20));
        }
    }

    [Fact]
    public async Task A_nodes_roles_are_steps_of_the_chain_and_the_registry_holds_their_actors()
    {
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, ["name=roles", "environment.held-out=10", "actors.search-workers=2"]));
        var context = new CampaignContext(config, new Game24Provider().Create(config.Environment), _dir);
        var system = SelfPlayHost.CreateNode(config.Persistence, _dir, new NodeOptions(["replay", "search", "inference"], []), serilog: false, campaign: context);
        try
        {
            var actors = SelfPlayHost.Actors(system);
            Assert.Equal("inference", actors.Inference!.Path.Name);
            Assert.Equal("learner-proxy", actors.Learner.Path.Name);
            Assert.Equal("coordinator-proxy", actors.Coordinator.Path.Name);
            var found = TimeSpan.FromSeconds(5);
            foreach (var path in new[] { "/user/search-0", "/user/search-1", "/user/critic", "/system/sharding/tree-bucket" })
                Assert.NotNull(await system.ActorSelection(path).ResolveOne(found));
            // Roles this node lacks start nothing: no learner or coordinator singleton manager here.
            await Assert.ThrowsAsync<ActorNotFoundException>(() => system.ActorSelection("/user/learner").ResolveOne(found));
            await Assert.ThrowsAsync<ActorNotFoundException>(() => system.ActorSelection("/user/coordinator").ResolveOne(found));
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(20));
        }
    }

    [Fact]
    public void A_role_that_cannot_start_fails_the_node_with_its_own_error()
    {
        // Akka.Hosting's start logs and swallows a step's exception: the node would run without its search workers.
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, ["name=roles-bad", "environment.held-out=10"]));
        config = config with { Search = config.Search with { Critic = "llm" }, Environment = config.Environment with { Llm = null } };
        var context = new CampaignContext(config, new Game24Provider().Create(config.Environment), _dir);
        var error = Assert.Throws<ArgumentException>(() =>
            SelfPlayHost.CreateNode(config.Persistence, _dir, new NodeOptions(["replay", "search", "inference"], []), serilog: false, campaign: context));
        Assert.Contains("needs llm.endpoint and llm.model", error.Message);
        Assert.Throws<ArgumentException>(() => SelfPlayHost.CreateNode(config.Persistence, _dir, new NodeOptions(["search"], []), serilog: false, campaign: context));
    }
}
