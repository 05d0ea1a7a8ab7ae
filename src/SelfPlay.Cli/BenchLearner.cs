using System.Diagnostics;
using System.Text.Json;
using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Preferences;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay bench learner`: preference-training throughput against the raw forward + backward + AdamW step of the same
/// model on the same token batch, in one run, alternating so both see the same machine state; and LoRA (only the
/// adapter trains) against full fine-tuning, DPO steps of the same batch, with the optimizer state each keeps. Prints JSON.
/// </summary>
public static class BenchLearner
{
    public static int Run(CliArgs a)
    {
        int Positive(string name, int fallback) => a.Get(name) is { } v ? int.TryParse(v, out var n) && n > 0 ? n : throw new UsageException($"{name} must be a positive number, got '{v}'") : fallback;
        var pairs = Positive("--pairs", 32);
        var steps = Positive("--steps", 20);
        var losses = (a.Get("--losses") ?? "dpo,step-apo,tpo").Split(',', StringSplitOptions.RemoveEmptyEntries);
        foreach (var l in losses)
            if (Losses.Find(l) is not { } known || !known.Accepts.Contains(ExampleKind.Pair)) throw new UsageException($"--losses: '{l}' is not a pair or list loss");
        var config = ConfigLoader.Parse(ConfigLoader.Build(a.Get("--config"), a.All("--set")));
        set_num_threads(config.Model.Threads);
        // The campaign's policy (policy.checkpoint, or the character model of the model settings), without an environment.
        var context = new SelfPlay.Actors.Campaign.CampaignContext(config, new SelfPlay.Core.Environments.EnvironmentSetup(null!, [], []), ".");
        var tokenizer = context.Tokenizer;
        using var model = context.InitialPolicy();

        // Game-of-24-shaped lists: a prompt with a step or two of history, three candidates of two operations each.
        var random = new Random(7);
        string Op() => $"{random.Next(1, 14)} {"+-*/"[random.Next(4)]} {random.Next(1, 14)} =";
        CompletionStep Step()
        {
            var op = Op();
            var ids = tokenizer.Encode(op);
            return new CompletionStep($"{op} {random.Next(1, 60)} (left: {random.Next(1, 14)} {random.Next(1, 60)})\n", ids, new float[ids.Length]);
        }
        var examples = Enumerable.Range(0, pairs).Select(i => new PreferenceExample(ExampleKind.List, $"b{i}",
            $"Input: {random.Next(1, 14)} {random.Next(1, 14)} {random.Next(1, 14)} {random.Next(1, 14)}\n{Step().Text}",
            [.. Enumerable.Range(0, 3).Select(k => new Candidate([Step(), Step()], 1 - k * 0.4, 3 - k))])).ToList();
        var data = PreferenceData.Prepare(examples, tokenizer, ReferenceSource.Model, model);
        var sequences = data.SelectMany(e => e.Candidates.Select(c => c.Sequence)).ToList();
        var tokens = sequences.Sum(s => s.Ids.Length);
        var pairData = data.Select(e => e with { Kind = ExampleKind.Pair, Candidates = [e.Candidates[0], e.Candidates[^1]] }).ToList();
        var pairTokens = pairData.Sum(e => e.Candidates.Sum(c => c.Sequence.Ids.Length));

        using var optimizer = optim.AdamW(model.parameters(), 1e-4);
        double Time(Action step)
        {
            var clock = Stopwatch.StartNew();
            step();
            return clock.Elapsed.TotalSeconds;
        }
        void Update(Func<Tensor> loss) => UpdateOf(model, optimizer, loss);
        static void UpdateOf(LlamaForCausalLM trained, optim.Optimizer optimizer, Func<Tensor> loss)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            loss().backward();
            nn.utils.clip_grad_norm_(trained.TrainableParameters(), 1.0);
            optimizer.step();
        }
        Tensor Raw(IReadOnlyList<ScoredSequence> batch)
        {
            var (logProbs, mask) = SequenceScorer.TokenLogProbs(model, batch);
            return -logProbs.sum() / mask.sum();
        }
        var pairSequences = pairData.SelectMany(e => e.Candidates.Select(c => c.Sequence)).ToList();
        model.train();
        var results = new List<object>();
        foreach (var loss in losses)
        {
            var lists = Losses.Get(loss).Listwise;
            var batch = lists ? data : pairData;
            var rawBatch = lists ? sequences : pairSequences;
            var batchTokens = lists ? tokens : pairTokens;
            var options = new LossOptions(loss, SftWeight: 1.0);
            for (var w = 0; w < 3; w++) { Update(() => Raw(rawBatch)); Update(() => PreferenceObjective.Compute(model, batch, options).Loss); }
            // Alternating steps, medians: robust to the other processes of a shared machine.
            var rawTimes = new List<double>();
            var preferenceTimes = new List<double>();
            for (var s = 0; s < steps; s++)
            {
                rawTimes.Add(Time(() => Update(() => Raw(rawBatch))));
                preferenceTimes.Add(Time(() => Update(() => PreferenceObjective.Compute(model, batch, options).Loss)));
            }
            var raw = Median(rawTimes);
            var preference = Median(preferenceTimes);
            results.Add(new
            {
                loss, examples = batch.Count, sequences = rawBatch.Count, tokensPerStep = batchTokens,
                rawTokensPerSecond = Math.Round(batchTokens / raw), preferenceTokensPerSecond = Math.Round(batchTokens / preference),
                ratio = Math.Round(raw / preference, 3),
            });
        }
        // LoRA against full fine-tuning: DPO on the pair batch, alternating steps; AdamW keeps two moments per trained weight.
        var rank = Positive("--lora-rank", config.Learner.LoraRank > 0 ? config.Learner.LoraRank : 8);
        var lora = new LoraSettings(rank, config.Learner.LoraAlpha, 0, LoraSettings.ParseTargets(config.Learner.LoraTargetModules, "selfplay.learner.lora.target-modules"));
        using var adapted = context.InitialPolicy();
        adapted.AttachLora(lora, 1);
        adapted.train();
        using var loraOptimizer = optim.AdamW(adapted.TrainableParameters(), 1e-4);
        var dpo = new LossOptions("dpo", SftWeight: 0);
        for (var w = 0; w < 3; w++) { Update(() => PreferenceObjective.Compute(model, pairData, dpo).Loss); UpdateOf(adapted, loraOptimizer, () => PreferenceObjective.Compute(adapted, pairData, dpo).Loss); }
        var fullTimes = new List<double>();
        var loraTimes = new List<double>();
        for (var s = 0; s < steps; s++)
        {
            fullTimes.Add(Time(() => Update(() => PreferenceObjective.Compute(model, pairData, dpo).Loss)));
            loraTimes.Add(Time(() => UpdateOf(adapted, loraOptimizer, () => PreferenceObjective.Compute(adapted, pairData, dpo).Loss)));
        }
        long OptimizerBytes(LlamaForCausalLM m) => m.TrainableParameters().Sum(p => 2 * p.numel() * p.ElementSize);
        var (fullStep, loraStep) = (Median(fullTimes), Median(loraTimes));
        var loraResult = new
        {
            rank, alpha = lora.Alpha, targetModules = string.Join(",", lora.ModuleNames), tokensPerStep = pairTokens,
            fullTokensPerSecond = Math.Round(pairTokens / fullStep), loraTokensPerSecond = Math.Round(pairTokens / loraStep),
            speedup = Math.Round(fullStep / loraStep, 3),
            fullTrainableParameters = model.TrainableParameters().Sum(p => p.numel()), loraTrainableParameters = adapted.TrainableParameters().Sum(p => p.numel()),
            fullOptimizerStateBytes = OptimizerBytes(model), loraOptimizerStateBytes = OptimizerBytes(adapted),
        };
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "learner", device = config.Model.Device, threads = config.Model.Threads, parameters = model.ParameterCount(), steps,
            note = "median step times; ratio: preference-training tokens/s over raw forward, backward and AdamW tokens/s on the same model and batch; target 0.85 or more; " +
                   "lora: DPO tokens/s with only the adapter trained vs all weights, and AdamW's state (two moments per trained weight)",
            results,
            lora = loraResult,
        }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
