using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Protocol;

/// <summary>Marker for every message and persisted event; all are bound to <see cref="SelfPlaySerializer"/>.</summary>
public interface ISelfPlayMessage;

// Replay (one event-sourced entity per tree).
public sealed record StoreTree(PreferenceTree Tree) : ISelfPlayMessage;
/// <summary>The event of one tree, as the per-tree entities of journals written before buckets persisted it (still read).</summary>
public sealed record TreeStored(PreferenceTree Tree) : ISelfPlayMessage;
/// <summary>The event of a replay bucket: the trees of one write, in the order they were stored (a later one replaces an earlier one of the same id).</summary>
public sealed record TreesStored(IReadOnlyList<PreferenceTree> Trees) : ISelfPlayMessage
{
    /// <summary>The event's serialized form when its writer encoded it already (what the serializer then returns).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public byte[]? Encoded { get; init; }
}
public sealed record StoreTreeAck(string TreeId, int Nodes) : ISelfPlayMessage;
public sealed record GetTree(string TreeId) : ISelfPlayMessage;
public sealed record TreeReply(string TreeId, PreferenceTree? Tree) : ISelfPlayMessage;
/// <summary>Starts a replay bucket (<see cref="Replay.TreeBucket.BucketsOfIteration"/>) before its first tree: answered
/// with <see cref="BucketOpen"/> once it has recovered.</summary>
public sealed record OpenBucket(string BucketId) : ISelfPlayMessage;
public sealed record BucketOpen(string BucketId, int Trees) : ISelfPlayMessage;
/// <summary>A replay bucket's snapshot: the newest version of each of its trees.</summary>
public sealed record TreeBucketSnapshot(IReadOnlyList<PreferenceTree> Trees) : ISelfPlayMessage;

// Work distribution (pull-based, with leases).
public sealed record RequestWork : ISelfPlayMessage { public static readonly RequestWork Instance = new(); }
public sealed record SearchTask(string TaskId, string TreeId, int Iteration, string Input, long LeaseId, int PolicyVersion, long Seed) : ISelfPlayMessage;
public sealed record TaskCompleted(string TaskId, string TreeId, long LeaseId, int Nodes, bool Solved, double WallSeconds) : ISelfPlayMessage;
/// <param name="Transient">an infrastructure failure (the journal did not take the tree): retried until it works, never given up</param>
public sealed record TaskFailed(string TaskId, long LeaseId, string Reason, bool Transient = false) : ISelfPlayMessage;

// Inference.
public sealed record LoadPolicy(int Version, string Directory, string Sha256) : ISelfPlayMessage;
public sealed record PolicyLoaded(int Version) : ISelfPlayMessage;
/// <summary>An inference actor could not load policy vN (a missing or corrupt folder, a server that refused the adapter).
/// A failure is a message of its own, so the coordinator knows what failed from its type, not from who sent it.</summary>
public sealed record PolicyLoadFailed(int Version, string Reason) : ISelfPlayMessage;
public sealed record ProposeSteps(IReadOnlyList<ProposalRequest> Requests) : ISelfPlayMessage;
public sealed record StepsProposed(IReadOnlyList<IReadOnlyList<ProposedStep>> Steps) : ISelfPlayMessage;

// Critic.
public sealed record ScoreNodes(string TaskId, string TaskInput, IReadOnlyList<NodeToScore> Nodes) : ISelfPlayMessage;
public sealed record NodesScored(IReadOnlyList<double> Values) : ISelfPlayMessage;
/// <summary>A trained critic version for the critic actors (search.critic = value | prm); they load and verify it.</summary>
public sealed record LoadCritic(int Version, string Directory, string Sha256) : ISelfPlayMessage;
public sealed record CriticLoaded(int Version) : ISelfPlayMessage;
public sealed record CriticLoadFailed(int Version, string Reason) : ISelfPlayMessage;

// Learner.
public sealed record RunWarmup : ISelfPlayMessage { public static readonly RunWarmup Instance = new(); }
public sealed record TrainIteration(int Iteration) : ISelfPlayMessage;
/// <param name="Critic">the critic trained in the same iteration (search.critic = value | prm), published with the policy</param>
/// <summary>The learner's answer to RunWarmup or TrainIteration when the work failed (its dataset query, a checkpoint
/// write, a log-prob parity check); the coordinator retries a few times unless <see cref="Permanent"/>.</summary>
public sealed record TrainingFailed(string Reason, bool Permanent = false) : ISelfPlayMessage;
public sealed record PolicyPublished(int Version, string Directory, string Sha256, TrainingReport Report, CriticReport? Critic = null) : ISelfPlayMessage;
/// <summary>A trained critic checkpoint (folder and sha256, as for policies) and how its training went: losses of the
/// critic's kind, held-out = the examples of held-out trees, before and after training and for the constant predictor
/// (the training targets' mean), which a useful critic beats.</summary>
public sealed record CriticReport(int Version, string Kind, string Directory, string Sha256, int Examples, int HeldOutExamples,
    double FirstLoss, double LastLoss, double HeldOutLossBefore, double HeldOutLossAfter, double HeldOutLossConstant, double WallSeconds);
public sealed record TrainingReport(int Examples, int Pairs, double FirstLoss, double LastLoss, double RewardAccuracy, double WallSeconds,
    SelfPlay.Models.Training.LearnerDiagnostics? Learner = null, SelfPlay.Core.Preferences.PairReport? PairDiagnostics = null,
    SelfPlay.Models.Training.LogProbParity? Parity = null);

// Campaign progress, published on the event stream for whoever shows it.
public sealed record CampaignProgress(string Phase, int Iteration, int Done, int Total) : ISelfPlayMessage;
public sealed record CampaignFinished(string Status, string? Error) : ISelfPlayMessage;
public sealed record WaitForCompletion : ISelfPlayMessage { public static readonly WaitForCompletion Instance = new(); }
