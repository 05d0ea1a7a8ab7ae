using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Environments;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// The campaign's actor: warm-up, then N iterations of (search all tasks -> train -> publish -> load -> evaluate), one
/// <c>Become</c> per phase. What the journal says is <see cref="CampaignState"/> (pure, recovered by applying its events),
/// the live leases are a <see cref="LeaseTable{TWorker}"/>, the run folder's files are <see cref="CampaignFiles"/>; this
/// class persists, sends and schedules. Persistence id "campaign|NAME": a stopped campaign resumes at the iteration it
/// stopped in, searching only the tasks without an outcome. Workers pull tasks under leases; a task whose lease expires
/// or whose worker dies is handed out again, and because tree ids are deterministic a re-run replaces its earlier tree.
/// A node's workers get tasks only once its inference actor (and critic) hold the current version.
/// </summary>
public sealed partial class CampaignCoordinator : ReceivePersistentActor, IWithTimers
{
    sealed record ResendTraining;

    const int MaxAttempts = 3, MaxTrainingFailures = 4;
    /// <summary>Training commands are re-sent while unanswered: a learner that died and came back (its node restarted,
    /// or the singleton moved) picks the work up again; a learner already busy with it ignores the repeat.</summary>
    static readonly TimeSpan TrainingResend = TimeSpan.FromSeconds(15);

    readonly CampaignContext _context;
    readonly IActorRef _learner, _inference;
    /// <summary>The replay's shard region (or proxy), to open each iteration's buckets ahead of its trees; none in tests
    /// without a replay.</summary>
    readonly IActorRef? _replay;
    readonly IEnvironmentSteps _environment;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly LeaseTable<IActorRef> _leases;
    readonly PolicyFleet _fleet = new();
    readonly SearchTimings _timings = new();
    readonly CampaignFiles _files;
    readonly CampaignAudience _audience;
    readonly DateTime _createdUtc = DateTime.UtcNow;
    CampaignState _state = CampaignState.Empty;
    int _trainingFailures;
    string? _lastTaskFailure;

    public static string PersistenceIdFor(string campaign) => "campaign|" + campaign;
    public override string PersistenceId { get; }
    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="inference">the inference actor of this node, used for the held-out evaluation</param>
    /// <param name="environment">how the held-out evaluation reaches the environment (its actors; default: in this process)</param>
    public CampaignCoordinator(CampaignContext context, IActorRef learner, IActorRef inference, IEnvironmentSteps? environment = null, IActorRef? replay = null)
    {
        (_context, _learner, _inference, _replay) = (context, learner, inference, replay);
        _environment = environment ?? new InlineEnvironmentSteps(context.Setup.Environment);
        PersistenceId = PersistenceIdFor(context.Config.Name);
        _leases = new LeaseTable<IActorRef>(TimeSpan.FromSeconds(context.Config.Actors.LeaseSeconds));
        _fleet.RegisterInference(inference, null);
        _files = new CampaignFiles(context, message => _log.Warning(message));
        _audience = new CampaignAudience(Context.System.EventStream, _files);

        Recover<CampaignStarted>(Apply);
        Recover<IterationStarted>(Apply);
        Recover<TaskRecorded>(Apply);
        Recover<TaskLeased>(Apply);
        Recover<PolicyPublished>(Apply);
        Recover<IterationEvaluated>(Apply);
        Recover<CampaignFinished>(Apply);
        Recover<RecoveryCompleted>(_ =>
        {
            _leases.LastLeaseId = _state.LastLeaseId;
            if (LastSequenceNr > 0) _log.Info("coordinator (re)started: recovered {Events} journal events, iteration {Iteration}", LastSequenceNr, _state.Iteration);
            if (LastSequenceNr > 0 && _state.Finished is null) Self.Tell(StartCampaign.Instance); // resume by itself
        });

        // Before the start: only StartCampaign moves the campaign on.
        Command<StartCampaign>(_ => Start());
        KeepOutcomes();
        Always();
    }

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("leases", new LeaseTick(), TimeSpan.FromSeconds(1));
        base.PreStart();
    }

    /// <summary>What every phase handles (after its own handlers): members registering, asking for work and leaving,
    /// loads answered, watchers, and failures, which arrive as messages of their own type, never guessed from a sender.</summary>
    void Always()
    {
        Command<RegisterInference>(_ => Registered(_fleet.RegisterInference(Sender, _state.Published), "inference"));
        Command<RegisterCritic>(_ => Registered(_fleet.RegisterCritic(Sender, _state.Published), "critic"));
        Command<PolicyLoaded>(l => { if (_fleet.PolicyLoaded(Sender, l.Version)) Dispatch(); });
        Command<CriticLoaded>(l => { if (_fleet.CriticLoaded(Sender, l.Version)) Dispatch(); });
        Command<RequestWork>(_ =>
        {
            if (_leases.Know(Sender)) Context.Watch(Sender);
            _leases.Idle(Sender);
            Dispatch();
        });
        Command<LeaseTick>(_ => ExpireLeases());
        Command<Terminated>(t => OnTerminated(t.ActorRef));
        Command<InferenceStats>(_ => { }); // the answers to the reset at the search's start
        Command<WaitForCompletion>(_ => _audience.Wait(Sender, _state.Finished));
        Command<WatchProgress>(_ => _audience.Watch(Sender));
        Command<PolicyLoadFailed>(f =>
        {
            if (Sender.Equals(_inference)) Finish("failed", f.Reason); // the evaluation needs this node's policy
            else if (_fleet.RemoveInference(Sender)) _log.Error("inference {Inference} dropped: {Reason}", Sender.Path, f.Reason); // one search node less
        });
        // Its node gets no more tasks (they would be scored by an old critic); the other nodes go on.
        Command<CriticLoadFailed>(f => { if (_fleet.RemoveCritic(Sender)) _log.Error("critic {Critic} dropped: {Reason}", Sender.Path, f.Reason); });
    }

    void Registered(bool isNew, string role)
    {
        if (!isNew) return; // registrations repeat every few seconds
        Context.Watch(Sender);
        _log.Info("{Role} {Sender} registered", role, Sender.Path);
    }

    void Start()
    {
        if (_state.Finished is not null) return;
        _timings.StartPhase();
        if (_state.Published is not { } published)
        {
            _log.Info("campaign {Campaign}: phase warm-up", _context.Config.Name);
            if (_state.StartedUtc is null) Persist(new CampaignStarted(DateTime.UtcNow), e => { Apply(e); Train(RunWarmup.Instance, 0); });
            else Train(RunWarmup.Instance, 0);
            return;
        }
        _log.Info("campaign {Campaign}: resuming at iteration {Iteration} (policy v{Version}, {DoneTasks} of {Tasks} tasks done)", _context.Config.Name,
            _state.Iteration, published.Version, _state.DoneTasks.Count, _state.TaskCount);
        LoadEverywhere(published);
    }

    /// <summary>Phase train: the learner runs the command (re-sent while unanswered) until it publishes policy v<paramref name="version"/>.</summary>
    void Train(object command, int version)
    {
        _trainingFailures = 0;
        _learner.Tell(command);
        Timers.StartPeriodicTimer("train", new ResendTraining(), TrainingResend);
        Become(() =>
        {
            Command<PolicyPublished>(p => OnPublished(p, version));
            Command<ResendTraining>(_ => _learner.Tell(command));
            Command<TrainingFailed>(f =>
            {
                if (f.Permanent || ++_trainingFailures >= MaxTrainingFailures) Finish("failed", f.Reason);
                // Training met a database or disk outage: the resend timer sends the command again.
                else _log.Warning("training failed (attempt {Attempt} of {MaxAttempts}), retrying in {DelaySeconds}s: {Reason}", _trainingFailures, MaxTrainingFailures,
                    TrainingResend.TotalSeconds, f.Reason);
            });
            Command<InferenceStats>(_timings.Add);
            Always();
        });
    }

    void OnPublished(PolicyPublished published, int expected)
    {
        // Only the learner publishes: a publication from any other member would send every node to load its folder.
        if (!Sender.Equals(_learner) && Sender.Path.ToStringWithoutAddress() != SelfPlayHost.LearnerSingletonPath)
        {
            _log.Warning("refused PolicyPublished v{Version} from {Sender}: only the learner singleton ({Learner}) publishes", published.Version, Sender.Path, SelfPlayHost.LearnerSingletonPath);
            return;
        }
        if (published.Version != expected) return; // a repeat of an earlier answer
        Timers.Cancel("train");
        Persist(published, p =>
        {
            Apply(p);
            _log.Info("checkpoint: policy v{Version} published at {Directory} ({Examples} examples, loss {FirstLoss:F4} -> {LastLoss:F4})", p.Version, p.Directory,
                p.Report.Examples, p.Report.FirstLoss, p.Report.LastLoss);
            if (p.Critic is { } c)
                _log.Info("checkpoint: {Kind} critic v{Version} published at {Directory} ({Examples} examples; " +
                          "held-out loss {HeldOutLossBefore:F4} -> {HeldOutLossAfter:F4}, constant predictor {HeldOutLossConstant:F4})",
                    new object[] { c.Kind, c.Version, c.Directory, c.Examples, c.HeldOutLossBefore, c.HeldOutLossAfter, c.HeldOutLossConstant });
            LoadEverywhere(p);
        });
    }

    /// <summary>Phase load: every registered inference actor (and critic) loads the new version; the campaign goes on
    /// where the journal says once this node's inference has it.</summary>
    void LoadEverywhere(PolicyPublished p)
    {
        _fleet.Load(p);
        Become(() =>
        {
            Command<PolicyLoaded>(l =>
            {
                _fleet.PolicyLoaded(Sender, l.Version);
                if (!Sender.Equals(_inference) || l.Version != _state.PolicyVersion) Dispatch();
                else if (_state.AfterLoad() == CampaignStep.Evaluate) Evaluate();
                else if (_state.AfterLoad() == CampaignStep.Search) ResumeIteration();
                else NextIteration();
            });
            Command<InferenceStats>(_timings.Add);
            KeepOutcomes();
            Always();
        });
    }

    /// <summary>Until the search (re)starts, a worker's outcome waits for it instead of being dropped: after a move, a
    /// worker that finished a journaled lease reports to the new coordinator while it still loads the policy, and a dropped
    /// report left the task leased until its lease expired, then searched again.</summary>
    void KeepOutcomes()
    {
        Command<TaskCompleted>(_ => Stash.Stash());
        Command<TaskFailed>(_ => Stash.Stash());
    }

    void NextIteration()
    {
        if (_state.NextIteration(_context.Config.Iterations.Count, _context.Config.Iterations.Trees, DateTime.UtcNow) is not IterationStarted next)
        {
            Finish("completed", null);
            return;
        }
        Persist(next, e =>
        {
            Apply(e);
            _log.Info("iteration {Iteration}: phase search, {Tasks} tasks with policy v{PolicyVersion}", e.Iteration, e.Tasks, e.PolicyVersion);
            ResumeIteration();
        });
    }

    void Publish(string phase, int done, int total) => _audience.Progress(new CampaignProgress(phase, _state.Iteration, done, total));

    /// <summary>The state after a journaled event; a new iteration also starts the live side afresh (no leases, retries or search time).</summary>
    void Apply(object e)
    {
        _state = _state.Apply(e);
        if (e is not IterationStarted) return;
        _timings.NewIteration();
        _leases.Clear();
    }

    void WriteSummary(string status, string? error) =>
        _files.Summary(status, error, _state.IterationRows, (DateTime.UtcNow - (_state.StartedUtc ?? _createdUtc)).TotalSeconds);

    void Finish(string status, string? error)
    {
        if (_state.Finished is not null) return;
        var finished = new CampaignFinished(status, error);
        if (status == "completed") Persist(finished, Announce); // a failed campaign stays resumable
        else Announce(finished);
    }

    void Announce(CampaignFinished finished)
    {
        if (finished.Error is not null) _log.Error("campaign failed: {Error}", finished.Error);
        else _log.Info("campaign {Campaign}: phase {Status}", _context.Config.Name, finished.Status);
        WriteSummary(finished.Status, finished.Error);
        Apply(finished);
        _audience.Finished(finished, _state.Iteration);
        Timers.CancelAll();
        Become(Always);
    }
}
