using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Search;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;

namespace SelfPlay.Actors.Inference;

/// <summary>
/// Owns the policy on one device and serves generation for every concurrent search. Requests that arrive while a
/// batch is running are answered together by the next forward pass: each request queues a Flush behind itself,
/// so everything already in the mailbox joins the batch and no timer is needed. Runs on a pinned dispatcher
/// (one thread), which tensor work and thread-local dispose scopes want.
/// </summary>
public sealed class InferenceActor : ReceiveActor
{
    sealed record Flush
    {
        public static readonly Flush Instance = new();
    }

    readonly string _device;
    readonly string _stepStop;
    readonly int _maxStepTokens;
    readonly int _maxRows;
    readonly List<(ProposeSteps Request, IActorRef ReplyTo)> _pending = [];
    readonly ILoggingAdapter _log = Context.GetLogger();
    PolicyStepProposer? _proposer;
    int _version = -1;
    long _batches, _rows, _tokens; // throughput since the last GetInferenceStats
    double _busySeconds;

    readonly string _dtype;
    readonly int _prefixCacheMb;

    /// <param name="prefixCacheMb">budget of the prefix cache that spares re-forwarding the states a search expands again; 0 = off.</param>
    public InferenceActor(string device, string stepStop, int maxStepTokens, int maxRows, string dtype = "float32", int prefixCacheMb = 0)
    {
        (_device, _stepStop, _maxStepTokens, _maxRows, _dtype, _prefixCacheMb) = (device, stepStop, maxStepTokens, maxRows, dtype, prefixCacheMb);
        Receive<LoadPolicy>(Load);
        Receive<ProposeSteps>(request =>
        {
            if (MessageLimits.Refused(request, Sender, _log)) return;
            _pending.Add((request, Sender));
            Self.Tell(Flush.Instance);
        });
        Receive<Flush>(_ => RunBatch());
        Receive<GetInferenceStats>(_ =>
        {
            Sender.Tell(new InferenceStats(_batches, _rows, _maxRows, _tokens, _busySeconds));
            (_batches, _rows, _tokens, _busySeconds) = (0, 0, 0, 0);
        });
    }

    void Load(LoadPolicy load)
    {
        try
        {
            var (model, tokenizer, _) = Checkpoint.Load(load.Directory, _device, load.Sha256, _dtype);
            _proposer?.Dispose();
            _proposer = new PolicyStepProposer(model, tokenizer, _stepStop, _maxStepTokens,
                _prefixCacheMb > 0 ? new PrefixCache(_prefixCacheMb * 1024L * 1024) : null);
            _version = load.Version;
            _log.Info("inference: loaded policy v{0} from {1}", load.Version, load.Directory);
            Sender.Tell(new PolicyLoaded(load.Version));
        }
        catch (Exception e)
        {
            Sender.Tell(new Status.Failure(new InvalidOperationException($"cannot load policy v{load.Version}: {e.Message}")));
        }
    }

    void RunBatch()
    {
        if (_pending.Count == 0) return;
        var batch = new List<(ProposeSteps Request, IActorRef ReplyTo)>();
        var rows = 0;
        while (_pending.Count > 0 && (batch.Count == 0 || rows + RowsOf(_pending[0].Request) <= _maxRows))
        {
            rows += RowsOf(_pending[0].Request);
            batch.Add(_pending[0]);
            _pending.RemoveAt(0);
        }
        if (_pending.Count > 0) Self.Tell(Flush.Instance);
        if (_proposer is null)
        {
            foreach (var (_, replyTo) in batch) replyTo.Tell(new Status.Failure(new InvalidOperationException("no policy loaded")));
            return;
        }
        try
        {
            var requests = batch.SelectMany(b => b.Request.Requests).ToList();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var results = _proposer.Propose(requests);
            (_batches, _rows, _busySeconds) = (_batches + 1, _rows + requests.Sum(r => r.Count), _busySeconds + clock.Elapsed.TotalSeconds);
            _tokens += results.Sum(r => r.Sum(step => (long)step.TokenIds.Length));
            var offset = 0;
            foreach (var (request, replyTo) in batch)
            {
                replyTo.Tell(new StepsProposed(results.Skip(offset).Take(request.Requests.Count).ToList()));
                offset += request.Requests.Count;
            }
        }
        catch (Exception e)
        {
            _log.Error(e, "inference batch failed (policy v{0})", _version);
            foreach (var (_, replyTo) in batch) replyTo.Tell(new Status.Failure(e));
        }
    }

    static int RowsOf(ProposeSteps request) => request.Requests.Sum(r => r.Count);

    protected override void PostStop() => _proposer?.Dispose();
}

/// <summary>The search's expander backed by the inference actor.</summary>
public sealed class ActorStepProposer(IActorRef inference, TimeSpan timeout) : IStepProposer
{
    public async Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
        (await inference.Ask<StepsProposed>(new ProposeSteps(requests), timeout, cancellationToken)).Steps;
}
