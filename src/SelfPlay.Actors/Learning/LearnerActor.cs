using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Critics;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;
using SelfPlay.Core.Training;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Heads;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using TorchSharp;

namespace SelfPlay.Actors.Learning;

/// <summary>
/// Trains the policy: supervised warm-up on solver traces, then DPO on the sibling pairs of each iteration's
/// trees (read from the journal with Persistence.Query). Each training run is a task piped back; while it runs
/// the actor stashes new commands, so the model is only ever touched by one run at a time.
/// Weights never travel through Akka: each version is a checkpoint folder, published as (version, folder, sha256).
/// </summary>
public sealed class LearnerActor : ReceiveActor, IWithStash
{
    sealed record Finished(object Result);

    readonly CampaignContext _context;
    readonly ITokenizer _tokenizer;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly ActorSystem _system = Context.System; // training runs off the actor thread, where Context is unavailable
    LlamaForCausalLM? _policy;
    int _version = -1;
    object? _running;
    IActorRef _replyTo = ActorRefs.Nobody;
    PolicyPublished? _lastPublished;
    PolicyPublished? _policyTrained; // the newest policy trained and saved (its critic may still be missing)

    public IStash Stash { get; set; } = null!;

    public LearnerActor(CampaignContext context)
    {
        _context = context;
        _tokenizer = context.Tokenizer;
        Idle();
    }

    void Idle()
    {
        Receive<RunWarmup>(cmd => Start(cmd, 0, () => Task.Run(TrainWarmup)));
        Receive<TrainIteration>(cmd => Start(cmd, cmd.Iteration, () => TrainIterationAsync(cmd.Iteration)));
    }

    // The coordinator repeats a training command until it is answered (this learner may have died and been
    // restarted meanwhile): a repeat of finished work gets the same answer, a repeat of running work waits for it.
    void Start(object command, int version, Func<Task<PolicyPublished>> work)
    {
        if (_lastPublished?.Version == version)
        {
            Sender.Tell(_lastPublished);
            return;
        }
        _running = command;
        _replyTo = Sender;
        work().ContinueWith(t => new Finished(t.IsCompletedSuccessfully
                ? t.Result
                : TrainingFailure(t.Exception?.GetBaseException())))
            .PipeTo(Self);
        Become(Busy);
    }

    /// <summary>A failed training run as the coordinator reads it: one line, permanent when retrying cannot help (the
    /// served log-probs are not the learner's).</summary>
    static TrainingFailed TrainingFailure(Exception? e)
    {
        var reason = e?.Message.ReplaceLineEndings(" ") ?? "training failed";
        return new TrainingFailed(reason, Permanent: reason.StartsWith(LogProbParity.FailurePrefix, StringComparison.Ordinal));
    }

    void Busy()
    {
        Receive<Finished>(f =>
        {
            if (f.Result is PolicyPublished published) _lastPublished = published;
            _replyTo.Tell(f.Result);
            _running = null;
            Stash.UnstashAll();
            Become(Idle);
        });
        ReceiveAny(m =>
        {
            if (m.Equals(_running)) _replyTo = Sender;
            else Stash.Stash();
        });
    }

    void Progress(string phase, int iteration, int done, int total) =>
        _system.EventStream.Publish(new CampaignProgress(phase, iteration, done, total));

    PolicyPublished TrainWarmup()
    {
        var clock = Stopwatch.StartNew();
        var c = _context.Config;
        if (c.Warmup.FromCheckpoint.Length > 0)
        {
            var (model, tokenizer, _) = Checkpoint.Load(c.Warmup.FromCheckpoint, c.Model.Device);
            if (model.Config != _context.ModelConfig() || !SameTokenizer(tokenizer, _tokenizer))
            {
                model.Dispose();
                throw new InvalidDataException($"warmup.from-checkpoint {c.Warmup.FromCheckpoint} does not match the model settings of this campaign");
            }
            _policy?.Dispose();
            _policy = model;
            _log.Info("warm-up: starting from {FromCheckpoint}", c.Warmup.FromCheckpoint);
            return Publish(0, new TrainingReport(0, 0, double.NaN, double.NaN, double.NaN, 0), clock);
        }
        _policy?.Dispose();
        _policy = null;
        var warmup = Warmup.Train(_context.InitialPolicy, c, _context.Setup, _tokenizer, out var policy,
            (done, total) => { if (done % 10 == 0 || done == total) Progress("warmup", 0, done, total); });
        _policy = policy;
        if (warmup.Traces == 0)
            _log.Info("warm-up: none (warmup.share = 0): v0 is {Policy}", _context.PolicyCheckpoint ?? "the untrained character model");
        else _log.Info("warm-up: {Traces} traces from {Tasks} puzzles", warmup.Traces, warmup.Tasks);
        return Publish(0, new TrainingReport(warmup.Traces, 0, warmup.FirstLoss, warmup.LastLoss, double.NaN, 0), clock);
    }

    async Task<PolicyPublished> TrainIterationAsync(int iteration)
    {
        var clock = Stopwatch.StartNew();
        var c = _context.Config;
        var (examples, newExamples, sources, window) = await PreferenceLearning.CollectAsync(c, iteration,
            i => TreeQueries.IterationTreesAsync(_system, c.Name, i), _tokenizer);
        if (PreferenceLearning.UsesSolutionBuffer(c))
            _log.Info("iteration {Iteration}: solution buffer: {SolvedTasks} solved tasks, {SolvedBefore} of them last solved before this iteration",
                iteration, sources.DistinctBy(t => t.TaskId).Count(), sources.GroupBy(t => t.TaskId).Count(g => g.Max(t => t.Iteration) < iteration));
        var pairs = PairDiagnostics.Of(c.Preferences.Extractor, examples, sources.ToDictionary(t => t.TreeId),
            (prompt, candidate) => PreferenceData.Encode(_tokenizer, prompt, candidate).StepOf.Length);
        if (pairs.Pairs > 0)
            _log.Info("iteration {Iteration}: {Pairs} pairs: {InvalidRejected} with an invalid rejected step ({InvalidRejectedShare:P0} of those found), {SameFirstStep} beginning with the same step, " +
                      "|score gap| bins [0,0.1) [0.1,0.25) [0.25,0.5) [0.5,1]: {ScoreGapBins}", iteration, pairs.Pairs,
                      pairs.RejectedInvalidShare is { } s ? (int)Math.Round(s * pairs.Pairs) : 0, pairs.RejectedInvalidShare ?? 0, pairs.SameFirstStep,
                      string.Join(" ", pairs.ScoreGapBins ?? []));
        // A first batch of this iteration's generated steps: their stored log-probs are the generating policy's.
        var newest = LogProbParity.Steps(window.Where(t => t.Iteration == iteration)).Take(c.Learner.BatchSize).ToList();
        examples.AddRange(PreferenceLearning.Import(c.Learner, message => _log.Warning(message)));
        return await Task.Run(() =>
        {
            // A retry after the critic failed (a disk error) keeps the policy already trained and saved for this
            // iteration instead of training it a second time.
            var published = _policyTrained?.Version == iteration ? _policyTrained : TrainPreferences(iteration, examples, newExamples, newest, clock, pairs);
            _policyTrained = published;
            return CriticTargets.IsTrained(c.Search.Critic) ? published with { Critic = TrainCritic(iteration, window) } : published;
        });
    }

    /// <summary>
    /// The critic of search.critic = value | prm, trained on the window's trees after the policy: from the previous
    /// iteration's critic, or (the first time) from the warm-up policy's weights with a new head. Published with the
    /// policy; the coordinator has every critic actor load it before the next iteration's search.
    /// </summary>
    CriticReport TrainCritic(int iteration, IReadOnlyList<PreferenceTree> trees)
    {
        var clock = Stopwatch.StartNew();
        var c = _context.Config;
        var kind = c.Search.Critic;
        var (train, heldOut) = CriticTargets.Split(trees, kind, c.Critic.HeldOutShare, c.Critic.MaxExamples, c.Seed + iteration);
        var previous = _context.CriticDir(iteration - 1);
        using var critic = iteration > 1 && Directory.Exists(previous)
            ? CriticModel.Load(previous, c.Model.Device)
            : CriticModel.Create(Checkpoint.Load(_context.CheckpointDir(0), c.Model.Device).Model, _tokenizer, kind, c.Seed + iteration);
        var trainPairs = train.Select(e => (e.State, e.Target)).ToList();
        var heldOutPairs = heldOut.Select(e => (e.State, e.Target)).ToList();
        var before = critic.Loss(heldOutPairs);
        _log.Info("iteration {Iteration}: training the {Kind} critic on {Examples} examples ({HeldOut} held out)", iteration, kind, train.Count, heldOut.Count);
        var epochs = critic.Train(trainPairs, heldOutPairs, c.Critic.Epochs,
            new TrainerOptions(c.Critic.LearningRate, BatchSize: c.Critic.BatchSize), new Random(c.Seed + iteration),
            (done, total) => { if (done % 10 == 0 || done == total) Progress("train-critic", iteration, done, total); });
        foreach (var e in epochs) _log.Info("iteration {Iteration} critic epoch {Epoch}: loss {Loss:F4}, held-out loss {HeldOutLoss:F4}", iteration, e.Epoch, e.Loss, e.HeldOutLoss);
        var dir = _context.CriticDir(iteration);
        var sha = critic.Save(dir, iteration, _context.Setup.Environment.Name);
        return new CriticReport(iteration, kind, dir, sha, train.Count, heldOut.Count, epochs.FirstOrDefault()?.Loss ?? double.NaN,
            epochs.LastOrDefault()?.Loss ?? double.NaN, before, epochs.Count > 0 ? epochs[^1].HeldOutLoss : before,
            CriticModel.ConstantLoss(kind, trainPairs.Select(p => p.Target).ToList(), heldOutPairs.Select(p => p.Target).ToList()),
            clock.Elapsed.TotalSeconds);
    }

    /// <param name="newExamples">how many of the examples come from this iteration's trees (the rest from the window before it, or imported)</param>
    /// <param name="pairs">what the examples from the trees are (<see cref="PairDiagnostics"/>), for summary.json</param>
    /// <param name="newest">a first batch of this iteration's generated steps, whose stored log-probs are compared with the learner's (<see cref="LogProbParity"/>)</param>
    PolicyPublished TrainPreferences(int iteration, IReadOnlyList<PreferenceExample> examples, int newExamples, IReadOnlyList<GeneratedStep> newest,
        Stopwatch clock, PairReport pairs)
    {
        var c = _context.Config;
        if (_policy is null)
        {
            // A restarted learner (its process or node died) resumes from the checkpoint this iteration starts from.
            var (model, _, meta) = Checkpoint.Load(_context.CheckpointDir(iteration - 1), c.Model.Device);
            (_policy, _version) = (model, meta.PolicyVersion);
            _log.Info("checkpoint: learner resumed from policy v{Version} ({CheckpointDir})", _version, _context.CheckpointDir(iteration - 1));
        }
        if (LearnerSettings.Lora(c.Learner) is { } lora)
        {
            // The adapter is attached once, on v0, and trained on from then on; a resumed learner loaded it with its checkpoint.
            if (_policy.Lora is null)
            {
                _policy.AttachLora(lora, c.Seed);
                _log.Info("iteration {Iteration}: LoRA rank {Rank} on {Modules}: {TrainableWeights} of {Weights} weights train", iteration, lora.Rank, string.Join(",", lora.ModuleNames),
                    _policy.TrainableParameters().Sum(p => p.numel()), _policy.ParameterCount());
            }
            else if (!_policy.Lora.SameShape(lora))
                throw new InvalidDataException($"the policy's adapter has rank {_policy.Lora.Rank} on {string.Join(",", _policy.Lora.ModuleNames)}, learner.lora asks for rank {lora.Rank} on {string.Join(",", lora.ModuleNames)}");
        }
        else if (_policy.Lora is not null)
            throw new InvalidDataException($"{_context.CheckpointDir(iteration - 1)} is a LoRA adapter, but learner.lora.rank = 0 (full fine-tuning): merge it first (selfplay model merge)");
        _log.Info("iteration {Iteration}: training {Loss} on {Examples} {Extractor} examples ({NewExamples} from this iteration's trees)",
            iteration, c.Learner.Loss, examples.Count, c.Preferences.Extractor, newExamples);
        var parity = CheckParity(iteration, newest);
        LlamaForCausalLM? reference = null;
        // A LoRA policy is its own reference (PreferenceLearning.Train): its base is v0, its state before training the previous policy.
        if (PreferenceLearning.ReferenceOf(c.Learner) == ReferenceSource.Model && _policy.Lora is null)
            (reference, _, _) = Checkpoint.Load(_context.CheckpointDir(c.Learner.Reference == "previous" ? _version : 0), c.Model.Device);
        IReadOnlyList<EpochStats> stats;
        LearnerDiagnostics diagnostics;
        using (reference)
            (stats, diagnostics) = PreferenceLearning.Train(_policy, reference, examples, c, iteration, _tokenizer,
                Path.Combine(_context.RunDir, "learner", $"iteration-{iteration}"),
                (done, total) => { if (done % 5 == 0 || done == total) Progress("train", iteration, done, total); }, message => _log.Info(message));
        foreach (var s in stats)
            _log.Info("iteration {Iteration} epoch {Epoch}: loss {Loss:F4}, reward accuracy {RewardAccuracy:F3}, margin {RewardMargin:F3}, " +
                      "ranking accuracy {RankingAccuracy:F3} (length-normalised {RankingAccuracyNormalized:F3})",
                new object[] { iteration, s.Epoch, s.Loss, s.RewardAccuracy, s.RewardMargin, s.RankingAccuracy, s.RankingAccuracyNormalized });
        _log.Info("iteration {Iteration}: ranking accuracy {RankingAccuracyBefore:F3} -> {RankingAccuracy:F3}, " +
                  "idealized {IdealizedRankingAccuracy:F3}, flipped {FlippedToCorrect} to correct and {FlippedToIncorrect} to incorrect",
            iteration, diagnostics.RankingAccuracyBefore, diagnostics.RankingAccuracy, diagnostics.IdealizedRankingAccuracy,
            diagnostics.FlippedToCorrect, diagnostics.FlippedToIncorrect);
        return Publish(iteration, new TrainingReport(examples.Count, newExamples, stats.FirstOrDefault()?.Loss ?? double.NaN,
            stats.LastOrDefault()?.Loss ?? double.NaN, stats.LastOrDefault()?.RewardAccuracy ?? double.NaN, 0, diagnostics, pairs, parity), clock);
    }

    /// <summary>
    /// The stored log-probs of the newest steps against this learner's forward under the policy that generated them
    /// (the policy before this iteration's training). With inference.backend = openai a mean above
    /// inference.logprob-tolerance stops the campaign: the steps were not generated by this version.
    /// </summary>
    LogProbParity? CheckParity(int iteration, IReadOnlyList<GeneratedStep> newest)
    {
        var inference = _context.Config.InferenceBackend;
        _policy!.eval();
        var parity = LogProbParity.Measure(_policy, _tokenizer, newest);
        if (parity is null) return null;
        _log.Info("iteration {Iteration}: log-prob parity ({Backend} backend): mean |stored - learner| {MeanAbsDifference:G3}, max {MaxAbsDifference:G3}, over {Tokens} tokens of {Steps} steps",
            iteration, inference.Backend, parity.MeanAbsDifference, parity.MaxAbsDifference, parity.Tokens, parity.StepCount);
        if (inference.Remote && inference.LogProbTolerance > 0 && parity.MeanAbsDifference > inference.LogProbTolerance)
            throw new InvalidDataException($"{LogProbParity.FailurePrefix} the server's log-probs differ from the learner's by {parity.MeanAbsDifference:G3} on average " +
                                           $"(max {parity.MaxAbsDifference:G3}, {parity.Tokens} tokens of iteration {iteration}), above inference.logprob-tolerance = " +
                                           $"{inference.LogProbTolerance:G3}: the server is not serving policy v{iteration - 1} as the learner has it");
        return parity;
    }

    PolicyPublished Publish(int version, TrainingReport report, Stopwatch clock)
    {
        var dir = _context.CheckpointDir(version);
        var sha = Checkpoint.Save(_policy!, _tokenizer, dir, version, _context.Setup.Environment.Name, baseDirectory: _context.CheckpointDir(0));
        _version = version;
        return new PolicyPublished(version, dir, sha, report with { WallSeconds = clock.Elapsed.TotalSeconds });
    }

    /// <summary>Whether two tokenizers give the same ids (a checkpoint to start from must use the campaign's).</summary>
    static bool SameTokenizer(ITokenizer a, ITokenizer b)
    {
        const string probe = "Input: 4 5 6 10\n5 * 4 = 20 (left: 6 10 20)\nAnswer: (5 * 4) + (10 - 6) = 24\n abcXYZ[]{}";
        return a.VocabSize == b.VocabSize && a.BosId == b.BosId && a.Encode(probe).AsSpan().SequenceEqual(b.Encode(probe));
    }

    protected override void PostStop() => _policy?.Dispose();
}
