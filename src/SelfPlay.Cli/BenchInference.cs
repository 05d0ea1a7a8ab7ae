using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Inference;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Search;
using SelfPlay.Core.Search;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay bench inference`: how full the inference actor's batches are and how many tokens per second it generates
/// when it serves 1 search at a time vs N concurrent searches (the campaign's search workers). The same trees are
/// searched at every concurrency (same tasks, same per-task seeds; samples do not depend on batch composition), each
/// concurrency with a fresh inference actor (an empty prefix cache), after a short unmeasured pass that pays for JIT.
/// The policy is the configured model with random weights (default), trained from scratch by a short supervised warm-up
/// (--warmup-epochs N, as `bench models`), or a checkpoint (--checkpoint DIR). With --serve the same searches also run
/// with inference.backend = openai against `selfplay serve`'s server on the same policy, started in this process on a
/// free port of 127.0.0.1 (real HTTP), and the JSON compares the two at each concurrency. JSON on stdout.
/// </summary>
public static class BenchInference
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var config = ConfigLoader.Parse(ConfigLoader.Build(a.Get("--config"), a.All("--set")));
        var trees = a.PositiveInt("--trees", 32);
        var epochs = a.Get("--warmup-epochs") is { } e ? int.TryParse(e, out var n) && n >= 0 ? n
            : throw new UsageException($"--warmup-epochs must be 0 or more, got '{e}'") : 0;
        var levels = (a.Get("--concurrency") ?? "1,16").Split(',').Select(s => int.TryParse(s, out var n) && n > 0 ? n
            : throw new UsageException($"--concurrency must be a comma-separated list of positive integers, got '{a.Get("--concurrency")}'")).ToList();
        TorchSharp.torch.set_num_threads(config.Model.Threads);
        var setup = SelfPlayCommand.Environments().Create(config.Environment);
        if (setup.Train.Count == 0) throw new UsageException("the environment has no training tasks to search");
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-bench-inference-" + Guid.NewGuid().ToString("N"));
        var context = new CampaignContext(config, setup, dir);
        var clock = Stopwatch.StartNew();
        // The policy: a given checkpoint, or the configured model with random weights (seeded), or trained from scratch
        // by a short supervised warm-up (--warmup-epochs N, as bench models).
        var tokenizer = context.Tokenizer;
        string policyDir, sha, init;
        long parameters;
        int layers, hidden;
        if (a.Get("--checkpoint") is { } checkpoint)
        {
            var loaded = Checkpoint.Load(checkpoint);
            using (loaded.Model) (policyDir, sha, parameters, layers, hidden) = (checkpoint, loaded.Meta.Sha256, loaded.Model.ParameterCount(),
                loaded.Model.Config.NumHiddenLayers, loaded.Model.Config.HiddenSize);
            init = $"checkpoint {checkpoint}";
        }
        else
        {
            if (epochs > 0) Console.Error.WriteLine($"bench inference: warm-up training, {epochs} epochs");
            using var model = epochs > 0 ? BenchModels.WarmedUp(context, tokenizer, epochs) : new LlamaForCausalLM(context.ModelConfig(), initSeed: 1);
            policyDir = context.CheckpointDir(0);
            sha = Checkpoint.Save(model, tokenizer, policyDir, 0, setup.Environment.Name);
            (parameters, layers, hidden) = (model.ParameterCount(), model.Config.NumHiddenLayers, model.Config.HiddenSize);
            init = epochs > 0 ? $"trained from scratch: supervised warm-up on 240 solver traces, {epochs} epochs" : "random (seed 1)";
        }
        var system = ActorSystem.Create("bench-inference", SelfPlayHost.AkkaConfig(config.Persistence, dir, serilog: false));
        try
        {
            var policy = new LoadPolicy(0, policyDir, sha);
            await MeasureAsync(system, context, policy, Math.Min(2, trees), 2, "jit"); // unmeasured: compiles the search and actor paths
            var runs = new List<Run>();
            foreach (var level in levels)
            {
                Console.Error.WriteLine($"bench inference: {trees} trees with {level} concurrent searches ({clock.Elapsed.TotalSeconds:F0} s)");
                runs.Add(await MeasureAsync(system, context, policy, trees, level, $"c{level}"));
            }
            var served = new List<Run>();
            if (a.Has("--serve"))
            {
                // A fresh server per concurrency, as the local runs get a fresh inference actor: an empty prefix cache.
                async Task<Run> ServeAsync(int level, int count, string name)
                {
                    using var engine = new SelfPlay.Models.Generation.GenerationEngine(policyDir, "base", config.Model.Device, config.Model.DType,
                        config.Model.PrefixCacheMb, config.Actors.InferenceBatchRows);
                    await using var app = Serve.OpenAiServer.Build(engine, "127.0.0.1", 0, apiKey: null);
                    await app.StartAsync();
                    var server = new SelfPlay.Core.Config.InferenceConfig("openai", app.Urls.First() + "/v1", "base", MaxConcurrency: Math.Max(16, level * 4));
                    var run = await MeasureAsync(system, context, policy, count, level, name, server);
                    await app.StopAsync();
                    return run;
                }
                await ServeAsync(2, Math.Min(2, trees), "jit-serve");
                foreach (var level in levels)
                {
                    Console.Error.WriteLine($"bench inference: {trees} trees with {level} concurrent searches through selfplay serve ({clock.Elapsed.TotalSeconds:F0} s)");
                    served.Add(await ServeAsync(level, trees, $"serve-c{level}"));
                }
            }
            var (first, last) = (runs[0], runs[^1]);
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                bench = "inference",
                device = config.Model.Device,
                threads = config.Model.Threads,
                model = new { layers, hidden, parameters, init },
                algorithm = config.Search.Algorithm,
                simulations = config.Search.Simulations,
                expansions = config.Search.Expansions,
                batchRows = config.Actors.InferenceBatchRows,
                prefixCacheMb = config.Model.PrefixCacheMb,
                trees,
                runs,
                // --serve: the same searches generating through selfplay serve (HTTP, inference.backend = openai)
                serve = served.Count == 0 ? null : served,
                serveVsLocalTokensPerSecond = served.Count == 0 ? null : served.Select((r, i) => new { r.Concurrency, ratio = Ratio(r.TokensPerSecond, runs[i].TokensPerSecond) }).ToList(),
                // last vs first concurrency of --concurrency (16 vs 1 by default), from this one run
                tokensPerSecondRatio = Ratio(last.TokensPerSecond, first.TokensPerSecond),
                batchFillRatio = Ratio(last.BatchFill, first.BatchFill),
                treesPerSecondRatio = Ratio(last.TreesPerSecond, first.TreesPerSecond),
                wallSeconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
            }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
            return 0;
        }
        finally
        {
            await system.Terminate();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    static double Ratio(double a, double b) => b == 0 ? 0 : Math.Round(a / b, 3);

    /// <param name="Tokens">generated tokens: those of the searched trees' nodes</param>
    /// <param name="Requests">proposal requests the searches made (one state each; a server gets one HTTP request per request)</param>
    /// <param name="Batches">the inference actor's batches (with a server: the searches' calls, which the server batches)</param>
    public sealed record Run(int Concurrency, int Trees, int Nodes, double WallSeconds, double TreesPerSecond, long Batches, long Rows,
        double MeanRowsPerBatch, double BatchFill, long Tokens, double TokensPerSecond, double InferenceBusyShare, long Requests, double RequestsPerSecond);

    /// <summary>Counts the proposal requests that pass through.</summary>
    sealed class CountingProposer(IStepProposer inner) : IStepProposer
    {
        long _requests;
        public long Requests => Interlocked.Read(ref _requests);

        public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default)
        {
            Interlocked.Add(ref _requests, requests.Count);
            return inner.ProposeAsync(requests, cancellationToken);
        }
    }

    /// <summary>Searches the first <paramref name="trees"/> training tasks with <paramref name="concurrency"/> searches at a
    /// time, through a fresh inference actor and critic actor, as the search workers of a node do.</summary>
    static async Task<Run> MeasureAsync(ActorSystem system, CampaignContext context, LoadPolicy policy, int trees, int concurrency, string name,
        SelfPlay.Core.Config.InferenceConfig? server = null)
    {
        var (config, env) = (context.Config, context.Setup.Environment);
        var timeout = context.AskTimeout;
        var inference = system.ActorOf(Props.Create(() => new InferenceActor(config.Model.Device, env.StepStop, config.Model.MaxStepTokens,
            config.Actors.InferenceBatchRows, config.Model.DType, config.Model.PrefixCacheMb, server)).WithDispatcher(SelfPlayHost.PinnedDispatcher), "inference-" + name);
        var critic = system.ActorOf(Props.Create(() => new CriticActor(new VerifierEvaluator(env))), "critic-" + name);
        try
        {
            if (await inference.Ask<object>(policy, timeout) is PolicyLoadFailed failed) throw new InvalidDataException(failed.Reason);
            var proposer = new CountingProposer(new ActorStepProposer(inference, timeout));
            var evaluator = new ActorNodeEvaluator(critic, "verifier", timeout);
            var tasks = Enumerable.Range(0, trees).Select(k => context.Setup.Train[k % context.Setup.Train.Count]).ToList();
            var (next, nodes) = (-1, 0);
            long tokens = 0;
            async Task Searcher()
            {
                for (var k = Interlocked.Increment(ref next); k < tasks.Count; k = Interlocked.Increment(ref next))
                {
                    var tree = await SearchAlgorithms.Create(config.Search, env, proposer, evaluator, config.Environment.MaxSteps, policy.Version,
                        Seeds.Mix(config.Seed, 1, k)).SearchAsync($"bench/{k}", tasks[k]);
                    Interlocked.Add(ref nodes, tree.Nodes.Count);
                    Interlocked.Add(ref tokens, tree.Nodes.Sum(n => (long)n.TokenIds.Length));
                }
            }
            await inference.Ask<InferenceStats>(GetInferenceStats.Instance, timeout); // resets the counters (the load is not counted)
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Searcher)));
            var wall = clock.Elapsed.TotalSeconds;
            var s = await inference.Ask<InferenceStats>(GetInferenceStats.Instance, timeout);
            return new Run(concurrency, trees, nodes, Math.Round(wall, 3), Math.Round(trees / wall, 3), s.Batches, s.Rows,
                s.Batches == 0 ? 0 : Math.Round(s.Rows / (double)s.Batches, 2),
                s.Batches == 0 ? 0 : Math.Round(s.Rows / (double)(s.Batches * (long)s.MaxRows), 4), // as the campaign's summary.json
                tokens, Math.Round(tokens / wall, 1), Math.Round(s.BusySeconds / wall, 3), proposer.Requests, Math.Round(proposer.Requests / wall, 1));
        }
        finally
        {
            await Task.WhenAll(inference.GracefulStop(timeout), critic.GracefulStop(timeout));
        }
    }
}
