using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Search;

/// <summary>
/// Pulls a search task from the coordinator, runs one search (as a task piped back, so the mailbox stays
/// responsive), stores the tree in the replay, reports completion and pulls the next task.
/// </summary>
public sealed class SearchWorker : ReceiveActor, IWithTimers
{
    sealed record SearchDone(SearchTask Task, PreferenceTree? Tree, string? Error, double WallSeconds);
    sealed record Stored(SearchTask Task, PreferenceTree Tree, StoreTreeAck? Ack, string? Error, int Attempt, double WallSeconds);
    sealed record StoreAgain(SearchTask Task, PreferenceTree Tree, int Attempt, double WallSeconds);

    /// <summary>A store that fails is retried with the same tree (0.5, 1, 2, then every 4 s) before the task is reported
    /// as failed: a replay that moves or a database that blinks costs a wait, not a second search. Eight attempts ride
    /// out a replay node's failover under load (downing, shard hand-over, bucket recovery: past the 5 attempts' ~20 s a
    /// loaded fault test searched a task twice) and stay well inside the default 300 s lease.</summary>
    const int StoreAttempts = 8;
    static readonly TimeSpan MaxStoreDelay = TimeSpan.FromSeconds(4);

    public ITimerScheduler Timers { get; set; } = null!;

    readonly IActorRef _coordinator, _replay;
    readonly TimeSpan _storeTimeout;
    readonly ILoggingAdapter _log = Context.GetLogger();

    public SearchWorker(IActorRef coordinator, IActorRef replay, CampaignContext context, IStepProposer proposer, INodeEvaluator evaluator,
        IEnvironmentSteps? steps = null, IJudge? judge = null)
    {
        (_coordinator, _replay, _storeTimeout) = (coordinator, replay, StoreTimeout(context));
        Receive<SearchTask>(task =>
        {
            var clock = Stopwatch.StartNew();
            // Started on the thread pool so that an exception thrown before the search's first await (an environment
            // whose initial state throws) faults the task and fails it, instead of crashing this worker.
            Task.Run(() => SearchAlgorithms.Create(context.Config.Search, context.Setup.Environment, proposer, evaluator,
                    context.Config.Environment.MaxSteps, task.PolicyVersion, task.Seed, steps, judge)
                .SearchAsync(task.TreeId, new EnvTask(task.TaskId, task.Input))).ContinueWith(t => t.IsCompletedSuccessfully
                    ? new SearchDone(task, t.Result, null, clock.Elapsed.TotalSeconds)
                    : new SearchDone(task, null, OneLine(t.Exception), clock.Elapsed.TotalSeconds))
                .PipeTo(Self);
        });
        Receive<SearchDone>(done =>
        {
            if (done.Tree is not { } tree)
            {
                Report(new TaskFailed(done.Task.TaskId, done.Task.LeaseId, $"search failed: {done.Error}"));
                return;
            }
            tree.Campaign = context.Config.Name;
            tree.Iteration = done.Task.Iteration;
            Store(new StoreAgain(done.Task, tree, 1, done.WallSeconds));
        });
        Receive<StoreAgain>(Store);
        Receive<Stored>(s =>
        {
            if (s.Ack is null && s.Attempt < StoreAttempts)
            {
                var delay = TimeSpan.FromSeconds(Math.Min(MaxStoreDelay.TotalSeconds, 0.5 * Math.Pow(2, s.Attempt - 1)));
                _log.Warning("task {TaskId}: store attempt {Attempt} failed, storing again in {DelaySeconds}s: {Error}", s.Task.TaskId, s.Attempt, delay.TotalSeconds, s.Error);
                Timers.StartSingleTimer("store", new StoreAgain(s.Task, s.Tree, s.Attempt + 1, s.WallSeconds), delay);
                return;
            }
            Report(s.Ack is { } ack
                ? new TaskCompleted(s.Task.TaskId, ack.TreeId, s.Task.LeaseId, ack.Nodes, s.Tree.Solved, s.WallSeconds)
                : new TaskFailed(s.Task.TaskId, s.Task.LeaseId, $"could not store the tree: {s.Error}", Transient: true));
        });
        // An idle worker asks again now and then: a coordinator that restarted (or moved to another node) does not
        // know which workers were waiting; a busy worker asks when it reports. It repeats its last outcome too (the
        // coordinator ignores a repeat): one sent to a coordinator that died before journaling it is not lost, and
        // the task is not searched again.
        Receive<AskAgain>(_ =>
        {
            if (!_idle) return;
            if (_lastOutcome is not null) _coordinator.Tell(_lastOutcome);
            _coordinator.Tell(RequestWork.Instance);
        });
    }

    sealed record AskAgain;

    void Store(StoreAgain s) =>
        _replay.Ask<StoreTreeAck>(new StoreTree(s.Tree), _storeTimeout).ContinueWith(t => t.IsCompletedSuccessfully
                ? new Stored(s.Task, s.Tree, t.Result, null, s.Attempt, s.WallSeconds)
                : new Stored(s.Task, s.Tree, null, OneLine(t.Exception), s.Attempt, s.WallSeconds))
            .PipeTo(Self);

    /// <summary>A replay bucket whose recovery fails (the journal is down) stops and drops the command (a failed write
    /// is answered at once): the store is then tried again after this, not after the long generation timeout.</summary>
    static TimeSpan StoreTimeout(CampaignContext context) => TimeSpan.FromSeconds(Math.Min(10, context.Config.Actors.AskTimeoutSeconds));
    bool _idle = true;
    object? _lastOutcome;
    ICancelable? _askAgain;

    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is not SearchTask task) return base.AroundReceive(receive, message);
        (_idle, _lastOutcome) = (false, null);
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception e)
        {
            // A search that fails before its first await (an environment whose initial state throws) fails its task;
            // letting it escape would restart this worker and leave the task leased until the lease expires.
            Report(new TaskFailed(task.TaskId, task.LeaseId, $"search failed: {OneLine(e)}"));
            return true;
        }
    }

    void Report(object outcome)
    {
        (_idle, _lastOutcome) = (true, outcome);
        if (outcome is TaskFailed failed) _log.Warning("task {TaskId}: {Reason}", failed.TaskId, failed.Reason);
        _coordinator.Tell(outcome);
        _coordinator.Tell(RequestWork.Instance);
    }

    protected override void PreStart()
    {
        _coordinator.Tell(RequestWork.Instance);
        _askAgain = Context.System.Scheduler.ScheduleTellRepeatedlyCancelable(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5), Self, new AskAgain(), Self);
    }

    protected override void PostStop() => _askAgain?.Cancel();

    static string OneLine(Exception? e)
    {
        var inner = e is AggregateException a ? a.Flatten().InnerException ?? a : e;
        return inner is null ? "unknown error" : $"{inner.GetType().Name}: {inner.Message.ReplaceLineEndings(" ")}";
    }
}
