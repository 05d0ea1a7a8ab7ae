using System.Collections.Immutable;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// What the journal says about a campaign, changed only by <see cref="Apply"/>: the coordinator recovers it by applying
/// its journal's events in order and keeps it current by applying each event it persists. The decisions (a command in,
/// the events to persist out: <c>Decide</c>, <see cref="NextIteration"/>, <see cref="AfterLoad"/>) read it too. Pure: no
/// actor, no clock (the time is passed in).
/// </summary>
/// <param name="StartedUtc">when the campaign started (null in journals written before it was kept)</param>
/// <param name="Iteration">the iteration being searched or trained (the newest IterationStarted, or the newest published version)</param>
/// <param name="TaskCount">the current iteration's tasks</param>
/// <param name="Done">the current iteration's tasks with a recorded outcome (completed or given up)</param>
/// <param name="JournaledLeases">the current iteration's leases without an outcome yet, by task, one per worker: what a
/// restarted or moved coordinator leaves with their workers (<see cref="ApplyRecovered"/> keeps them, live leases are the actor's)</param>
/// <param name="LastLeaseId">the highest lease id in the journal: new leases count on from it</param>
public sealed record CampaignState(
    DateTime? StartedUtc = null,
    int Iteration = 0,
    int TaskCount = 0,
    DateTime? IterationStartedUtc = null,
    DateTime? LastTaskUtc = null,
    ImmutableHashSet<string>? Done = null,
    int Nodes = 0,
    int SolvedTrees = 0,
    int FailedTasks = 0,
    PolicyPublished? Published = null,
    ImmutableList<IterationSummary>? Rows = null,
    ImmutableDictionary<string, TaskLeased>? JournaledLeases = null,
    long LastLeaseId = 0,
    CampaignFinished? Finished = null)
{
    public static readonly CampaignState Empty = new();

    public ImmutableHashSet<string> DoneTasks => Done ?? [];
    public ImmutableList<IterationSummary> IterationRows => Rows ?? [];
    public ImmutableDictionary<string, TaskLeased> Leases => JournaledLeases ?? ImmutableDictionary<string, TaskLeased>.Empty;

    /// <summary>The newest published policy version; -1 before the warm-up's.</summary>
    public int PolicyVersion => Published?.Version ?? -1;

    /// <summary>Every task of the current iteration has an outcome.</summary>
    public bool SearchDone => DoneTasks.Count >= TaskCount;

    /// <summary>Every task of the current iteration failed (nothing to train on).</summary>
    public bool AllFailed => TaskCount > 0 && FailedTasks >= TaskCount;

    /// <summary>Whether policy vN's held-out evaluation is recorded.</summary>
    public bool Evaluated(int version) => IterationRows.Any(r => r.Iteration == version);

    /// <summary>The state after one event (an unknown event changes nothing).</summary>
    public CampaignState Apply(object e) => e switch
    {
        CampaignStarted s => this with { StartedUtc = s.AtUtc },
        // A new iteration (or the same one searched again): its outcomes and leases start empty.
        IterationStarted s => this with
        {
            Iteration = s.Iteration, TaskCount = s.Tasks, IterationStartedUtc = s.AtUtc, LastTaskUtc = null,
            Done = [], Nodes = 0, SolvedTrees = 0, FailedTasks = 0, JournaledLeases = null,
        },
        TaskRecorded t => ApplyTask(t),
        TaskLeased l => ApplyLeased(l),
        PolicyPublished p => this with { Published = p, Iteration = Math.Max(Iteration, p.Version) },
        IterationEvaluated v => this with { Rows = IterationRows.Add(v.Row) },
        CampaignFinished f => this with { Finished = f },
        _ => this,
    };

    CampaignState ApplyTask(TaskRecorded e)
    {
        if (e.Iteration != Iteration) return this; // a late outcome of an earlier iteration
        var leases = Leases.Remove(e.TaskId);
        if (DoneTasks.Contains(e.TaskId)) return this with { JournaledLeases = leases }; // a repeat: counted once
        return this with
        {
            JournaledLeases = leases,
            Done = DoneTasks.Add(e.TaskId),
            LastTaskUtc = e.AtUtc ?? LastTaskUtc,
            FailedTasks = FailedTasks + (e.Failed ? 1 : 0),
            Nodes = Nodes + (e.Failed ? 0 : e.Nodes),
            SolvedTrees = SolvedTrees + (!e.Failed && e.Solved ? 1 : 0),
        };
    }

    /// <summary>A worker runs one task at a time: its newest lease replaces any older one it held.</summary>
    CampaignState ApplyLeased(TaskLeased e)
    {
        var state = this with { LastLeaseId = Math.Max(LastLeaseId, e.LeaseId) };
        if (e.Iteration != Iteration || DoneTasks.Contains(e.TaskId)) return state;
        var leases = Leases.RemoveRange(Leases.Values.Where(l => l.Worker == e.Worker).Select(l => l.TaskId)).SetItem(e.TaskId, e);
        return state with { JournaledLeases = leases };
    }

    // Decisions: what a command makes, as events for the coordinator to persist (it then applies them). Pure, like Apply.

    /// <summary>Where the campaign goes once this node's inference holds the newest policy: its evaluation when not
    /// recorded, else the search of an iteration started with it, else the next iteration.</summary>
    public CampaignStep AfterLoad() =>
        !Evaluated(PolicyVersion) ? CampaignStep.Evaluate : Iteration > PolicyVersion ? CampaignStep.Search : CampaignStep.NextIteration;

    /// <summary>After the newest policy's evaluation: the next iteration's start, or after the last one the campaign's end.</summary>
    public object NextIteration(int iterations, int tasks, DateTime now) =>
        PolicyVersion >= iterations ? new CampaignFinished("completed", null) : new IterationStarted(PolicyVersion + 1, PolicyVersion, tasks, now);

    /// <summary>An iteration whose every task failed is searched whole again when the campaign resumes (the run had stopped there).</summary>
    public IterationStarted? SearchAgain(DateTime now) => SearchDone && AllFailed ? new IterationStarted(Iteration, PolicyVersion, TaskCount, now) : null;

    /// <summary>A worker's tree: recorded, unless the task has an outcome already (a re-issued task finishing twice) or the
    /// tree is not this iteration's (a late answer from an earlier one); either way its tree replaced the tree of its id.</summary>
    public TaskRecorded? Decide(TaskCompleted c, string campaign, DateTime now) =>
        DoneTasks.Contains(c.TaskId) || c.TreeId != SelfPlay.Core.Trees.PreferenceTree.MakeId(campaign, Iteration, c.TaskId)
            ? null : new TaskRecorded(Iteration, c.TaskId, c.Nodes, c.Solved, false, now);

    /// <summary>A failed attempt (the <paramref name="attempts"/>th): retried after a backoff of 1, 2, 4 ... at most 10 s, or
    /// given up (recorded failed) at <paramref name="maxAttempts"/>. A transient failure (the journal is down) is retried
    /// until the journal is back: a tree is never given up for it.</summary>
    public (TimeSpan? RetryAfter, TaskRecorded? GivenUp) Decide(TaskFailed f, int attempts, int maxAttempts, DateTime now) =>
        attempts < maxAttempts || f.Transient
            ? (TimeSpan.FromSeconds(Math.Min(10, Math.Pow(2, attempts - 1))), null)
            : (null, new TaskRecorded(Iteration, f.TaskId, 0, false, true, now));

    /// <summary>The summary row of the newest policy's evaluated iteration (the warm-up's for v0).</summary>
    public IterationSummary Row(HeldOutResult? heldOut, double wallSeconds, double searchSeconds, double evalSeconds, RoleThroughput? throughput)
    {
        var report = Published?.Report ?? throw new InvalidOperationException("no policy is published: nothing was evaluated");
        var warmup = PolicyVersion == 0;
        return new IterationSummary(PolicyVersion, warmup ? "sft" : "selfplay", PolicyVersion, warmup ? 0 : TaskCount, report.Pairs, heldOut,
            Math.Round(wallSeconds, 1), Math.Round(searchSeconds, 1), Math.Round(report.WallSeconds, 1), Math.Round(evalSeconds, 1), Nodes, SolvedTrees,
            FailedTasks, Finite(report.FirstLoss), Finite(report.LastLoss), Finite(report.RewardAccuracy), report.Learner,
            warmup ? null : throughput, Published.Critic, report.PairDiagnostics, report.Parity);
    }

    static double? Finite(double x) => double.IsFinite(x) ? Math.Round(x, 5) : null;

    /// <summary>The journaled leases are taken up (the coordinator now holds them, or queued their tasks again).</summary>
    public CampaignState WithoutJournaledLeases() => this with { JournaledLeases = null };

    /// <summary>The state a journal's events give, in order.</summary>
    public static CampaignState Recover(IEnumerable<object> events) => events.Aggregate(Empty, (state, e) => state.Apply(e));
}

/// <summary>The campaign's next phase once the newest policy is loaded.</summary>
public enum CampaignStep { Evaluate, Search, NextIteration }
