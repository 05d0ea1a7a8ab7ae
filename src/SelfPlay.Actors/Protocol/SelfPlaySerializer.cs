using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;

namespace SelfPlay.Actors.Protocol;

/// <summary>
/// Explicit serializer for every SelfPlay message and event under stable, versioned manifests (never CLR type names),
/// so renaming a class never orphans stored events. Trees (the replay's events and the messages that carry them) are
/// written in <see cref="TreeBinary"/>'s compact form ("*.v2"); everything else is System.Text.Json. The JSON trees of
/// earlier versions ("*.v1") are still read, so a journal written before stays readable.
/// </summary>
public sealed class SelfPlaySerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    static readonly Dictionary<Type, string> Manifests = new()
    {
        [typeof(StoreTree)] = "store-tree.v2",
        [typeof(TreeStored)] = "tree-stored.v2",
        [typeof(TreesStored)] = "trees-stored.v2",
        [typeof(StoreTreeAck)] = "store-tree-ack.v1",
        [typeof(GetTree)] = "get-tree.v1",
        [typeof(TreeReply)] = "tree-reply.v2",
        [typeof(TreeBucketSnapshot)] = "tree-bucket-snapshot.v2",
        [typeof(OpenBucket)] = "open-bucket.v1",
        [typeof(BucketOpen)] = "bucket-open.v1",
        [typeof(RequestWork)] = "request-work.v1",
        [typeof(SearchTask)] = "search-task.v1",
        [typeof(TaskCompleted)] = "task-completed.v1",
        [typeof(TaskFailed)] = "task-failed.v1",
        [typeof(LoadPolicy)] = "load-policy.v1",
        [typeof(PolicyLoaded)] = "policy-loaded.v1",
        [typeof(PolicyLoadFailed)] = "policy-load-failed.v1",
        [typeof(ProposeSteps)] = "propose-steps.v1",
        [typeof(StepsProposed)] = "steps-proposed.v1",
        [typeof(ScoreNodes)] = "score-nodes.v1",
        [typeof(NodesScored)] = "nodes-scored.v1",
        [typeof(RunWarmup)] = "run-warmup.v1",
        [typeof(TrainIteration)] = "train-iteration.v1",
        [typeof(PolicyPublished)] = "policy-published.v1",
        [typeof(CampaignProgress)] = "campaign-progress.v1",
        [typeof(CampaignFinished)] = "campaign-finished.v1",
        [typeof(WaitForCompletion)] = "wait-for-completion.v1",
        [typeof(IterationStarted)] = "iteration-started.v1",
        [typeof(CampaignStarted)] = "campaign-started.v1",
        [typeof(TaskRecorded)] = "task-recorded.v1",
        [typeof(TaskLeased)] = "task-leased.v1",
        [typeof(IterationEvaluated)] = "iteration-evaluated.v1",
        [typeof(StartCampaign)] = "start-campaign.v1",
        [typeof(RegisterInference)] = "register-inference.v1",
        [typeof(WatchProgress)] = "watch-progress.v1",
        [typeof(GetInferenceStats)] = "get-inference-stats.v1",
        [typeof(InferenceStats)] = "inference-stats.v1",
        [typeof(ApplySteps)] = "apply-steps.v1",
        [typeof(StepsApplied)] = "steps-applied.v1",
        [typeof(GetInitialState)] = "get-initial-state.v1",
        [typeof(InitialStateReply)] = "initial-state-reply.v1",
        [typeof(VerifyStates)] = "verify-states.v1",
        [typeof(StatesVerified)] = "states-verified.v1",
        [typeof(LoadCritic)] = "load-critic.v1",
        [typeof(CriticLoaded)] = "critic-loaded.v1",
        [typeof(CriticLoadFailed)] = "critic-load-failed.v1",
        [typeof(TrainingFailed)] = "training-failed.v1",
        [typeof(RegisterCritic)] = "register-critic.v1",
    };

    /// <summary>Manifests still read but no longer written: the JSON trees of earlier versions.</summary>
    static readonly Dictionary<string, Type> Legacy = new()
    {
        ["store-tree.v1"] = typeof(StoreTree),
        ["tree-stored.v1"] = typeof(TreeStored),
        ["tree-reply.v1"] = typeof(TreeReply),
    };

    static readonly Dictionary<string, Type> Types = Manifests.ToDictionary(kv => kv.Value, kv => kv.Key).Concat(Legacy).ToDictionary();

    static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public const int Id = 4242;
    public override int Identifier => Id;

    public static IReadOnlyCollection<Type> KnownTypes => Manifests.Keys;

    public override string Manifest(object o) =>
        Manifests.TryGetValue(o.GetType(), out var m) ? m : throw new ArgumentException($"no manifest for {o.GetType()}");

    public override byte[] ToBinary(object obj) => obj switch
    {
        TreeStored e => TreeBinary.Encode(e.Tree),
        StoreTree c => TreeBinary.Encode(c.Tree),
        TreeReply r => TreeReplyBinary(r),
        TreeBucketSnapshot b => TreeBinary.EncodeMany(b.Trees),
        TreesStored e => e.Encoded ?? TreeBinary.EncodeMany(e.Trees),
        _ => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Json),
    };

    public override object FromBinary(byte[] bytes, string manifest)
    {
        switch (manifest)
        {
            case "tree-stored.v2": return new TreeStored(TreeBinary.Decode(bytes, manifest));
            case "store-tree.v2": return new StoreTree(TreeBinary.Decode(bytes, manifest));
            case "tree-bucket-snapshot.v2": return new TreeBucketSnapshot(TreeBinary.DecodeMany(bytes, manifest));
            case "trees-stored.v2": return new TreesStored(TreeBinary.DecodeMany(bytes, manifest));
            case "tree-reply.v2":
                // 0 + the id for "no such tree", else 1 + the tree.
                if (bytes.Length == 0) throw new SerializationException($"empty payload for '{manifest}'");
                if (bytes[0] == 0) return new TreeReply(System.Text.Encoding.UTF8.GetString(bytes, 1, bytes.Length - 1), null);
                var tree = TreeBinary.Decode(bytes[1..], manifest);
                return new TreeReply(tree.TreeId, tree);
        }
        if (!Types.TryGetValue(manifest, out var type)) throw new SerializationException($"unknown manifest '{manifest}'");
        return JsonSerializer.Deserialize(bytes, type, Json) ?? throw new SerializationException($"empty payload for '{manifest}'");
    }

    static byte[] TreeReplyBinary(TreeReply reply) => reply.Tree is null
        ? [0, .. System.Text.Encoding.UTF8.GetBytes(reply.TreeId)]
        : [1, .. TreeBinary.Encode(reply.Tree)];

    /// <summary>HOCON that binds <see cref="ISelfPlayMessage"/> to this serializer.</summary>
    public const string Hocon = """
        akka.actor {
          serializers.selfplay = "SelfPlay.Actors.Protocol.SelfPlaySerializer, SelfPlay.Actors"
          serialization-bindings { "SelfPlay.Actors.Protocol.ISelfPlayMessage, SelfPlay.Actors" = selfplay }
        }
        """;
}
