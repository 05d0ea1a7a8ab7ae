using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;

namespace SelfPlay.Actors.Campaign;

/// <summary>Phase search: every task of the iteration is leased to a worker whose node holds the current policy,
/// until each has an outcome (a tree, or given up after its retries); then phase train.</summary>
public sealed partial class CampaignCoordinator
{
    sealed record LeaseTick;
    sealed record Reissue(SearchTask Task);

    /// <summary>Queues the current iteration's tasks without a recorded outcome (all of a new iteration's).</summary>
    void ResumeIteration()
    {
        if (_state.SearchAgain(DateTime.UtcNow) is { } again)
        {
            // The run stopped because every task had failed (StartTraining): search them all again.
            Persist(again, e =>
            {
                Apply(e);
                _log.Info("iteration {Iteration}: every task had failed; searching all {Tasks} again", e.Iteration, e.Tasks);
                ResumeIteration();
            });
            return;
        }
        Become(() =>
        {
            Command<TaskCompleted>(OnCompleted);
            Command<TaskFailed>(OnFailed);
            Command<Reissue>(r =>
            {
                if (r.Task.Iteration != _state.Iteration || _state.DoneTasks.Contains(r.Task.TaskId)) return;
                _leases.Enqueue(r.Task);
                Dispatch();
            });
            Always();
        });
        _timings.StartSearch();
        OpenReplayBuckets(_state.Iteration);
        foreach (var inference in _fleet.Inference) inference.Tell(GetInferenceStats.Instance); // resets their counters
        var kept = 0;
        foreach (var task in CampaignTasks.Of(_context.Config, _context.Setup.Train, _state.Iteration, _state.TaskCount, _state.PolicyVersion).Where(t => !_state.DoneTasks.Contains(t.TaskId)))
        {
            // A task the journal says is leased to a worker that is still a member stays its own: that worker reports it.
            if (_state.Leases.TryGetValue(task.TaskId, out var leased) && LiveMembers.Resolve(Context.System, leased.Worker) is { } worker)
            {
                _leases.Hold(task with { LeaseId = leased.LeaseId }, worker, DateTime.UtcNow);
                if (_leases.Know(worker)) Context.Watch(worker); // gone later: the task is handed out again at once
                kept++;
            }
            else _leases.Enqueue(task);
        }
        if (kept > 0) _log.Info("iteration {Iteration}: {Leased} tasks still leased to live workers (from the journal), {Queued} queued", _state.Iteration, kept, _leases.PendingCount);
        _state = _state.WithoutJournaledLeases();
        Publish("search", _state.DoneTasks.Count, _state.TaskCount);
        if (_state.SearchDone) StartTraining();
        else
        {
            // The outcomes that came before the search count first (those of journaled leases), then the queue is handed out.
            Stash.UnstashAll();
            Self.Tell(new LeaseTick());
        }
    }

    /// <summary>Starts the iteration's replay buckets while its first searches run (<see cref="TreeBucket.OpenIterationAsync"/>):
    /// in a fresh process their shards' allocation and start cost more than the iteration's first trees' writes. Not
    /// waited on: a bucket not open yet starts with its first tree, as before.</summary>
    void OpenReplayBuckets(int iteration)
    {
        if (_replay is null) return;
        var (log, clock) = (_log, System.Diagnostics.Stopwatch.StartNew());
        TreeBucket.OpenIterationAsync(_replay, _context.Config.Name, iteration, _context.AskTimeout).ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
                log.Info("iteration {Iteration}: {Buckets} replay buckets open in {Milliseconds:F0} ms", iteration, t.Result.Length, clock.Elapsed.TotalMilliseconds);
            else
                log.Warning("iteration {Iteration}: replay buckets not opened ahead ({Error}); each starts with its first tree", iteration,
                    t.Exception?.GetBaseException().Message);
        }, TaskScheduler.Default);
    }

    void Dispatch()
    {
        SelfPlayMetrics.Queue(_leases.PendingCount, _leases.LeasedCount);
        var first = _leases.LeasedCount == 0 && _state.DoneTasks.Count == 0;
        var handedOut = _leases.Dispatch(worker => _fleet.Ready(worker.Path.Address, _state.Published), DateTime.UtcNow);
        if (handedOut.Count == 0) return;
        if (first) _log.Info("iteration {Iteration}: first task leased", _state.Iteration);
        // Each worker gets its task once the lease is journaled (the leases of one dispatch share one write).
        var events = handedOut.Select(l => new TaskLeased(_state.Iteration, l.Task.TaskId, l.Task.LeaseId,
            Akka.Serialization.Serialization.SerializedActorPath(l.Worker))).ToList();
        PersistAllAsync(events, e =>
        {
            Apply(e);
            var lease = handedOut.First(l => l.Task.LeaseId == e.LeaseId);
            lease.Worker.Tell(lease.Task);
        });
    }

    void OnCompleted(TaskCompleted c)
    {
        if (_state.Decide(c, _context.Config.Name, DateTime.UtcNow) is not { } recorded) return; // a late answer changes nothing
        Persist(recorded, e =>
        {
            if (_state.DoneTasks.Contains(e.TaskId)) return;
            Apply(e);
            _leases.Complete(e.TaskId);
            SelfPlayMetrics.Trees.Add(1);
            SelfPlayMetrics.Nodes.Add(e.Nodes);
            AfterTask();
        });
    }

    void OnFailed(TaskFailed f)
    {
        if (_state.DoneTasks.Contains(f.TaskId) || _leases.Fail(f.TaskId, f.LeaseId) is not { } failure) return;
        var (task, attempts) = failure;
        SelfPlayMetrics.FailedTasks.Add(1);
        var (retryAfter, givenUp) = _state.Decide(f, attempts, MaxAttempts, DateTime.UtcNow);
        if (retryAfter is { } delay)
        {
            // Back off before the retry, so a failing store or environment is not hammered.
            _log.Warning("task {TaskId} failed (attempt {Attempt}), retrying in {DelaySeconds}s: {Reason}", f.TaskId, attempts, delay.TotalSeconds, f.Reason);
            Timers.StartSingleTimer("retry-" + f.TaskId, new Reissue(task), delay);
            return;
        }
        _log.Warning("task {TaskId} failed {Attempts} times, skipped: {Reason}", f.TaskId, attempts, f.Reason);
        _lastTaskFailure = f.Reason;
        Persist(givenUp!, e =>
        {
            if (_state.DoneTasks.Contains(e.TaskId)) return;
            Apply(e);
            AfterTask();
        });
    }

    void ExpireLeases()
    {
        foreach (var lease in _leases.Expire(DateTime.UtcNow))
        {
            _log.Warning("lease expired: task {TaskId} (worker {Worker}); handing it out again", lease.Task.TaskId, lease.Worker.Path);
            SelfPlayMetrics.LeaseExpiries.Add(1);
        }
        Dispatch();
    }

    /// <summary>A worker, inference or critic actor is gone (stopped, or its node left the cluster): a worker's leased
    /// tasks go back to the queue now.</summary>
    void OnTerminated(IActorRef actor)
    {
        if (_fleet.RemoveInference(actor)) _log.Warning("inference {Inference} is gone", actor.Path);
        if (_fleet.RemoveCritic(actor)) _log.Warning("critic {Critic} is gone", actor.Path);
        if (_leases.Gone(actor) is not { } released) return;
        foreach (var lease in released)
            _log.Warning("lease released: task {TaskId} (worker {Worker} is gone); handing it out again", lease.Task.TaskId, actor.Path);
        Dispatch();
    }

    void AfterTask()
    {
        Publish("search", _state.DoneTasks.Count, _state.TaskCount);
        if (_state.SearchDone) StartTraining();
    }

    void StartTraining()
    {
        if (_state.AllFailed)
        {
            // Nothing to train on: the environment (or the search) is broken, not the tasks. Stopping keeps the policy
            // and the journal; a resume after the fix searches the iteration again (ResumeIteration).
            Finish("failed", $"iteration {_state.Iteration}: all {_state.TaskCount} tasks failed, nothing to train on (last: {_lastTaskFailure ?? "see selfplay.log"}); " +
                             "fix the cause and run --resume");
            return;
        }
        _timings.SearchDone(_state);
        var trees = _state.DoneTasks.Count - _state.FailedTasks;
        _log.Info("iteration {Iteration}: search done, {Trees} trees, {SolvedTrees} solved, {TreesPerSecond:F2} trees/s; phase train", _state.Iteration, trees,
            _state.SolvedTrees, _timings.SearchSeconds > 0 ? trees / _timings.SearchSeconds : 0);
        foreach (var inference in _fleet.Inference) inference.Tell(GetInferenceStats.Instance);
        Train(new TrainIteration(_state.Iteration), _state.Iteration);
    }
}
