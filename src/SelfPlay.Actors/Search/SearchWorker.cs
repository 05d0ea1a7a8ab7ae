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
public sealed class SearchWorker : ReceiveActor
{
    sealed record SearchDone(SearchTask Task, PreferenceTree? Tree, string? Error, double WallSeconds);
    sealed record Stored(SearchTask Task, StoreTreeAck? Ack, string? Error, bool Solved, double WallSeconds);

    readonly IActorRef _coordinator;
    readonly ILoggingAdapter _log = Context.GetLogger();

    public SearchWorker(IActorRef coordinator, IActorRef replay, CampaignContext context, IStepProposer proposer, INodeEvaluator evaluator,
        IEnvironmentSteps? steps = null, IJudge? judge = null)
    {
        _coordinator = coordinator;
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
            replay.Ask<StoreTreeAck>(new StoreTree(tree), StoreTimeout(context)).ContinueWith(t => t.IsCompletedSuccessfully
                    ? new Stored(done.Task, t.Result, null, tree.Solved, done.WallSeconds)
                    : new Stored(done.Task, null, OneLine(t.Exception), false, done.WallSeconds))
                .PipeTo(Self);
        });
        Receive<Stored>(s => Report(s.Ack is { } ack
            ? new TaskCompleted(s.Task.TaskId, ack.TreeId, s.Task.LeaseId, ack.Nodes, s.Solved, s.WallSeconds)
            : new TaskFailed(s.Task.TaskId, s.Task.LeaseId, $"could not store the tree: {s.Error}", Transient: true)));
        // An idle worker asks again now and then: a coordinator that restarted (or moved to another node) does not
        // know which workers were waiting; a busy worker asks when it reports.
        Receive<AskAgain>(_ =>
        {
            if (_idle) _coordinator.Tell(RequestWork.Instance);
        });
    }

    sealed record AskAgain;

    /// <summary>A tree entity whose recovery fails (the journal is down) stops and drops the command: the store is
    /// then retried after this, not after the long generation timeout.</summary>
    static TimeSpan StoreTimeout(CampaignContext context) => TimeSpan.FromSeconds(Math.Min(20, context.Config.Actors.AskTimeoutSeconds));
    bool _idle = true;
    ICancelable? _askAgain;

    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is not SearchTask task) return base.AroundReceive(receive, message);
        _idle = false;
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
        _idle = true;
        if (outcome is TaskFailed failed) _log.Warning("task {0}: {1}", failed.TaskId, failed.Reason);
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
