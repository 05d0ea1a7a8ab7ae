using System.Diagnostics;
using System.Text.Json;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Search;
using SelfPlay.Core.Training;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using static TorchSharp.torch;

namespace SelfPlay.Cli;

/// <summary>
/// <c>selfplay bench models</c>: the model layer's speed figures from one run, printed as JSON — KV cache vs full
/// recomputation, prefix cache vs none in the campaign's search (Game-of-24 MCTS unless --config says otherwise), batch
/// scaling of generation, and training forward+backward against the same architecture in PyTorch (when python3 with
/// torch is installed). Uses the campaign's model settings (reference.conf under --config), on the CPU.
/// </summary>
public static class BenchModels
{
    public static int Run(CliArgs a)
    {
        var hocon = ConfigLoader.Build(a.Get("--config"), a.All("--set"));
        var config = ConfigLoader.Parse(hocon);
        set_num_threads(config.Model.Threads);
        var setup = SelfPlayCommand.Environments().Create(config.Environment);
        var context = new CampaignContext(config, setup, Path.GetTempPath());
        var clock = Stopwatch.StartNew();
        var tokenizer = context.Tokenizer;
        Console.Error.WriteLine("bench models: warm-up");
        using var model = a.Get("--checkpoint") is { } dir ? Checkpoint.Load(dir).Model : WarmedUp(context, tokenizer);
        var warmupSeconds = clock.Elapsed.TotalSeconds;

        object Timed(string name, Func<object> measure)
        {
            Console.Error.WriteLine($"bench models: {name} ({clock.Elapsed.TotalSeconds:F0} s)");
            return measure();
        }
        var report = new Dictionary<string, object>
        {
            ["device"] = "cpu",
            ["threads"] = config.Model.Threads,
            ["model"] = new { layers = model.Config.NumHiddenLayers, hidden = model.Config.HiddenSize, heads = model.Config.NumAttentionHeads,
                kvHeads = model.Config.NumKeyValueHeads, vocab = model.Config.VocabSize, parameters = model.ParameterCount() },
            ["warmupSeconds"] = Math.Round(warmupSeconds, 1),
            ["kvCache"] = Timed("KV cache", () => KvCache(model, tokenizer, setup)),
            ["prefixCache"] = Timed("prefix cache", () => PrefixCacheSearch(model, tokenizer, context, int.Parse(a.Get("--puzzles") ?? "6"))),
            ["batching"] = Timed("batching", () => Batching(model, tokenizer, setup)),
            ["training"] = Timed("training", () => Training(model.Config)),
        };
        report["wallSeconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        // A figure of nothing measured (a division by zero) prints as NaN or Infinity instead of failing the whole report.
        Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
        return 0;
    }

    /// <summary>A short supervised warm-up, so the search below writes well-formed steps and grows real trees.</summary>
    internal static LlamaForCausalLM WarmedUp(CampaignContext context, ITokenizer tokenizer, int epochs = 6)
    {
        var random = new Random(1);
        var env = context.Setup.Environment;
        var traces = context.Setup.Train.Take(240)
            .Select(t => WarmupTraces.Build(env, t, random)).OfType<IReadOnlyList<TextSegment>>()
            .Select(t => PolicyEncoding.Trace(tokenizer, t)).ToList();
        var model = new LlamaForCausalLM(context.ModelConfig(), initSeed: 1);
        using var trainer = new PolicyTrainer(model, new TrainerOptions(3e-3, BatchSize: 32));
        trainer.TrainSft(traces, epochs, random, (step, total) => { if (step % 16 == 0) Console.Error.WriteLine($"bench models: warm-up step {step}/{total}"); });
        return model;
    }

    static double Rate(double tokens, TimeSpan elapsed) => Math.Round(tokens / elapsed.TotalSeconds, 1);

    /// <summary>Greedy decoding of the same tokens with the KV cache (Sampler) and by re-running the whole sequence each step.</summary>
    static object KvCache(LlamaForCausalLM model, ITokenizer tokenizer, SelfPlay.Core.Environments.EnvironmentSetup setup)
    {
        const int batch = 4, newTokens = 48;
        // Prompts of one length, so the recomputing baseline needs no padding.
        var prompts = setup.HeldOut.Select(t => PolicyEncoding.Prompt(tokenizer, setup.Environment.InitialState(t)))
            .GroupBy(p => p.Length).OrderByDescending(g => g.Count()).First().Take(batch).ToArray();
        var requests = prompts.Select(p => new SampleRequest(p, 1, 0, newTokens, [])).ToList();
        Sampler.Generate(model, requests, 0);
        var clock = Stopwatch.StartNew();
        var cached = Sampler.Generate(model, requests, 0);
        var withCache = clock.Elapsed;

        // Without a cache: every step forwards prompt + everything generated so far (same prompt length here).
        clock.Restart();
        var sequences = prompts.Select(p => p.ToList()).ToArray();
        var steps = cached.Max(s => s[0].TokenIds.Length);
        using (no_grad())
            for (var step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                var length = sequences.Max(s => s.Count);
                if (sequences.Any(s => s.Count != length)) throw new InvalidOperationException("bench prompts must have equal lengths");
                var ids = tensor(sequences.SelectMany(s => s.Select(i => (long)i)).ToArray(), [batch, length]);
                var next = model.Forward(ids)[.., -1, ..].argmax(-1).data<long>().ToArray();
                for (var b = 0; b < batch; b++) sequences[b].Add((int)next[b]);
            }
        var withoutCache = clock.Elapsed;
        var generated = cached.Sum(s => s[0].TokenIds.Length);
        var same = cached.Select((s, b) => s[0].TokenIds.SequenceEqual(sequences[b].Skip(prompts[b].Length).Take(s[0].TokenIds.Length))).All(x => x);
        var withRate = Rate(generated, withCache);
        var withoutRate = Rate(batch * steps, withoutCache);
        return new { batch, newTokens = steps, tokensPerSecondWithCache = withRate, tokensPerSecondWithoutCache = withoutRate,
            speedup = Math.Round(withRate / withoutRate, 2), sameTokens = same };
    }

    /// <summary>The campaign's search on a few tasks, once with the prefix cache and once without; the same seeds.</summary>
    static object PrefixCacheSearch(LlamaForCausalLM model, ITokenizer tokenizer, CampaignContext context, int puzzles)
    {
        var env = context.Setup.Environment;
        var tasks = context.Setup.Train.Take(puzzles).ToList();
        var floor = new DistinctPrefixes();
        GenerationStats Search(PrefixCache? cache, out int nodes, out TimeSpan elapsed)
        {
            var proposer = new PolicyStepProposer(model, tokenizer, env.StepStop, context.Config.Model.MaxStepTokens, cache);
            var recorder = new RecordingProposer(proposer, tokenizer, cache is null ? null : floor);
            var clock = Stopwatch.StartNew();
            nodes = 0;
            foreach (var task in tasks)
            {
                var tree = SearchAlgorithms.Create(context.Config.Search, env, recorder, new VerifierEvaluator(env), context.Config.Environment.MaxSteps, 0, Seeds.Of(task.Id))
                    .SearchAsync(task.Id, task).GetAwaiter().GetResult();
                nodes += tree.Nodes.Count;
            }
            elapsed = clock.Elapsed;
            return proposer.Stats;
        }
        using var cache = new PrefixCache(context.Config.Model.PrefixCacheMb * 1024L * 1024);
        var with = Search(cache, out var nodesWith, out var timeWith);
        var without = Search(null, out var nodesWithout, out var timeWithout);
        // No sharing at all: every sample forwards its whole prompt and each token it fed back (the sampler before prompts
        // and decoding were shared).
        var noSharing = without.PromptTokens + without.FedBackTokens;
        return new
        {
            environment = env.Name, search = context.Config.Search.Algorithm,
            puzzles, simulations = context.Config.Search.Simulations, expansions = context.Config.Search.Expansions,
            treeNodes = nodesWith, treeNodesWithoutCache = nodesWithout,
            forwardedWithPrefixCache = with.ForwardedTokens,
            forwardedWithoutPrefixCache = without.ForwardedTokens,
            forwardedWithoutAnySharing = noSharing,
            ratio = Math.Round((double)with.ForwardedTokens / without.ForwardedTokens, 3),
            ratioVsNoSharing = Math.Round((double)with.ForwardedTokens / noSharing, 3),
            // The least any cache could forward for these trees: each distinct token prefix the search asked the model
            // about once (every prompt, and every sample's prompt + tokens fed back), over every task's tree.
            forwardedFloor = floor.Count,
            withPrefixCacheOverFloor = Math.Round((double)with.ForwardedTokens / Math.Max(1, floor.Count), 3),
            // The decode steps are the same in both runs (same seeds, same trees); what the cache saves is prompt
            // prefill, the path above each expanded node. Samples of one state that begin alike are decoded once until
            // they part (in both runs): decodedTokens of the decodedTokensUnshared fed back went through the model.
            generatedTokens = with.GeneratedTokens,
            decodedTokens = with.ForwardedTokens - with.PrefilledTokens,
            decodedTokensUnshared = with.FedBackTokens,
            prefilledWithPrefixCache = with.PrefilledTokens,
            prefilledWithoutPrefixCache = without.PrefilledTokens,
            prefillRatio = Math.Round((double)with.PrefilledTokens / Math.Max(1, without.PrefilledTokens), 3),
            promptTokensReused = with.ReusedPromptTokens,
            searchSecondsWithCache = Math.Round(timeWith.TotalSeconds, 1),
            searchSecondsWithoutCache = Math.Round(timeWithout.TotalSeconds, 1),
            cacheMegabytes = Math.Round(cache.Bytes / 1048576.0, 1),
        };
    }

    /// <summary>Counts the distinct prefixes of token sequences: the nodes of their trie.</summary>
    sealed class DistinctPrefixes
    {
        readonly Dictionary<(int Parent, int Token), int> _children = [];

        public int Count => _children.Count;

        public void Add(IEnumerable<int> ids)
        {
            var node = 0;
            foreach (var id in ids)
            {
                if (!_children.TryGetValue((node, id), out var child)) _children[(node, id)] = child = _children.Count + 1;
                node = child;
            }
        }
    }

    /// <summary>The search's proposer, recording what it asks the model: a prompt, then each sample's tokens but the last
    /// (the last one sampled is never fed back).</summary>
    sealed class RecordingProposer(IStepProposer inner, ITokenizer tokenizer, DistinctPrefixes? prefixes) : IStepProposer
    {
        public async Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default)
        {
            var steps = await inner.ProposeAsync(requests, cancellationToken);
            if (prefixes is not null)
                for (var r = 0; r < requests.Count; r++)
                {
                    var prompt = PolicyEncoding.Prompt(tokenizer, requests[r].State);
                    prefixes.Add(prompt);
                    foreach (var step in steps[r]) prefixes.Add([.. prompt, .. step.TokenIds.SkipLast(1)]);
                }
            return steps;
        }
    }

    /// <summary>Sampled generation of distinct prompts at batch 1, 4 and 16, same number of new tokens per row.</summary>
    static object Batching(LlamaForCausalLM model, ITokenizer tokenizer, SelfPlay.Core.Environments.EnvironmentSetup setup)
    {
        const int newTokens = 32;
        var rates = new Dictionary<string, double>();
        foreach (var batch in new[] { 1, 4, 16 })
        {
            var requests = setup.HeldOut.Skip(10).Take(batch)
                .Select((t, i) => new SampleRequest(PolicyEncoding.Prompt(tokenizer, setup.Environment.InitialState(t)), 1, 1.0, newTokens, []) { Seed = i })
                .ToList();
            Sampler.Generate(model, requests, 0);
            var clock = Stopwatch.StartNew();
            var tokens = 0;
            var rounds = batch == 1 ? 4 : batch == 4 ? 2 : 1;
            for (var r = 0; r < rounds; r++) tokens += Sampler.Generate(model, requests, r).Sum(s => s[0].TokenIds.Length);
            rates[$"batch{batch}"] = Rate(tokens, clock.Elapsed);
        }
        return new { newTokens, tokensPerSecond = rates, batch16OverBatch1 = Math.Round(rates["batch16"] / rates["batch1"], 2) };
    }

    /// <summary>Forward+backward tokens/s of the campaign architecture, here and in PyTorch on the same machine and threads.</summary>
    static object Training(LlamaConfig config)
    {
        const int batch = 16, seq = 64, steps = 8;
        using var model = new LlamaForCausalLM(config, initSeed: 0);
        model.train();
        var ids = randint(0, config.VocabSize, [batch, seq], generator: new TorchSharp.torch.Generator(0)).DetachFromDisposeScope();
        void Step()
        {
            using var scope = NewDisposeScope();
            model.zero_grad();
            var logits = model.Forward(ids);
            var loss = nn.functional.cross_entropy(logits[.., ..^1, ..].reshape(-1, config.VocabSize), ids[.., 1..].reshape(-1));
            loss.backward();
        }
        Step(); Step();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < steps; i++) Step();
        var ours = Rate(batch * seq * steps, clock.Elapsed);
        ids.Dispose();

        var torchResult = RunPyTorch(config, batch, seq, steps);
        return torchResult is { } py
            ? new { batch, seq, tokensPerSecond = ours, pytorchTokensPerSecond = Math.Round(py.Rate, 1), pytorch = py.Version,
                ratio = Math.Round(ours / py.Rate, 2), skipped = (string?)null }
            : new { batch, seq, tokensPerSecond = ours, pytorchTokensPerSecond = double.NaN, pytorch = "", ratio = double.NaN,
                skipped = (string?)"no python3 with torch found (apt-get install python3-torch)" };
    }

    /// <summary>Runs bench/llama_train_bench.py with the first python3 that imports torch; null when there is none.</summary>
    static (double Rate, string Version)? RunPyTorch(LlamaConfig config, int batch, int seq, int steps)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "bench", "llama_train_bench.py");
        if (!File.Exists(script)) return null;
        var configFile = Path.GetTempFileName();
        File.WriteAllText(configFile, config.ToJson());
        try
        {
            foreach (var python in new[] { "python3", "/usr/bin/python3" })
            {
                try
                {
                    var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
                    foreach (var arg in new[] { script, configFile, $"{batch}", $"{seq}", $"{steps}", $"{get_num_threads()}" }) start.ArgumentList.Add(arg);
                    using var process = Process.Start(start)!;
                    var output = process.StandardOutput.ReadToEnd();
                    process.WaitForExit();
                    if (process.ExitCode != 0) continue;
                    using var json = JsonDocument.Parse(output);
                    return (json.RootElement.GetProperty("tokensPerSecond").GetDouble(), json.RootElement.GetProperty("torch").GetString() ?? "");
                }
                catch (System.ComponentModel.Win32Exception) { }
            }
            return null;
        }
        finally { File.Delete(configFile); }
    }
}
