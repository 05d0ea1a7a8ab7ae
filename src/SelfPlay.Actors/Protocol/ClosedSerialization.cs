using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Singleton;
using Akka.Configuration;
using Akka.Event;
using Akka.Serialization;
using Newtonsoft.Json.Linq;

namespace SelfPlay.Actors.Protocol;

/// <summary>
/// What a node deserializes is closed: every message and event, SelfPlay's and Akka's own, has an explicit serializer
/// with a fixed manifest table, and no serializer builds a type named in a payload. Akka's defaults would otherwise let
/// any peer (or one edited journal row) name a type: `System.Object` goes to Newtonsoft with `$type`, remote deployment
/// creates actors from `Props` type names, and the protobuf serializer loads its type from the manifest.
/// </summary>
public static class ClosedSerialization
{
    /// <summary>
    /// Binds SelfPlay's serializer, loads the sharding and singleton serializers up front (their reference configs are
    /// otherwise injected after the serialization registry is built, so their events fell through to Newtonsoft), and
    /// puts guards under the identifiers of the type-naming serializers: a payload that names them is refused, never
    /// constructed. Remote deployment and raw protobuf messages are not used by SelfPlay.
    /// </summary>
    public static Config Config =>
        ConfigurationFactory.ParseString("""
            # Logs each refused payload once, with its sender and recipient (see RefusedPayloadLog).
            akka.extensions = ["SelfPlay.Actors.Protocol.RefusedPayloadLogProvider, SelfPlay.Actors"]
            akka.actor {
              serializers {
                json = "SelfPlay.Actors.Protocol.LegacyJsonSerializer, SelfPlay.Actors"
                daemon-create = "SelfPlay.Actors.Protocol.RefusedDaemonCreateSerializer, SelfPlay.Actors"
                proto = "SelfPlay.Actors.Protocol.RefusedProtobufSerializer, SelfPlay.Actors"
              }
            }
            """)
            .WithFallback(ConfigurationFactory.ParseString(SelfPlaySerializer.Hocon))
            .WithFallback(ClusterSharding.DefaultConfig())
            .WithFallback(ClusterSingleton.DefaultConfig());
}

/// <summary>What a refused payload deserializes to: a harmless value that no actor handles (queries skip it, naming the
/// row; a message ends as a dead letter or unhandled, and <see cref="RefusedPayloadLog"/> names its sender).</summary>
public sealed record RefusedPayload(string Reason);

/// <summary>
/// One warning line per refused message, naming who sent it and to whom: a serializer cannot know the sender, but the
/// refused value is delivered (and dropped) like any message, so it shows up here as a dead letter or unhandled.
/// </summary>
public sealed class RefusedPayloadLog : IExtension
{
    public RefusedPayloadLog(ExtendedActorSystem system)
    {
        var listener = system.SystemActorOf(Props.Create(() => new Listener()), "refused-payload-log");
        system.EventStream.Subscribe(listener, typeof(AllDeadLetters));
        system.EventStream.Subscribe(listener, typeof(UnhandledMessage));
    }

    /// <summary>The refused value, also inside an actor selection (a selection of a missing path is a dead letter whole).</summary>
    static RefusedPayload? Refused(object message) => message switch
    {
        RefusedPayload r => r,
        ActorSelectionMessage { Message: RefusedPayload r } => r,
        _ => null,
    };

    sealed class Listener : ReceiveActor
    {
        public Listener()
        {
            var log = Context.GetLogger();
            Receive<AllDeadLetters>(d => Refused(d.Message) is not null, d =>
                log.Warning("{Reason} (from {Sender} to {Recipient})", Refused(d.Message)!.Reason, d.Sender.Path, d.Recipient.Path));
            Receive<UnhandledMessage>(u => Refused(u.Message) is not null, u =>
                log.Warning("{Reason} (from {Sender} to {Recipient})", Refused(u.Message)!.Reason, u.Sender.Path, u.Recipient.Path));
            ReceiveAny(_ => { });
        }
    }
}

public sealed class RefusedPayloadLogProvider : ExtensionIdProvider<RefusedPayloadLog>
{
    public override RefusedPayloadLog CreateExtension(ExtendedActorSystem system) => new(system);
}

/// <summary>
/// Under Newtonsoft's identifier (1): writes nothing (every type SelfPlay sends or stores has its own serializer, so
/// reaching this is a missing binding and fails loudly), and reads only the Akka sharding events that journals written
/// before the sharding serializers were bound hold (one fixed allow-list, checked on every `$type` before Newtonsoft sees
/// the payload). Anything else is refused with one warning line and becomes a <see cref="RefusedPayload"/>.
/// </summary>
/// <remarks>A string-manifest serializer, so that Akka never resolves a type from a row's or a message's manifest.</remarks>
public sealed class LegacyJsonSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int JsonId = 1;
    readonly NewtonSoftJsonSerializer _json = new(system);

    /// <summary>The constructor Akka calls for "json", which has a serialization-settings section.</summary>
    public LegacyJsonSerializer(ExtendedActorSystem system, Config settings) : this(system) => _ = settings;

    /// <summary>Non-generic types (full name, assembly) that the old journals hold: sharding coordinator and
    /// remember-entities events and states, and the actor-ref surrogate inside them.</summary>
    static readonly HashSet<string> AllowedTypes = new(StringComparer.Ordinal)
    {
        "Akka.Actor.ActorRefBase+Surrogate, Akka",
        "Akka.Actor.IActorRef, Akka",
        "System.String, System.Private.CoreLib",
        "System.Int32, System.Private.CoreLib",
        "System.Int64, System.Private.CoreLib",
        "Akka.Cluster.Sharding.ShardCoordinator+ShardRegionRegistered, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.ShardCoordinator+ShardRegionProxyRegistered, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.ShardCoordinator+ShardRegionTerminated, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.ShardCoordinator+ShardRegionProxyTerminated, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.ShardCoordinator+ShardHomeAllocated, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.ShardCoordinator+ShardHomeDeallocated, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.ShardCoordinator+ShardCoordinatorInitialized, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.ShardCoordinator+CoordinatorState, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.Internal.EventSourcedRememberEntitiesShardStore+EntitiesStarted, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.Internal.EventSourcedRememberEntitiesShardStore+EntitiesStopped, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.Internal.EventSourcedRememberEntitiesShardStore+State, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.Internal.EventSourcedRememberEntitiesCoordinatorStore+MigrationMarker, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.Internal.EventSourcedRememberEntitiesCoordinatorStore+ShardIdAdded, Akka.Cluster.Sharding",
        "Akka.Cluster.Sharding.Internal.EventSourcedRememberEntitiesCoordinatorStore+State, Akka.Cluster.Sharding",
    };

    /// <summary>Generic collections allowed around allowed types (their arguments are checked too).</summary>
    static readonly HashSet<string> AllowedGenerics = new(StringComparer.Ordinal)
    {
        "System.Collections.Immutable.ImmutableHashSet`1, System.Collections.Immutable",
        "System.Collections.Immutable.ImmutableDictionary`2, System.Collections.Immutable",
        "System.Collections.Immutable.ImmutableList`1, System.Collections.Immutable",
        "System.Collections.Generic.List`1, System.Private.CoreLib",
        "System.Collections.Generic.HashSet`1, System.Private.CoreLib",
        "System.Collections.Generic.Dictionary`2, System.Private.CoreLib",
    };

    public override int Identifier => JsonId;

    public override string Manifest(object o) => throw Unbound(o);
    public override byte[] ToBinary(object obj) => throw Unbound(obj);

    static SerializationException Unbound(object o) =>
        new($"no serializer is bound to {o.GetType().FullName}: SelfPlay never writes type-named JSON (bind it to an explicit serializer)");

    public override object FromBinary(byte[] bytes, string manifest)
    {
        var refused = manifest.Length > 0 ? "(a manifest: " + manifest + ")" : RefusedType(bytes);
        if (refused is null) return _json.FromBinary(bytes, typeof(object));
        return new RefusedPayload($"refused a type-named JSON payload ($type '{Truncate(refused)}' is not on the allow-list of old journal rows); nothing was constructed");
    }

    /// <summary>The first `$type` that is not allowed, or null when every one is (a payload that is not JSON is refused).</summary>
    public static string? RefusedType(byte[] bytes)
    {
        JToken root;
        try { root = JToken.Parse(System.Text.Encoding.UTF8.GetString(bytes)); }
        catch (Newtonsoft.Json.JsonException) { return "(not JSON)"; }
        foreach (var property in (root is JContainer container ? container.DescendantsAndSelf() : [root]).OfType<JObject>().SelectMany(o => o.Properties()))
        {
            if (property.Name != "$type") continue;
            var name = property.Value.Type == JTokenType.String ? (string)property.Value! : property.Value.ToString();
            if (!IsAllowed(name)) return name;
        }
        return null;
    }

    /// <summary>Parses a simple-format .NET type name ("Ns.Type`1[[Arg, Asm]], Asm") and checks every part.</summary>
    public static bool IsAllowed(string typeName)
    {
        var i = 0;
        return ParseType(typeName, ref i) && i == typeName.Length;
    }

    static bool ParseType(string s, ref int i)
    {
        var start = i;
        while (i < s.Length && s[i] is not ('[' or ']' or ',')) i++;
        var name = s[start..i].Trim();
        var arguments = new List<bool>();
        if (i + 1 < s.Length && s[i] == '[' && s[i + 1] == '[')
        {
            i++;
            while (true)
            {
                if (i >= s.Length || s[i] != '[') return false;
                i++;
                if (!ParseType(s, ref i) || i >= s.Length || s[i] != ']') return false;
                i++;
                if (i < s.Length && s[i] == ',') { i++; continue; }
                if (i < s.Length && s[i] == ']') { i++; break; }
                return false;
            }
            arguments.Add(true);
        }
        if (i >= s.Length || s[i] != ',') return false;
        i++;
        start = i;
        while (i < s.Length && s[i] is not (']' or ',')) i++;
        var assembly = s[start..i].Trim();
        if (i < s.Length && s[i] == ',') return false; // version, culture or key: never in Akka's simple type names
        var key = $"{name}, {assembly}";
        return arguments.Count > 0 ? AllowedGenerics.Contains(key) : AllowedTypes.Contains(key);
    }

    static string Truncate(string s) => s.Length <= 200 ? s : s[..200] + "...";
}

/// <summary>Base of the guards under identifiers SelfPlay never uses: every payload is refused with one warning line.</summary>
public abstract class RefusingSerializer(ExtendedActorSystem system, string what) : SerializerWithStringManifest(system)
{
    public override string Manifest(object o) => throw new SerializationException($"SelfPlay does not send {what}");
    public override byte[] ToBinary(object obj) => throw new SerializationException($"SelfPlay does not send {what}");

    public override object FromBinary(byte[] bytes, string manifest)
    {
        return new RefusedPayload($"refused {what} (manifest '{(manifest.Length <= 200 ? manifest : manifest[..200])}'): SelfPlay accepts none; nothing was constructed");
    }
}

/// <summary>Under remote deployment's identifier: a peer could otherwise create an actor of any type it names.</summary>
public sealed class RefusedDaemonCreateSerializer(ExtendedActorSystem system) : RefusingSerializer(system, "remote deployment (DaemonMsgCreate)")
{
    public const int DaemonCreateId = 3;
    public override int Identifier => DaemonCreateId;
}

/// <summary>Under the raw protobuf serializer's identifier: it loads the type named in the manifest.</summary>
public sealed class RefusedProtobufSerializer(ExtendedActorSystem system) : RefusingSerializer(system, "raw protobuf messages")
{
    public const int ProtobufId = 2;
    public override int Identifier => ProtobufId;
}
