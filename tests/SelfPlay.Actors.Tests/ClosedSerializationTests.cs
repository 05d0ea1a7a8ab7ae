using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Serialization;
using Akka.Serialization;
using Microsoft.Data.Sqlite;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;

namespace SelfPlay.Actors.Tests;

/// <summary>A type whose deserialization has a side effect (its setter writes a file), like the Serilog sink of the
/// security review: if a node ever builds it from a payload, the file appears. Building it in code writes nothing.</summary>
public sealed class FileTouchingProbe
{
    string _path = "";
    public static FileTouchingProbe For(string path) => new() { _path = path };
    public string Path { get => _path; set { _path = value; File.WriteAllText(value, "constructed"); } }
}

public sealed class ClosedSerializationTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-closed-" + Guid.NewGuid().ToString("N"));
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    const string FixtureCampaign = "game24-quick";

    public ClosedSerializationTests() => Directory.CreateDirectory(_dir);

    /// <summary>A journal written by HEAD 6efaef2 (one quick campaign: 16 trees; 48 of its 86 rows are sharding events
    /// that went through the Newtonsoft fallback).</summary>
    string CopyFixtureJournal()
    {
        var runDir = Path.Combine(_dir, "run");
        Directory.CreateDirectory(runDir);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "journal-6efaef2.db"), Path.Combine(runDir, "selfplay.db"));
        return runDir;
    }

    static List<string> CollectWarnings(ActorSystem system)
    {
        var warnings = new List<string>();
        var listener = system.ActorOf(Props.Create(() => new WarningCollector(warnings)));
        system.EventStream.Subscribe(listener, typeof(Warning));
        return warnings;
    }

    sealed class WarningCollector : ReceiveActor
    {
        public WarningCollector(List<string> into) => Receive<Warning>(w => { lock (into) into.Add(w.Message?.ToString() ?? ""); });
    }

    static async Task<string?> WaitForWarning(List<string> warnings, string containing)
    {
        for (var i = 0; i < 300; i++)
        {
            lock (warnings) if (warnings.FirstOrDefault(w => w.Contains(containing, StringComparison.Ordinal)) is { } w) return w;
            await Task.Delay(50);
        }
        return null;
    }

    [Fact]
    public void The_guards_sit_under_the_identifiers_of_the_type_naming_serializers()
    {
        using var system = ActorSystem.Create("closed", ConfigurationFactory.ParseString("akka.actor.provider = remote, akka.remote.dot-netty.tcp.port = 0")
            .WithFallback(ClosedSerialization.Config));
        var extended = (ExtendedActorSystem)system;
        // If an Akka upgrade moves these identifiers, the guards would no longer shadow them.
        Assert.Equal(LegacyJsonSerializer.JsonId, new NewtonSoftJsonSerializer(extended).Identifier);
        Assert.Equal(RefusedDaemonCreateSerializer.DaemonCreateId, new DaemonMsgCreateSerializer(extended).Identifier);
        Assert.Equal(RefusedProtobufSerializer.ProtobufId, new ProtobufSerializer(extended).Identifier);
        var touched = Path.Combine(_dir, "touched.txt");
        var named = System.Text.Encoding.UTF8.GetBytes($$"""{"$type":"{{typeof(FileTouchingProbe).AssemblyQualifiedName}}","Path":"{{touched}}"}""");
        Assert.IsType<RefusedPayload>(system.Serialization.Deserialize(named, LegacyJsonSerializer.JsonId, ""));
        Assert.IsType<RefusedPayload>(system.Serialization.Deserialize(named, LegacyJsonSerializer.JsonId, typeof(FileTouchingProbe).AssemblyQualifiedName!));
        Assert.IsType<RefusedPayload>(system.Serialization.Deserialize([1, 2, 3], RefusedDaemonCreateSerializer.DaemonCreateId, "DaemonMsgCreate"));
        Assert.IsType<RefusedPayload>(system.Serialization.Deserialize([1, 2, 3], RefusedProtobufSerializer.ProtobufId, typeof(FileTouchingProbe).AssemblyQualifiedName!));
        Assert.False(File.Exists(touched));

        // Nothing falls through to type-named JSON: an unbound type cannot be written at all.
        var unbound = system.Serialization.FindSerializerFor(new Uri("http://example.invalid"));
        Assert.Contains("no serializer is bound", Assert.ThrowsAny<Exception>(() => unbound.ToBinary(new Uri("http://example.invalid"))).Message);
        // Sharding's own events have its serializer (they used to go through the fallback).
        Assert.Equal("ClusterShardingMessageSerializer", system.Serialization.FindSerializerForType(typeof(IClusterShardingSerializable)).GetType().Name);
    }

    [Theory]
    [InlineData("Akka.Cluster.Sharding.ShardCoordinator+ShardHomeAllocated, Akka.Cluster.Sharding", true)]
    [InlineData("System.Collections.Immutable.ImmutableHashSet`1[[System.String, System.Private.CoreLib]], System.Collections.Immutable", true)]
    [InlineData("System.Collections.Immutable.ImmutableDictionary`2[[System.String, System.Private.CoreLib],[Akka.Actor.IActorRef, Akka]], System.Collections.Immutable", true)]
    [InlineData("System.Collections.Immutable.ImmutableHashSet`1[[Serilog.Sinks.File.FileSink, Serilog.Sinks.File]], System.Collections.Immutable", false)]
    [InlineData("Serilog.Sinks.File.FileSink, Serilog.Sinks.File", false)]
    [InlineData("Akka.Cluster.Sharding.ShardCoordinator+ShardHomeAllocated, Akka.Cluster.Sharding, Version=1.0.0.0", false)]
    [InlineData("System.String", false)]
    [InlineData("", false)]
    public void The_legacy_allow_list_checks_every_part_of_a_type_name(string typeName, bool allowed) =>
        Assert.Equal(allowed, LegacyJsonSerializer.IsAllowed(typeName));

    [Fact]
    public async Task A_journal_written_before_the_closed_serialization_recovers_every_tree_and_its_sharding_state()
    {
        var runDir = CopyFixtureJournal();
        var system = SelfPlayHost.CreateNode(new PersistenceConfig("sqlite", ""), runDir, new NodeOptions(["replay"], []), serilog: false);
        try
        {
            var warnings = CollectWarnings(system);
            var trees = await TreeQueries.CampaignTreesAsync(system, FixtureCampaign);
            Assert.Equal(16, trees.Count);
            // The sharding coordinator and the shards of the old type ("tree", one entity per tree) recover from their
            // old JSON rows (allow-listed), and serve a tree: its bucket falls back to the tree's own events.
            var region = ClusterSharding.Get(system).Start("tree", id => Props.Create(() => new TreeBucket(id, 0)),
                ClusterShardingSettings.Create(system).WithRole("replay").WithRememberEntities(true), new TreeMessageExtractor());
            var reply = await region.Ask<TreeReply>(new GetTree(trees[3].TreeId), Timeout);
            Assert.Equal(trees[3].Nodes.Count, reply.Tree!.Nodes.Count);
            lock (warnings) Assert.DoesNotContain(warnings, w => w.Contains("refused", StringComparison.Ordinal));
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task An_edited_journal_row_naming_a_type_is_refused_and_every_other_tree_stays_readable()
    {
        var runDir = CopyFixtureJournal();
        var touched = Path.Combine(_dir, "touched-by-journal.txt");
        var probe = $$"""{"$type":"{{typeof(FileTouchingProbe).FullName}}, {{typeof(FileTouchingProbe).Assembly.GetName().Name}}","Path":"{{touched.Replace("\\", "\\\\")}}"}""";
        using (var db = new SqliteConnection($"Data Source={Path.Combine(runDir, "selfplay.db")};Pooling=false"))
        {
            db.Open();
            using var edit = db.CreateCommand();
            edit.CommandText = "UPDATE journal SET identifier = 1, manifest = '', message = $m WHERE ordering = (SELECT MIN(ordering) FROM journal WHERE manifest = 'tree-stored.v1')";
            edit.Parameters.AddWithValue("$m", System.Text.Encoding.UTF8.GetBytes(probe));
            Assert.Equal(1, edit.ExecuteNonQuery());
        }

        var system = ActorSystem.Create("journal-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), runDir, serilog: false));
        try
        {
            var warnings = CollectWarnings(system);
            var trees = await TreeQueries.CampaignTreesAsync(system, FixtureCampaign);
            Assert.Equal(15, trees.Count);
            Assert.False(File.Exists(touched), "the journal row's type was constructed");
            var warning = await WaitForWarning(warnings, "refused a type-named JSON payload");
            Assert.NotNull(warning);
            Assert.Contains(nameof(FileTouchingProbe), warning);
            Assert.StartsWith("journal row tree|game24-quick/1/", warning); // the line names the row
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task A_foreign_actor_system_cannot_make_a_node_construct_a_type_it_names()
    {
        var node = SelfPlayHost.CreateNode(new PersistenceConfig("sqlite", ""), Path.Combine(_dir, "node"), new NodeOptions(["replay"], []), serilog: false);
        // Not a member: plain remoting with Akka's defaults, whose Newtonsoft serializer writes `$type`.
        var foreign = ActorSystem.Create("foreign", ConfigurationFactory.ParseString("""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
            akka.loglevel = WARNING
            """));
        try
        {
            var warnings = CollectWarnings(node);
            var address = Akka.Cluster.Cluster.Get(node).SelfAddress;
            var touched = Path.Combine(_dir, "touched-by-peer.txt");
            var sender = foreign.ActorOf(Props.Create(() => new WarningCollector(new List<string>())), "prober");
            foreign.ActorSelection($"{address}/user/anyone").Tell(FileTouchingProbe.For(touched), sender);
            var warning = await WaitForWarning(warnings, "refused a type-named JSON payload");
            lock (warnings) Assert.True(warning is not null, "warnings: " + string.Join(" | ", warnings));
            Assert.True(warning!.Contains("from akka.tcp://foreign@", StringComparison.Ordinal), warning); // the line names the sender
            Assert.False(File.Exists(touched), "the peer's type was constructed");

            // The node goes on: it still answers the same peer.
            var identity = await foreign.ActorSelection($"{address}/user").Ask<ActorIdentity>(new Identify(1), Timeout);
            Assert.NotNull(identity.Subject);
        }
        finally
        {
            await foreign.Terminate();
            await node.Terminate();
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
