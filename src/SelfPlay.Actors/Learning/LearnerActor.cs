using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Training;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
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
    sealed record Finished(IActorRef ReplyTo, object Result);

    readonly CampaignContext _context;
    readonly CharTokenizer _tokenizer = new();
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly ActorSystem _system = Context.System; // training runs off the actor thread, where Context is unavailable
    LlamaForCausalLM? _policy;
    int _version = -1;

    public IStash Stash { get; set; } = null!;

    public LearnerActor(CampaignContext context)
    {
        _context = context;
        Idle();
    }

    void Idle()
    {
        Receive<RunWarmup>(_ => Start(() => Task.Run(Warmup)));
        Receive<TrainIteration>(cmd => Start(() => TrainIterationAsync(cmd.Iteration)));
    }

    void Start(Func<Task<PolicyPublished>> work)
    {
        var replyTo = Sender;
        work().ContinueWith(t => new Finished(replyTo, t.IsCompletedSuccessfully
                ? t.Result
                : new Status.Failure(t.Exception?.GetBaseException() ?? new Exception("training failed"))))
            .PipeTo(Self);
        Become(Busy);
    }

    void Busy()
    {
        Receive<Finished>(f =>
        {
            f.ReplyTo.Tell(f.Result);
            Stash.UnstashAll();
            Become(Idle);
        });
        ReceiveAny(_ => Stash.Stash());
    }

    void Progress(string phase, int iteration, int done, int total) =>
        _system.EventStream.Publish(new CampaignProgress(phase, iteration, done, total));

    PolicyPublished Warmup()
    {
        var clock = Stopwatch.StartNew();
        var c = _context.Config;
        if (c.Warmup.FromCheckpoint.Length > 0)
        {
            var (model, tokenizer, _) = Checkpoint.Load(c.Warmup.FromCheckpoint, c.Model.Device);
            if (model.Config != _context.ModelConfig(_tokenizer) || tokenizer.Alphabet != _tokenizer.Alphabet)
            {
                model.Dispose();
                throw new InvalidDataException($"warmup.from-checkpoint {c.Warmup.FromCheckpoint} does not match the model settings of this campaign");
            }
            _policy?.Dispose();
            _policy = model;
            _log.Info("warm-up: starting from {0}", c.Warmup.FromCheckpoint);
            return Publish(0, new TrainingReport(0, 0, double.NaN, double.NaN, double.NaN, 0), clock);
        }
        var random = new Random(c.Seed);
        var env = _context.Setup.Environment;
        var train = _context.Setup.Train.ToArray();
        new Random(c.Seed + 1).Shuffle(train);
        var puzzles = train.Take(Math.Max(1, (int)Math.Round(train.Length * c.Warmup.Share))).ToList();
        var sequences = new List<ScoredSequence>();
        foreach (var task in puzzles)
        {
            var seen = new HashSet<string>();
            for (var attempt = 0; attempt < c.Warmup.TracesPerPuzzle * 4 && seen.Count < c.Warmup.TracesPerPuzzle; attempt++)
            {
                var trace = WarmupTraces.Build(env, task, random);
                if (trace is null) break;
                if (seen.Add(string.Concat(trace.Select(s => s.Text)))) sequences.Add(PolicyEncoding.Trace(_tokenizer, trace));
            }
        }
        _log.Info("warm-up: {0} traces from {1} puzzles", sequences.Count, puzzles.Count);

        _policy?.Dispose();
        _policy = new LlamaForCausalLM(_context.ModelConfig(_tokenizer), initSeed: c.Seed);
        _policy.to(c.Model.Device);
        using var trainer = new PolicyTrainer(_policy, new TrainerOptions(c.Warmup.LearningRate, BatchSize: c.Warmup.BatchSize));
        var stats = trainer.TrainSft(sequences, c.Warmup.Epochs, random, (done, total) => { if (done % 10 == 0 || done == total) Progress("warmup", 0, done, total); });
        return Publish(0, new TrainingReport(sequences.Count, 0, stats.FirstOrDefault()?.Loss ?? double.NaN,
            stats.LastOrDefault()?.Loss ?? double.NaN, double.NaN, 0), clock);
    }

    async Task<PolicyPublished> TrainIterationAsync(int iteration)
    {
        var clock = Stopwatch.StartNew();
        var c = _context.Config;
        var examples = new List<PreferenceExample>();
        var newExamples = 0;
        for (var i = Math.Max(1, iteration - c.Learner.Window + 1); i <= iteration; i++)
        {
            var trees = await TreeQueries.IterationTreesAsync(_system, c.Name, i);
            var extracted = PreferenceLearning.Extract(trees, c.Preferences, c.Seed + i);
            examples.AddRange(extracted);
            if (i == iteration) newExamples = extracted.Count;
        }
        examples.AddRange(PreferenceLearning.Import(c.Learner, message => _log.Warning(message)));
        return await Task.Run(() => TrainPreferences(iteration, examples, newExamples, clock));
    }

    /// <param name="newExamples">how many of the examples come from this iteration's trees (the rest from the window before it, or imported)</param>
    PolicyPublished TrainPreferences(int iteration, IReadOnlyList<PreferenceExample> examples, int newExamples, Stopwatch clock)
    {
        var c = _context.Config;
        if (_policy is null) throw new InvalidOperationException("the learner has no policy: run the warm-up first");
        _log.Info($"iteration {iteration}: training {c.Learner.Loss} on {examples.Count} {c.Preferences.Extractor} examples ({newExamples} from this iteration's trees)");
        LlamaForCausalLM? reference = null;
        if (PreferenceLearning.ReferenceOf(c.Learner) == ReferenceSource.Model)
            (reference, _, _) = Checkpoint.Load(_context.CheckpointDir(c.Learner.Reference == "previous" ? _version : 0), c.Model.Device);
        IReadOnlyList<EpochStats> stats;
        LearnerDiagnostics diagnostics;
        using (reference)
            (stats, diagnostics) = PreferenceLearning.Train(_policy, reference, examples, c, iteration, _tokenizer,
                Path.Combine(_context.RunDir, "learner", $"iteration-{iteration}"),
                (done, total) => { if (done % 5 == 0 || done == total) Progress("train", iteration, done, total); });
        foreach (var s in stats)
            _log.Info($"iteration {iteration} epoch {s.Epoch}: loss {s.Loss:F4}, reward accuracy {s.RewardAccuracy:F3}, margin {s.RewardMargin:F3}, " +
                      $"ranking accuracy {s.RankingAccuracy:F3} (length-normalised {s.RankingAccuracyNormalized:F3})");
        _log.Info($"iteration {iteration}: ranking accuracy {diagnostics.RankingAccuracyBefore:F3} -> {diagnostics.RankingAccuracy:F3}, " +
                  $"idealized {diagnostics.IdealizedRankingAccuracy:F3}, flipped {diagnostics.FlippedToCorrect} to correct and {diagnostics.FlippedToIncorrect} to incorrect");
        return Publish(iteration, new TrainingReport(examples.Count, newExamples, stats.FirstOrDefault()?.Loss ?? double.NaN,
            stats.LastOrDefault()?.Loss ?? double.NaN, stats.LastOrDefault()?.RewardAccuracy ?? double.NaN, 0, diagnostics), clock);
    }

    PolicyPublished Publish(int version, TrainingReport report, Stopwatch clock)
    {
        var dir = _context.CheckpointDir(version);
        var sha = Checkpoint.Save(_policy!, _tokenizer, dir, version, _context.Setup.Environment.Name);
        _version = version;
        return new PolicyPublished(version, dir, sha, report with { WallSeconds = clock.Elapsed.TotalSeconds });
    }

    protected override void PostStop() => _policy?.Dispose();
}
