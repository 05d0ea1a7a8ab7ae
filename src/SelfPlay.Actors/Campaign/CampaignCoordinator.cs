using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Inference;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// The campaign state machine: warm-up, then N iterations of (search all tasks -> train -> publish -> evaluate).
/// Search work is pulled by workers under leases; a task whose lease expires is handed out again, and because
/// tree ids are deterministic a re-run replaces the earlier tree instead of adding one.
/// </summary>
public sealed class CampaignCoordinator : ReceiveActor, IWithTimers
{
    sealed record Begin;
    sealed record LeaseTick;
    sealed record Evaluated(EvalResult? Result, double Seconds);
    sealed record Lease(SearchTask Task, IActorRef Worker, DateTime Deadline);

    static readonly TimeSpan LongOperation = TimeSpan.FromDays(1);
    const int MaxAttempts = 3;

    readonly CampaignContext _context;
    readonly IActorRef _learner, _inference;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly List<IterationSummary> _rows = [];
    readonly List<IActorRef> _waiters = [];
    readonly Queue<SearchTask> _pending = new();
    readonly Dictionary<string, Lease> _leased = [];
    readonly HashSet<string> _done = [];
    readonly Dictionary<string, int> _attempts = [];
    readonly LinkedList<IActorRef> _idleWorkers = new();
    readonly Stopwatch _campaignClock = Stopwatch.StartNew();
    Stopwatch _phaseClock = new();
    int _iteration, _taskCount, _nodes, _solvedTrees, _failedTasks, _policyVersion;
    long _nextLease;
    double _searchSeconds, _trainSeconds;
    PolicyPublished? _published;
    CampaignFinished? _finished;

    public ITimerScheduler Timers { get; set; } = null!;

    public CampaignCoordinator(CampaignContext context, IActorRef learner, IActorRef inference)
    {
        (_context, _learner, _inference) = (context, learner, inference);

        Receive<Begin>(_ =>
        {
            _phaseClock = Stopwatch.StartNew();
            _log.Info("campaign {0}: warm-up", context.Config.Name);
            _learner.Ask<PolicyPublished>(RunWarmup.Instance, LongOperation).PipeTo(Self);
        });
        Receive<PolicyPublished>(OnPublished);
        Receive<PolicyLoaded>(_ => Evaluate());
        Receive<Evaluated>(OnEvaluated);

        Receive<RequestWork>(_ =>
        {
            if (!_idleWorkers.Contains(Sender)) _idleWorkers.AddLast(Sender);
            Dispatch();
        });
        Receive<TaskCompleted>(OnCompleted);
        Receive<TaskFailed>(OnFailed);
        Receive<LeaseTick>(_ => ExpireLeases());

        Receive<WaitForCompletion>(_ =>
        {
            if (_finished is not null) Sender.Tell(_finished);
            else _waiters.Add(Sender);
        });
        Receive<Status.Failure>(f => Finish("failed", f.Cause.GetBaseException().Message.ReplaceLineEndings(" ")));
    }

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("leases", new LeaseTick(), TimeSpan.FromSeconds(1));
        Self.Tell(new Begin());
    }

    void OnPublished(PolicyPublished published)
    {
        _published = published;
        _policyVersion = published.Version;
        _trainSeconds = published.Report.WallSeconds;
        _log.Info("policy v{0} published ({1} examples, loss {2:F4} -> {3:F4})", published.Version, published.Report.Examples,
            published.Report.FirstLoss, published.Report.LastLoss);
        _inference.Ask<PolicyLoaded>(new LoadPolicy(published.Version, published.Directory, published.Sha256), _context.AskTimeout).PipeTo(Self);
    }

    void Evaluate()
    {
        if (!_context.Config.Eval.Greedy)
        {
            Self.Tell(new Evaluated(null, 0));
            return;
        }
        Publish("eval", 0, 1);
        var clock = Stopwatch.StartNew();
        var proposer = new ActorStepProposer(_inference, _context.AskTimeout);
        Evaluation.GreedyAsync(_context.Setup.Environment, _context.Setup.HeldOut, proposer, _context.Config.Environment.MaxSteps)
            .ContinueWith(t => t.IsCompletedSuccessfully
                ? (object)new Evaluated(t.Result, clock.Elapsed.TotalSeconds)
                : new Status.Failure(t.Exception?.GetBaseException() ?? new Exception("evaluation failed")))
            .PipeTo(Self);
    }

    void OnEvaluated(Evaluated e)
    {
        var report = _published!.Report;
        var held = e.Result is { } r ? new HeldOutResult(r.Solved, r.Total, Math.Round(r.Rate, 4)) : null;
        _rows.Add(new IterationSummary(_iteration, _iteration == 0 ? "sft" : "selfplay", _policyVersion,
            _iteration == 0 ? 0 : _taskCount, report.Pairs, held, Math.Round(_phaseClock.Elapsed.TotalSeconds, 1),
            Math.Round(_searchSeconds, 1), Math.Round(_trainSeconds, 1), Math.Round(e.Seconds, 1), _nodes, _solvedTrees, _failedTasks,
            Finite(report.FirstLoss), Finite(report.LastLoss), Finite(report.RewardAccuracy), report.Learner));
        _log.Info("iteration {0}: held-out {1}", _iteration, held is null ? "not evaluated" : $"{held.Solved}/{held.Total}");
        WriteSummary("running", null);
        if (_iteration < _context.Config.Iterations.Count) StartIteration(_iteration + 1);
        else Finish("completed", null);
    }

    static double? Finite(double x) => double.IsFinite(x) ? Math.Round(x, 5) : null;

    void StartIteration(int iteration)
    {
        _iteration = iteration;
        _phaseClock = Stopwatch.StartNew();
        (_nodes, _solvedTrees, _failedTasks, _searchSeconds, _trainSeconds) = (0, 0, 0, 0, 0);
        _done.Clear();
        _attempts.Clear();
        var config = _context.Config;
        var train = _context.Setup.Train.ToArray();
        new Random(unchecked(config.Seed * 7919 + iteration)).Shuffle(train);
        _taskCount = config.Iterations.Trees;
        for (var k = 0; k < _taskCount; k++)
        {
            var task = train[k % train.Length];
            var taskId = k < train.Length ? task.Id : $"{task.Id}-{k / train.Length}";
            _pending.Enqueue(new SearchTask(taskId, PreferenceTree.MakeId(config.Name, iteration, taskId), iteration, task.Input, 0,
                _policyVersion, Seeds.Mix(config.Seed, iteration, k)));
        }
        _log.Info("iteration {0}: {1} search tasks", iteration, _taskCount);
        Publish("search", 0, _taskCount);
        Dispatch();
    }

    void Dispatch()
    {
        while (_pending.Count > 0 && _idleWorkers.First is { } node)
        {
            _idleWorkers.RemoveFirst();
            var task = _pending.Dequeue() with { LeaseId = ++_nextLease };
            _leased[task.TaskId] = new Lease(task, node.Value, DateTime.UtcNow.AddSeconds(_context.Config.Actors.LeaseSeconds));
            node.Value.Tell(task);
        }
    }

    void OnCompleted(TaskCompleted c)
    {
        if (!_done.Add(c.TaskId)) return; // a late duplicate of a re-issued task: its tree replaced the same id
        _leased.Remove(c.TaskId);
        _nodes += c.Nodes;
        if (c.Solved) _solvedTrees++;
        AfterTask();
    }

    void OnFailed(TaskFailed f)
    {
        if (_done.Contains(f.TaskId) || !_leased.TryGetValue(f.TaskId, out var lease) || lease.Task.LeaseId != f.LeaseId) return;
        _leased.Remove(f.TaskId);
        var attempts = _attempts[f.TaskId] = _attempts.GetValueOrDefault(f.TaskId) + 1;
        if (attempts < MaxAttempts)
        {
            _pending.Enqueue(lease.Task);
            Dispatch();
            return;
        }
        _log.Warning("task {0} failed {1} times, skipped: {2}", f.TaskId, attempts, f.Reason);
        _done.Add(f.TaskId);
        _failedTasks++;
        AfterTask();
    }

    void ExpireLeases()
    {
        var now = DateTime.UtcNow;
        foreach (var lease in _leased.Values.Where(l => l.Deadline < now).ToList())
        {
            _log.Warning("lease of task {0} expired (worker {1}); handing it out again", lease.Task.TaskId, lease.Worker.Path);
            _leased.Remove(lease.Task.TaskId);
            _idleWorkers.Remove(lease.Worker);
            _pending.Enqueue(lease.Task);
        }
        Dispatch();
    }

    void AfterTask()
    {
        Publish("search", _done.Count, _taskCount);
        if (_done.Count < _taskCount) return;
        _searchSeconds = _phaseClock.Elapsed.TotalSeconds;
        _log.Info("iteration {0}: search done, {1} trees, {2} solved", _iteration, _done.Count - _failedTasks, _solvedTrees);
        _learner.Ask<PolicyPublished>(new TrainIteration(_iteration), LongOperation).PipeTo(Self);
    }

    void Publish(string phase, int done, int total) =>
        Context.System.EventStream.Publish(new CampaignProgress(phase, _iteration, done, total));

    void WriteSummary(string status, string? error) =>
        new CampaignSummary(_context.Config.Name, _context.Setup.Environment.Name, status, _rows, error,
            Math.Round(_campaignClock.Elapsed.TotalSeconds, 1)).Write(_context.RunDir);

    void Finish(string status, string? error)
    {
        if (_finished is not null) return;
        if (error is not null) _log.Error("campaign failed: {0}", error);
        WriteSummary(status, error);
        _finished = new CampaignFinished(status, error);
        Context.System.EventStream.Publish(_finished);
        foreach (var waiter in _waiters) waiter.Tell(_finished);
        _waiters.Clear();
        Timers.CancelAll();
    }
}
