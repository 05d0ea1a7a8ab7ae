using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Config;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Search;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;

namespace SelfPlay.Actors.Inference;

/// <summary>
/// Owns the policy on one device and serves generation for every concurrent search. Requests that arrive while a
/// batch is running are answered together by the next forward pass: each request queues a Flush behind itself,
/// so everything already in the mailbox joins the batch and no timer is needed. Runs on a pinned dispatcher
/// (one thread), which tensor work and thread-local dispose scopes want. With inference.backend = openai the model is
/// a server's instead (<see cref="OpenAiStepProposer"/>): loading a version loads its adapter there, and requests go
/// out as they come (the server batches them).
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
    readonly InferenceConfig? _server;
    readonly OpenAiClient? _client;
    OpenAiStepProposer? _remote;

    /// <param name="prefixCacheMb">budget of the prefix cache that spares re-forwarding the states a search expands again; 0 = off.</param>
    /// <param name="server">inference.backend = openai: the server that generates (null: this actor's own model)</param>
    public InferenceActor(string device, string stepStop, int maxStepTokens, int maxRows, string dtype = "float32", int prefixCacheMb = 0,
        InferenceConfig? server = null)
    {
        (_device, _stepStop, _maxStepTokens, _maxRows, _dtype, _prefixCacheMb) = (device, stepStop, maxStepTokens, maxRows, dtype, prefixCacheMb);
        if (server is { Remote: true })
            (_server, _client) = (server, new OpenAiClient(server.Client, needsModel: false));
        Receive<LoadPolicy>(load =>
        {
            if (_client is null) Load(load);
            else LoadOnServer(load);
        });
        Receive<ProposeSteps>(request =>
        {
            if (MessageLimits.Refused(request, Sender, _log)) return;
            if (_client is not null)
            {
                ProposeOnServer(request);
                return;
            }
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
            _log.Info("inference: loaded policy v{Version} from {Directory}", load.Version, load.Directory);
            Sender.Tell(new PolicyLoaded(load.Version));
        }
        catch (Exception e)
        {
            Sender.Tell(new PolicyLoadFailed(load.Version, $"cannot load policy v{load.Version}: {e.Message}"));
        }
    }

    /// <summary>
    /// v0 is the server's base; a later version (a LoRA adapter folder) is loaded there under "policy-vN", and the
    /// version before it is unloaded (its searches are done). Searches then name this version in every request.
    /// </summary>
    void LoadOnServer(LoadPolicy load)
    {
        try
        {
            var tokenizer = Checkpoint.LoadTokenizer(load.Directory, out _);
            string name;
            if (LoraAdapter.IsAdapter(load.Directory))
            {
                name = $"policy-v{load.Version}";
                var body = new System.Text.Json.Nodes.JsonObject { ["lora_name"] = name, ["lora_path"] = Path.GetFullPath(load.Directory) };
                try { _client!.PostTextAsync("load_lora_adapter", body.ToJsonString()).GetAwaiter().GetResult(); }
                catch (LlmException e) when (e.Status == 400 && e.Message.Contains("already", StringComparison.OrdinalIgnoreCase)) { } // a resumed campaign
            }
            else name = BaseModelName();
            if (_remote is { } previous && previous.Model != name && previous.Model.StartsWith("policy-v", StringComparison.Ordinal))
            {
                try { _client!.PostTextAsync("unload_lora_adapter", new System.Text.Json.Nodes.JsonObject { ["lora_name"] = previous.Model }.ToJsonString()).GetAwaiter().GetResult(); }
                catch (LlmException e) { _log.Warning("inference: could not unload {Model} from the server: {Error}", previous.Model, e.Message); }
            }
            _remote = new OpenAiStepProposer(_client!, name, tokenizer, _stepStop, _maxStepTokens, _server!.MaxConcurrency);
            _version = load.Version;
            _log.Info("inference: policy v{Version} is {Model} on {Endpoint}", load.Version, name, _server.Endpoint);
            Sender.Tell(new PolicyLoaded(load.Version));
        }
        catch (Exception e)
        {
            Sender.Tell(new PolicyLoadFailed(load.Version, $"cannot load policy v{load.Version} on {_server!.Endpoint}: {e.Message}"));
        }
    }

    string BaseModelName()
    {
        if (_server!.BaseModel.Length > 0) return _server.BaseModel;
        var models = _client!.GetAsync("models").GetAwaiter().GetResult()["data"]?.AsArray() ?? [];
        return models.FirstOrDefault(m => m?["parent"] is null)?["id"]?.GetValue<string>()
            ?? throw new InvalidOperationException("the server lists no base model (set inference.model)");
    }

    void ProposeOnServer(ProposeSteps request)
    {
        var replyTo = Sender;
        if (_remote is null)
        {
            replyTo.Tell(new Status.Failure(new InvalidOperationException("no policy loaded")));
            return;
        }
        (_batches, _rows) = (_batches + 1, _rows + RowsOf(request)); // busy time and tokens are the server's to measure
        _remote.ProposeAsync(request.Requests).PipeTo(replyTo, success: steps => new StepsProposed(steps), failure: e => new Status.Failure(e.GetBaseException()));
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
            var tokens = results.Sum(r => r.Sum(step => (long)step.TokenIds.Length));
            _tokens += tokens;
            Hosting.SelfPlayMetrics.Tokens.Add(tokens);
            Hosting.SelfPlayMetrics.Batches.Add(1);
            Hosting.SelfPlayMetrics.BatchFill(requests.Sum(r => r.Count) / (double)_maxRows);
            var offset = 0;
            foreach (var (request, replyTo) in batch)
            {
                replyTo.Tell(new StepsProposed(results.Skip(offset).Take(request.Requests.Count).ToList()));
                offset += request.Requests.Count;
            }
        }
        catch (Exception e)
        {
            _log.Error(e, "inference batch failed (policy v{Version})", _version);
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
