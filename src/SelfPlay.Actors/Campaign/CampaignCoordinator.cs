using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Inference;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// The campaign state machine: warm-up, then N iterations of (search all tasks -> train -> publish -> evaluate).
/// It is event-sourced (persistence id "campaign|NAME"): iteration starts, every task outcome, every published
/// policy and every evaluated iteration are journaled, so a stopped campaign resumes at the iteration it stopped in,
/// searching only the tasks that had not completed.
/// Search work is pulled by workers under leases; a task whose lease expires or whose worker dies is handed out
/// again, and because tree ids are deterministic a re-run replaces the earlier tree instead of adding one.
/// Workers only get tasks once the inference actor of their node has loaded the current policy version.
/// </summary>
public sealed class CampaignCoordinator : ReceivePersistentActor, IWithTimers
{
    sealed record LeaseTick;
    sealed record ResendTraining;
    sealed record Reissue(SearchTask Task);
    sealed record Evaluated(EvalResult? Result, double Seconds);
    sealed record EvaluationFailed(string Reason);
    sealed record Lease(SearchTask Task, IActorRef Worker, DateTime Deadline);

    const int MaxAttempts = 3, MaxTrainingFailures = 4;
    /// <summary>Training commands are re-sent while unanswered: a learner that died and came back (its node restarted,
    /// or the singleton moved) picks the work up again; a learner already busy with it ignores the repeat.</summary>
    static readonly TimeSpan TrainingResend = TimeSpan.FromSeconds(15);

    readonly CampaignContext _context;
    readonly IActorRef _learner, _inference;
    readonly IEnvironmentSteps _environment;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly List<IActorRef> _waiters = [], _watchers = [];
    readonly Queue<SearchTask> _pending = new();
    readonly Dictionary<string, Lease> _leased = [];
    readonly Dictionary<string, int> _attempts = [];
    readonly LinkedList<IActorRef> _idleWorkers = new();
    readonly HashSet<IActorRef> _workers = [];
    readonly Dictionary<IActorRef, int> _inferenceVersions = [];
    /// <summary>Critic actors (search.critic = value | prm) and the critic version each has loaded.</summary>
    readonly Dictionary<IActorRef, int> _criticVersions = [];
    readonly Stopwatch _campaignClock = Stopwatch.StartNew();
    Stopwatch _phaseClock = new();
    readonly CampaignFiles _files;
    /// <summary>What the journal says (recovered from it, and kept current by applying each event persisted).</summary>
    CampaignState _state = CampaignState.Empty;
    int _trainingFailures;
    string? _lastTaskFailure;
    long _nextLease;
    double _searchSeconds, _inferenceSeconds;
    bool _started, _evaluating, _collectingStats;
    InferenceStats _inferenceStats = new(0, 0, 0, 0, 0);
    object? _training; // the training command awaiting its PolicyPublished

    public static string PersistenceIdFor(string campaign) => "campaign|" + campaign;

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="inference">the inference actor of this node, used for the held-out evaluation</param>
    /// <param name="environment">how the held-out evaluation reaches the environment (its actors; default: in this process)</param>
    public CampaignCoordinator(CampaignContext context, IActorRef learner, IActorRef inference, IEnvironmentSteps? environment = null)
    {
        (_context, _learner, _inference) = (context, learner, inference);
        _environment = environment ?? new InlineEnvironmentSteps(context.Setup.Environment);
        PersistenceId = PersistenceIdFor(context.Config.Name);
        _inferenceVersions[inference] = -1;
        _files = new CampaignFiles(context, message => _log.Warning(message));

        Recover<CampaignStarted>(Apply);
        Recover<IterationStarted>(Apply);
        Recover<TaskRecorded>(Apply);
        Recover<TaskLeased>(Apply);
        Recover<PolicyPublished>(Apply);
        Recover<IterationEvaluated>(Apply);
        Recover<CampaignFinished>(Apply);
        Recover<RecoveryCompleted>(_ =>
        {
            _nextLease = _state.LastLeaseId;
            if (LastSequenceNr > 0) _log.Info("coordinator (re)started: recovered {0} journal events, iteration {1}", LastSequenceNr, _state.Iteration);
            if (LastSequenceNr > 0 && _state.Finished is null) Self.Tell(StartCampaign.Instance); // resume by itself
        });

        Command<StartCampaign>(_ => Start());
        Command<PolicyPublished>(OnPublished);
        Command<PolicyLoaded>(OnPolicyLoaded);
        Command<Evaluated>(OnEvaluated);
        Command<ResendTraining>(_ =>
        {
            if (_training is not null) _learner.Tell(_training);
        });

        Command<RegisterInference>(_ =>
        {
            if (_inferenceVersions.ContainsKey(Sender)) return;
            _inferenceVersions[Sender] = -1;
            Context.Watch(Sender);
            _log.Info("inference {0} registered", Sender.Path);
            if (_state.Published is { } p) Sender.Tell(new LoadPolicy(p.Version, p.Directory, p.Sha256));
        });
        Command<RegisterCritic>(_ =>
        {
            if (_criticVersions.ContainsKey(Sender)) return;
            _criticVersions[Sender] = -1;
            Context.Watch(Sender);
            _log.Info("critic {0} registered", Sender.Path);
            if (_state.Published?.Critic is { } c) Sender.Tell(new LoadCritic(c.Version, c.Directory, c.Sha256));
        });
        Command<CriticLoaded>(loaded =>
        {
            if (!_criticVersions.ContainsKey(Sender)) return;
            _criticVersions[Sender] = loaded.Version;
            Dispatch();
        });
        Command<RequestWork>(_ =>
        {
            if (_workers.Add(Sender)) Context.Watch(Sender);
            // A worker reports its outcome before asking again, so one that still holds a lease is busy (a periodic re-ask).
            if (_leased.Values.Any(l => l.Worker.Equals(Sender))) return;
            if (!_idleWorkers.Contains(Sender)) _idleWorkers.AddLast(Sender);
            Dispatch();
        });
        Command<TaskCompleted>(OnCompleted);
        Command<TaskFailed>(OnFailed);
        Command<Reissue>(r =>
        {
            if (r.Task.Iteration != _state.Iteration || _state.DoneTasks.Contains(r.Task.TaskId)) return;
            _pending.Enqueue(r.Task);
            Dispatch();
        });
        Command<LeaseTick>(_ => ExpireLeases());
        Command<Terminated>(t => OnTerminated(t.ActorRef));
        Command<InferenceStats>(s =>
        {
            if (!_collectingStats) return; // the answer to the reset at the start of the search
            _inferenceStats = new InferenceStats(_inferenceStats.Batches + s.Batches, _inferenceStats.Rows + s.Rows,
                Math.Max(_inferenceStats.MaxRows, s.MaxRows), _inferenceStats.Tokens + s.Tokens, _inferenceStats.BusySeconds + s.BusySeconds);
        });

        Command<WaitForCompletion>(_ =>
        {
            if (_state.Finished is not null) Sender.Tell(_state.Finished);
            else _waiters.Add(Sender);
        });
        Command<WatchProgress>(_ =>
        {
            if (!_watchers.Contains(Sender)) _watchers.Add(Sender);
        });
        // Failures arrive as messages of their own: what failed is the message's type, never a guess from its sender.
        Command<PolicyLoadFailed>(f =>
        {
            if (Sender.Equals(_inference)) Finish("failed", f.Reason); // the evaluation needs this node's policy
            else if (_inferenceVersions.Remove(Sender)) _log.Error("inference {0} dropped: {1}", Sender.Path, f.Reason); // one search node less
        });
        Command<CriticLoadFailed>(f =>
        {
            // Its node gets no more tasks (they would be scored by an old critic); the other nodes go on.
            if (_criticVersions.Remove(Sender)) _log.Error("critic {0} dropped: {1}", Sender.Path, f.Reason);
        });
        Command<TrainingFailed>(f =>
        {
            if (_training is null) return; // a late answer to work already done
            if (f.Permanent || ++_trainingFailures >= MaxTrainingFailures) Finish("failed", f.Reason);
            // Training met a database or disk outage: the resend timer sends the command again.
            else _log.Warning("training failed (attempt {0} of {1}), retrying in {2}s: {3}", _trainingFailures, MaxTrainingFailures,
                TrainingResend.TotalSeconds, f.Reason);
        });
        Command<EvaluationFailed>(f => Finish("failed", f.Reason));
    }

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("leases", new LeaseTick(), TimeSpan.FromSeconds(1));
        base.PreStart();
    }

    void Start()
    {
        if (_started || _state.Finished is not null) return;
        _started = true;
        if (_state.Published is not { } published)
        {
            _phaseClock = Stopwatch.StartNew();
            _log.Info("campaign {0}: phase warm-up", _context.Config.Name);
            if (_state.StartedUtc is null)
                Persist(new CampaignStarted(DateTime.UtcNow), e =>
                {
                    Apply(e);
                    Train(RunWarmup.Instance);
                });
            else Train(RunWarmup.Instance);
            return;
        }
        _log.Info("campaign {0}: resuming at iteration {1} (policy v{2}, {3} of {4} tasks done)", _context.Config.Name,
            _state.Iteration, published.Version, _state.DoneTasks.Count, _state.TaskCount);
        _phaseClock = Stopwatch.StartNew();
        LoadEverywhere(published);
    }

    void Train(object command)
    {
        _training = command;
        _learner.Tell(command);
        Timers.StartPeriodicTimer("train", new ResendTraining(), TrainingResend);
    }

    void OnPublished(PolicyPublished published)
    {
        // Only the learner publishes: a publication from any other member would send every node to load its folder.
        if (!Sender.Equals(_learner) && Sender.Path.ToStringWithoutAddress() != SelfPlayHost.LearnerSingletonPath)
        {
            _log.Warning("refused PolicyPublished v{0} from {1}: only the learner singleton ({2}) publishes", published.Version, Sender.Path, SelfPlayHost.LearnerSingletonPath);
            return;
        }
        var expected = _training switch { RunWarmup => 0, TrainIteration t => t.Iteration, _ => -1 };
        if (published.Version != expected) return; // a repeat of an earlier answer
        (_training, _trainingFailures) = (null, 0);
        Timers.Cancel("train");
        Persist(published, p =>
        {
            Apply(p);
            _log.Info("checkpoint: policy v{0} published at {1} ({2} examples, loss {3:F4} -> {4:F4})", p.Version, p.Directory,
                p.Report.Examples, p.Report.FirstLoss, p.Report.LastLoss);
            if (p.Critic is { } c)
                _log.Info($"checkpoint: {c.Kind} critic v{c.Version} published at {c.Directory} ({c.Examples} examples; " +
                          $"held-out loss {c.HeldOutLossBefore:F4} -> {c.HeldOutLossAfter:F4}, constant predictor {c.HeldOutLossConstant:F4})");
            LoadEverywhere(p);
        });
    }

    /// <summary>Every registered inference actor loads the new version; the evaluation waits for this node's.</summary>
    void LoadEverywhere(PolicyPublished p)
    {
        _evaluating = true;
        foreach (var inference in _inferenceVersions.Keys) inference.Tell(new LoadPolicy(p.Version, p.Directory, p.Sha256));
        if (p.Critic is { } c)
            foreach (var critic in _criticVersions.Keys) critic.Tell(new LoadCritic(c.Version, c.Directory, c.Sha256));
    }

    void OnPolicyLoaded(PolicyLoaded loaded)
    {
        if (_inferenceVersions.ContainsKey(Sender)) _inferenceVersions[Sender] = loaded.Version;
        if (_evaluating && Sender.Equals(_inference) && loaded.Version == _state.PolicyVersion)
        {
            _evaluating = false;
            ContinueAfterLoad();
        }
        else Dispatch();
    }

    /// <summary>Where the journal says the campaign stands, once this node's inference has the current policy.</summary>
    void ContinueAfterLoad()
    {
        if (!_state.Evaluated(_state.PolicyVersion)) Evaluate();
        else if (_state.Iteration > _state.PolicyVersion) ResumeIteration();
        else NextIteration();
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
        var episodes = new System.Collections.Concurrent.ConcurrentQueue<HeldOutEpisode>();
        var version = _state.PolicyVersion;
        Evaluation.GreedyAsync(_context.Setup.Environment, _context.Setup.HeldOut, proposer, _context.Config.Environment.MaxSteps, steps: _environment,
                onEpisode: (task, state, solved) => episodes.Enqueue(new HeldOutEpisode(task.Id, task.Input, solved, state)))
            .ContinueWith(t =>
            {
                if (!t.IsCompletedSuccessfully)
                    return (object)new EvaluationFailed($"held-out evaluation: {t.Exception?.GetBaseException().Message.ReplaceLineEndings(" ") ?? "failed"}");
                _files.Episodes(version, episodes);
                return new Evaluated(t.Result, clock.Elapsed.TotalSeconds);
            })
            .PipeTo(Self);
    }

    void OnEvaluated(Evaluated e)
    {
        if (e.Result is { Total: > 0 } failed && failed.EnvironmentErrors >= failed.Total)
        {
            // A 0/N from an environment that played no episode is no result; nothing is recorded, so a resume evaluates again.
            Finish("failed", $"iteration {_state.PolicyVersion}: the held-out evaluation could not play any of its {failed.Total} episodes " +
                             $"(the environment failed: {failed.FirstError}); fix the cause and run --resume");
            return;
        }
        var report = _state.Published!.Report;
        var held = e.Result is { } r ? new HeldOutResult(r.Solved, r.Total, Math.Round(r.Rate, 4)) : null;
        var row = new IterationSummary(_state.PolicyVersion, _state.PolicyVersion == 0 ? "sft" : "selfplay", _state.PolicyVersion,
            _state.PolicyVersion == 0 ? 0 : _state.TaskCount, report.Pairs, held, Math.Round(IterationWallSeconds(), 1),
            Math.Round(_searchSeconds, 1), Math.Round(report.WallSeconds, 1), Math.Round(e.Seconds, 1), _state.Nodes, _state.SolvedTrees, _state.FailedTasks,
            Finite(report.FirstLoss), Finite(report.LastLoss), Finite(report.RewardAccuracy), report.Learner,
            _state.PolicyVersion == 0 ? null : Throughput(), _state.Published.Critic, report.PairDiagnostics, report.Parity);
        Persist(new IterationEvaluated(row), ev =>
        {
            Apply(ev);
            _log.Info("iteration {0}: held-out {1}", row.Iteration, held is null ? "not evaluated" : $"{held.Solved}/{held.Total}");
            _files.Scalars(ev.Row, _state.IterationRows);
            if (e.Result is { EnvironmentErrors: > 0 } r)
                _log.Warning("iteration {0}: {1} of {2} held-out episodes ended by an environment failure (counted unsolved), first: {3}",
                    row.Iteration, r.EnvironmentErrors, r.Total, r.FirstError);
            WriteSummary("running", null);
            NextIteration();
        });
    }

    /// <summary>From the iteration's journaled start (the campaign's for the warm-up) to now; this coordinator's phase
    /// clock for a journal without timestamps.</summary>
    double IterationWallSeconds() =>
        (_state.PolicyVersion == 0 ? _state.StartedUtc : _state.IterationStartedUtc) is { } start ? (DateTime.UtcNow - start).TotalSeconds : _phaseClock.Elapsed.TotalSeconds;

    /// <summary>This iteration's search throughput: trees and nodes from the journal over the journaled search time;
    /// inference figures (counted by the inference actors) over the search time since this coordinator's (re)start.</summary>
    RoleThroughput Throughput()
    {
        var seconds = Math.Max(_searchSeconds, 1e-9);
        var s = _inferenceStats;
        var throughput = new RoleThroughput(Math.Round((_state.DoneTasks.Count - _state.FailedTasks) / seconds, 3), Math.Round(_state.Nodes / seconds, 1),
            Math.Round(s.Tokens / Math.Max(_inferenceSeconds, 1e-9), 1), s.Batches == 0 ? 0 : Math.Round(s.Rows / (double)(s.Batches * (long)s.MaxRows), 4),
            s.Batches, Math.Round(s.BusySeconds, 2));
        _log.Info("iteration {0}: throughput search {1} trees/s ({2} nodes/s), inference {3} tokens/s in {4} batches, batch fill {5:P1}",
            _state.Iteration, throughput.TreesPerSecond, throughput.NodesPerSecond, throughput.InferenceTokensPerSecond, s.Batches, throughput.BatchFill);
        return throughput;
    }

    static double? Finite(double x) => double.IsFinite(x) ? Math.Round(x, 5) : null;

    void NextIteration()
    {
        if (_state.PolicyVersion >= _context.Config.Iterations.Count)
        {
            Finish("completed", null);
            return;
        }
        Persist(new IterationStarted(_state.PolicyVersion + 1, _state.PolicyVersion, _context.Config.Iterations.Trees, DateTime.UtcNow), e =>
        {
            Apply(e);
            _log.Info("iteration {0}: phase search, {1} tasks with policy v{2}", e.Iteration, e.Tasks, e.PolicyVersion);
            ResumeIteration();
        });
    }

    /// <summary>Queues the tasks of the current iteration that have no recorded outcome (all of them in a new iteration).</summary>
    void ResumeIteration()
    {
        if (_state.SearchDone && _state.AllFailed)
        {
            // The run stopped because every task had failed (StartTraining): search them all again.
            Persist(new IterationStarted(_state.Iteration, _state.PolicyVersion, _state.TaskCount, DateTime.UtcNow), e =>
            {
                Apply(e);
                _log.Info("iteration {0}: every task had failed; searching all {1} again", e.Iteration, e.Tasks);
                ResumeIteration();
            });
            return;
        }
        _phaseClock = Stopwatch.StartNew();
        (_collectingStats, _inferenceStats) = (false, new InferenceStats(0, 0, 0, 0, 0));
        foreach (var inference in _inferenceVersions.Keys) inference.Tell(GetInferenceStats.Instance); // resets their counters
        var kept = 0;
        foreach (var task in CampaignTasks.Of(_context.Config, _context.Setup.Train, _state.Iteration, _state.TaskCount, _state.PolicyVersion).Where(t => !_state.DoneTasks.Contains(t.TaskId)))
        {
            // A task the journal says is leased to a worker that is still a member stays its own: that worker reports it.
            if (_state.Leases.TryGetValue(task.TaskId, out var leased) && LiveWorker(leased.Worker) is { } worker)
            {
                _leased[task.TaskId] = new Lease(task with { LeaseId = leased.LeaseId }, worker, DateTime.UtcNow.AddSeconds(_context.Config.Actors.LeaseSeconds));
                if (_workers.Add(worker)) Context.Watch(worker); // gone later: the task is handed out again at once
                kept++;
            }
            else _pending.Enqueue(task);
        }
        if (kept > 0) _log.Info("iteration {0}: {1} tasks still leased to live workers (from the journal), {2} queued", _state.Iteration, kept, _pending.Count);
        _state = _state.WithoutJournaledLeases();
        Publish("search", _state.DoneTasks.Count, _state.TaskCount);
        if (_state.SearchDone) StartTraining();
        else Dispatch();
    }

    void Dispatch()
    {
        SelfPlayMetrics.Queue(_pending.Count, _leased.Count);
        if (_pending.Count == 0 || _idleWorkers.Count == 0) return;
        var handedOut = new List<(TaskLeased Event, SearchTask Task, IActorRef Worker)>();
        for (var node = _idleWorkers.First; node is not null && _pending.Count > 0;)
        {
            var next = node.Next;
            if (NodeHasCurrentPolicy(node.Value))
            {
                _idleWorkers.Remove(node);
                var (task, worker) = (_pending.Dequeue() with { LeaseId = ++_nextLease }, node.Value);
                if (_leased.Count == 0 && _state.DoneTasks.Count == 0) _log.Info("iteration {0}: first task leased", _state.Iteration);
                _leased[task.TaskId] = new Lease(task, worker, DateTime.UtcNow.AddSeconds(_context.Config.Actors.LeaseSeconds));
                handedOut.Add((new TaskLeased(_state.Iteration, task.TaskId, task.LeaseId, Akka.Serialization.Serialization.SerializedActorPath(worker)), task, worker));
            }
            node = next;
        }
        // Each worker gets its task once the lease is journaled (the leases of one dispatch share one write).
        if (handedOut.Count > 0)
            PersistAllAsync(handedOut.Select(h => h.Event).ToList(), e =>
            {
                Apply(e);
                var (_, task, worker) = handedOut.First(h => ReferenceEquals(h.Event, e));
                worker.Tell(task);
            });
    }

    /// <summary>Whether the inference actor on the worker's node (same address) has loaded the current policy version,
    /// and its critic actor the current critic when one has been trained.</summary>
    bool NodeHasCurrentPolicy(IActorRef worker) =>
        _inferenceVersions.Any(kv => kv.Value == _state.PolicyVersion && kv.Key.Path.Address.Equals(worker.Path.Address))
        && (_state.Published?.Critic is not { } critic
            || _criticVersions.Any(kv => kv.Value == critic.Version && kv.Key.Path.Address.Equals(worker.Path.Address)));

    void OnCompleted(TaskCompleted c)
    {
        // A late answer (a re-issued task finishing twice, or one from an earlier iteration) changes nothing:
        // its tree replaced the tree of the same id.
        if (_state.DoneTasks.Contains(c.TaskId) || c.TreeId != PreferenceTree.MakeId(_context.Config.Name, _state.Iteration, c.TaskId)) return;
        Persist(new TaskRecorded(_state.Iteration, c.TaskId, c.Nodes, c.Solved, false, DateTime.UtcNow), e =>
        {
            if (_state.DoneTasks.Contains(e.TaskId)) return;
            Apply(e);
            _leased.Remove(e.TaskId);
            SelfPlayMetrics.Trees.Add(1);
            SelfPlayMetrics.Nodes.Add(e.Nodes);
            AfterTask();
        });
    }

    void OnFailed(TaskFailed f)
    {
        if (_state.DoneTasks.Contains(f.TaskId) || !_leased.TryGetValue(f.TaskId, out var lease) || lease.Task.LeaseId != f.LeaseId) return;
        _leased.Remove(f.TaskId);
        var attempts = _attempts[f.TaskId] = _attempts.GetValueOrDefault(f.TaskId) + 1;
        SelfPlayMetrics.FailedTasks.Add(1);
        if (attempts < MaxAttempts || f.Transient)
        {
            // Back off before the retry, so a failing store or environment is not hammered. A transient failure
            // (the journal is down) is retried until the journal is back: a tree is never given up for it.
            var delay = TimeSpan.FromSeconds(Math.Min(10, Math.Pow(2, attempts - 1)));
            _log.Warning("task {0} failed (attempt {1}), retrying in {2}s: {3}", f.TaskId, attempts, delay.TotalSeconds, f.Reason);
            Timers.StartSingleTimer("retry-" + f.TaskId, new Reissue(lease.Task), delay);
            return;
        }
        _log.Warning("task {0} failed {1} times, skipped: {2}", f.TaskId, attempts, f.Reason);
        _lastTaskFailure = f.Reason;
        Persist(new TaskRecorded(_state.Iteration, f.TaskId, 0, false, true, DateTime.UtcNow), e =>
        {
            if (_state.DoneTasks.Contains(e.TaskId)) return;
            Apply(e);
            AfterTask();
        });
    }

    void ExpireLeases()
    {
        var now = DateTime.UtcNow;
        foreach (var lease in _leased.Values.Where(l => l.Deadline < now).ToList())
        {
            _log.Warning("lease expired: task {0} (worker {1}); handing it out again", lease.Task.TaskId, lease.Worker.Path);
            SelfPlayMetrics.LeaseExpiries.Add(1);
            _leased.Remove(lease.Task.TaskId);
            _idleWorkers.Remove(lease.Worker);
            _pending.Enqueue(lease.Task);
        }
        Dispatch();
    }

    /// <summary>A worker or inference actor is gone (stopped, or its node left the cluster): its leased tasks go back to the queue now.</summary>
    void OnTerminated(IActorRef actor)
    {
        if (_inferenceVersions.Remove(actor)) _log.Warning("inference {0} is gone", actor.Path);
        if (_criticVersions.Remove(actor)) _log.Warning("critic {0} is gone", actor.Path);
        if (!_workers.Remove(actor)) return;
        _idleWorkers.Remove(actor);
        foreach (var lease in _leased.Values.Where(l => l.Worker.Equals(actor)).ToList())
        {
            _log.Warning("lease released: task {0} (worker {1} is gone); handing it out again", lease.Task.TaskId, actor.Path);
            _leased.Remove(lease.Task.TaskId);
            _pending.Enqueue(lease.Task);
        }
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
        _inferenceSeconds = _phaseClock.Elapsed.TotalSeconds;
        _searchSeconds = _state.IterationStartedUtc is { } started && _state.LastTaskUtc is { } last ? (last - started).TotalSeconds : _inferenceSeconds;
        _log.Info("iteration {0}: search done, {1} trees, {2} solved, {3:F2} trees/s; phase train", _state.Iteration, _state.DoneTasks.Count - _state.FailedTasks,
            _state.SolvedTrees, _searchSeconds > 0 ? (_state.DoneTasks.Count - _state.FailedTasks) / _searchSeconds : 0);
        _collectingStats = true;
        foreach (var inference in _inferenceVersions.Keys) inference.Tell(GetInferenceStats.Instance);
        Train(new TrainIteration(_state.Iteration));
    }

    /// <summary>The worker at a journaled path, if it can still report: on a cluster, its node is an up, reachable
    /// member (a dead local actor or a later death is seen by the watch).</summary>
    IActorRef? LiveWorker(string path)
    {
        IActorRef worker;
        try { worker = ((ExtendedActorSystem)Context.System).Provider.ResolveActorRef(path); }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException) { return null; }
        if (worker.IsNobody()) return null;
        if (((ExtendedActorSystem)Context.System).Provider is not Akka.Cluster.ClusterActorRefProvider) return worker;
        var state = Akka.Cluster.Cluster.Get(Context.System).State;
        var member = state.Members.FirstOrDefault(m => m.Address.Equals(worker.Path.Address));
        return member is { Status: Akka.Cluster.MemberStatus.Up or Akka.Cluster.MemberStatus.WeaklyUp or Akka.Cluster.MemberStatus.Joining }
               && !state.Unreachable.Contains(member) ? worker : null;
    }

    void Publish(string phase, int done, int total)
    {
        var progress = new CampaignProgress(phase, _state.Iteration, done, total);
        Context.System.EventStream.Publish(progress);
        foreach (var watcher in _watchers) watcher.Tell(progress);
        _files.Progress(progress, force: done == 0 || done >= total);
    }

    /// <summary>The state after a journaled event; a new iteration also starts the actor's side afresh (no live leases,
    /// retries or search time).</summary>
    void Apply(object e)
    {
        _state = _state.Apply(e);
        if (e is not IterationStarted) return;
        _searchSeconds = 0;
        _attempts.Clear();
        _pending.Clear();
        _leased.Clear();
    }

    void WriteSummary(string status, string? error) => _files.Summary(status, error, _state.IterationRows,
        _state.StartedUtc is { } started ? (DateTime.UtcNow - started).TotalSeconds : _campaignClock.Elapsed.TotalSeconds);

    void Finish(string status, string? error)
    {
        if (_state.Finished is not null) return;
        var finished = new CampaignFinished(status, error);
        if (status == "completed") Persist(finished, Announce); // a failed campaign stays resumable
        else Announce(finished);
    }

    void Announce(CampaignFinished finished)
    {
        if (finished.Error is not null) _log.Error("campaign failed: {0}", finished.Error);
        else _log.Info("campaign {0}: phase {1}", _context.Config.Name, finished.Status);
        WriteSummary(finished.Status, finished.Error);
        _files.Progress(new CampaignProgress(finished.Status, _state.Iteration, 1, 1), force: true); // the live phase ends with the campaign
        Apply(finished);
        Context.System.EventStream.Publish(finished);
        foreach (var waiter in _waiters.Concat(_watchers)) waiter.Tell(finished);
        _waiters.Clear();
        Timers.CancelAll();
    }
}
