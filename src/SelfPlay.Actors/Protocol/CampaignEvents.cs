using SelfPlay.Actors.Campaign;

namespace SelfPlay.Actors.Protocol;

// The coordinator's journal (persistence id "campaign|NAME"): enough to resume a stopped campaign where it stopped.
// PolicyPublished (a published policy version) and CampaignFinished (completed) are persisted as they are.
// AtUtc (when it happened) is absent in journals written before it existed: the figures then fall back to this
// coordinator's own clocks.
/// <summary>A new campaign, persisted before its warm-up: the campaign's wall time counts from here.</summary>
public sealed record CampaignStarted(DateTime AtUtc) : ISelfPlayMessage;
public sealed record IterationStarted(int Iteration, int PolicyVersion, int Tasks, DateTime? AtUtc = null) : ISelfPlayMessage;
public sealed record TaskRecorded(int Iteration, string TaskId, int Nodes, bool Solved, bool Failed, DateTime? AtUtc = null) : ISelfPlayMessage;
/// <summary>A task handed to a worker (its full actor path, with uid): a coordinator that restarts or moves keeps the
/// task leased to that worker while it lives, instead of searching it a second time.</summary>
public sealed record TaskLeased(int Iteration, string TaskId, long LeaseId, string Worker) : ISelfPlayMessage;
public sealed record IterationEvaluated(IterationSummary Row) : ISelfPlayMessage;

// Commands to the coordinator.
/// <summary>Starts a new campaign; a coordinator that recovered an unfinished campaign resumes it by itself.</summary>
public sealed record StartCampaign : ISelfPlayMessage { public static readonly StartCampaign Instance = new(); }
/// <summary>Sent by a node's inference actor (as the sender): the coordinator keeps it on the current policy.</summary>
public sealed record RegisterInference : ISelfPlayMessage { public static readonly RegisterInference Instance = new(); }
/// <summary>Sent by a node's critic actor (as the sender) when search.critic is a trained critic: the coordinator keeps it on the current critic.</summary>
public sealed record RegisterCritic : ISelfPlayMessage { public static readonly RegisterCritic Instance = new(); }
/// <summary>The sender gets every CampaignProgress and the CampaignFinished (a `selfplay run` attached to a cluster).</summary>
public sealed record WatchProgress : ISelfPlayMessage { public static readonly WatchProgress Instance = new(); }

// Throughput of an inference actor since the last GetInferenceStats (which resets the counters).
public sealed record GetInferenceStats : ISelfPlayMessage { public static readonly GetInferenceStats Instance = new(); }
/// <param name="Rows">sequences generated, over <paramref name="Batches"/> forward-pass batches of at most <paramref name="MaxRows"/> each</param>
public sealed record InferenceStats(long Batches, long Rows, int MaxRows, long Tokens, double BusySeconds) : ISelfPlayMessage;
