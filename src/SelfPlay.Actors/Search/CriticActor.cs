using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Models.Heads;

namespace SelfPlay.Actors.Search;

/// <summary>
/// Scores new nodes for the searches of its node. With the verifier, the environment's step scores or an LLM (search.critic = verifier | environment | llm) each
/// request is scored as it comes, concurrently. With a trained critic (search.critic = value | prm) the coordinator
/// has it load each published critic version; requests that arrive while a batch runs are scored together by the
/// next forward pass (each request queues a Flush behind itself, as in the inference actor): non-terminal nodes get
/// the critic's score, terminal nodes their verified reward. Until the first critic is trained (the first
/// iteration) the verifier scores. Runs on a pinned dispatcher: tensor work wants one thread.
/// </summary>
public sealed class CriticActor : ReceiveActor
{
    sealed record Flush
    {
        public static readonly Flush Instance = new();
    }

    readonly List<(ScoreNodes Request, IActorRef ReplyTo)> _pending = [];
    readonly ILoggingAdapter _log = Context.GetLogger();
    CriticModel? _trained;
    int _version = -1;

    /// <param name="evaluator">the untrained critic: verifier or LLM</param>
    /// <param name="verifier">the terminal nodes' scorer when a trained critic is loaded</param>
    public CriticActor(INodeEvaluator evaluator, VerifierEvaluator? verifier = null, string device = "cpu")
    {
        Receive<ScoreNodes>(request =>
        {
            if (MessageLimits.Refused(request, Sender, _log)) return;
            if (_trained is not null)
            {
                _pending.Add((request, Sender));
                Self.Tell(Flush.Instance);
                return;
            }
            evaluator.EvaluateAsync(new EnvTask(request.TaskId, request.TaskInput), request.Nodes)
                .ContinueWith(t => t.IsCompletedSuccessfully ? (object)new NodesScored(t.Result) : new Status.Failure(t.Exception!.GetBaseException()))
                .PipeTo(Sender);
        });
        Receive<Flush>(_ => RunBatch(verifier!));
        Receive<LoadCritic>(load =>
        {
            if (load.Version == _version)
            {
                Sender.Tell(new CriticLoaded(load.Version));
                return;
            }
            try
            {
                if (verifier is null) throw new InvalidOperationException("this critic actor has no verifier for terminal nodes");
                var critic = CriticModel.Load(load.Directory, device, load.Sha256);
                _trained?.Dispose();
                (_trained, _version) = (critic, load.Version);
                _log.Info("critic: loaded {Kind} critic v{Version} from {Directory}", critic.Kind, load.Version, load.Directory);
                Sender.Tell(new CriticLoaded(load.Version));
            }
            catch (Exception e)
            {
                Sender.Tell(new CriticLoadFailed(load.Version, $"cannot load critic v{load.Version}: {e.Message}"));
            }
        });
    }

    void RunBatch(VerifierEvaluator verifier)
    {
        if (_pending.Count == 0 || _trained is null) return;
        var batch = _pending.ToList();
        _pending.Clear();
        try
        {
            var open = batch.SelectMany(b => b.Request.Nodes).Where(n => !n.Outcome.IsTerminal).Select(n => n.StateAfter).ToList();
            var scores = _trained.Score(open);
            var next = 0;
            foreach (var (request, replyTo) in batch)
            {
                var own = request.Nodes.Select(n => n.Outcome.IsTerminal ? 0 : scores[next++]).ToArray();
                // Terminals are verified by the environment (its actors, in a campaign), off this thread.
                verifier.EvaluateAsync(new EnvTask(request.TaskId, request.TaskInput), request.Nodes)
                    .ContinueWith(t => t.IsCompletedSuccessfully
                        ? (object)new NodesScored(request.Nodes.Select((n, i) => n.Outcome.IsTerminal ? t.Result[i] : own[i]).ToArray())
                        : new Status.Failure(t.Exception!.GetBaseException()))
                    .PipeTo(replyTo);
            }
        }
        catch (Exception e)
        {
            _log.Error(e, "critic batch failed (critic v{Version})", _version);
            foreach (var (_, replyTo) in batch) replyTo.Tell(new Status.Failure(e));
        }
    }

    protected override void PostStop() => _trained?.Dispose();
}

/// <summary>The search's evaluator backed by the critic actor.</summary>
public sealed class ActorNodeEvaluator(IActorRef critic, string name, TimeSpan timeout) : INodeEvaluator
{
    public string Name => name;

    public async Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default) =>
        (await critic.Ask<NodesScored>(new ScoreNodes(task.Id, task.Input, nodes), timeout, cancellationToken)).Values;
}
