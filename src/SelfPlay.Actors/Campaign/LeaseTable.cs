using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// The live side of the search: tasks waiting, tasks leased to a worker until a deadline, workers waiting for a task,
/// and the attempts of each task. No actor and no clock (the time is passed in), so every transition is a unit test;
/// the coordinator journals what must survive it (<see cref="TaskLeased"/>, outcomes) and keeps this table beside it.
/// </summary>
/// <typeparam name="TWorker">how a worker is named (the coordinator's: its actor reference)</typeparam>
public sealed class LeaseTable<TWorker>(TimeSpan leaseTime) where TWorker : notnull
{
    public sealed record Lease(SearchTask Task, TWorker Worker, DateTime Deadline);

    readonly Queue<SearchTask> _pending = new();
    readonly Dictionary<string, Lease> _leased = [];
    readonly Dictionary<string, int> _attempts = [];
    readonly LinkedList<TWorker> _idle = new();
    readonly HashSet<TWorker> _workers = [];

    public int PendingCount => _pending.Count;
    public int LeasedCount => _leased.Count;
    /// <summary>The newest lease id handed out: new leases count on from it (the journal's highest after a restart).</summary>
    public long LastLeaseId { get; set; }

    /// <summary>A task to hand out (again).</summary>
    public void Enqueue(SearchTask task) => _pending.Enqueue(task);

    /// <summary>Whether the worker is new to the table (its death should then be watched).</summary>
    public bool Know(TWorker worker) => _workers.Add(worker);

    /// <summary>A task the journal says is leased to a live worker stays that worker's, with a fresh deadline.</summary>
    public void Hold(SearchTask task, TWorker worker, DateTime now) => _leased[task.TaskId] = new Lease(task, worker, now + leaseTime);

    /// <summary>The worker asks for work. One that still holds a lease is busy (it reports an outcome before it asks
    /// again, so this is a periodic re-ask) and is not queued twice.</summary>
    public void Idle(TWorker worker)
    {
        Know(worker);
        if (_leased.Values.Any(l => l.Worker.Equals(worker)) || _idle.Contains(worker)) return;
        _idle.AddLast(worker);
    }

    /// <summary>Leases pending tasks, in order, to the idle workers <paramref name="ready"/> accepts (the others keep
    /// waiting, in order); each lease gets the next lease id.</summary>
    public IReadOnlyList<Lease> Dispatch(Func<TWorker, bool> ready, DateTime now)
    {
        var handedOut = new List<Lease>();
        for (var node = _idle.First; node is not null && _pending.Count > 0;)
        {
            var next = node.Next;
            if (ready(node.Value))
            {
                _idle.Remove(node);
                var lease = new Lease(_pending.Dequeue() with { LeaseId = ++LastLeaseId }, node.Value, now + leaseTime);
                _leased[lease.Task.TaskId] = lease;
                handedOut.Add(lease);
            }
            node = next;
        }
        return handedOut;
    }

    /// <summary>The task has an outcome: its lease ends, and it is no longer handed out (an outcome from the worker of a
    /// journaled lease that was queued again, because its node looked unreachable when the coordinator resumed).</summary>
    public void Complete(string taskId)
    {
        _leased.Remove(taskId);
        if (_pending.All(t => t.TaskId != taskId)) return;
        var rest = _pending.Where(t => t.TaskId != taskId).ToList();
        _pending.Clear();
        foreach (var task in rest) _pending.Enqueue(task);
    }

    /// <summary>The worker of lease <paramref name="leaseId"/> failed the task: the lease ends and the attempt is counted.
    /// Null when that lease is not the task's current one (a late report of an earlier lease).</summary>
    public (SearchTask Task, int Attempts)? Fail(string taskId, long leaseId)
    {
        if (!_leased.TryGetValue(taskId, out var lease) || lease.Task.LeaseId != leaseId) return null;
        _leased.Remove(taskId);
        var attempts = _attempts[taskId] = _attempts.GetValueOrDefault(taskId) + 1;
        return (lease.Task, attempts);
    }

    /// <summary>Leases past their deadline end and their tasks are queued again; their workers are no longer counted
    /// idle (a worker that hangs is not given the task back).</summary>
    public IReadOnlyList<Lease> Expire(DateTime now)
    {
        var expired = _leased.Values.Where(l => l.Deadline < now).ToList();
        foreach (var lease in expired)
        {
            _leased.Remove(lease.Task.TaskId);
            _idle.Remove(lease.Worker);
            _pending.Enqueue(lease.Task);
        }
        return expired;
    }

    /// <summary>The worker is gone (stopped, or its node left): its leased tasks are queued again at once. Null when
    /// the table did not know it.</summary>
    public IReadOnlyList<Lease>? Gone(TWorker worker)
    {
        if (!_workers.Remove(worker)) return null;
        _idle.Remove(worker);
        var released = _leased.Values.Where(l => l.Worker.Equals(worker)).ToList();
        foreach (var lease in released)
        {
            _leased.Remove(lease.Task.TaskId);
            _pending.Enqueue(lease.Task);
        }
        return released;
    }

    /// <summary>A new iteration: no task waits, none is leased, no attempt counts (the workers stay known and idle).</summary>
    public void Clear()
    {
        _pending.Clear();
        _leased.Clear();
        _attempts.Clear();
    }
}
