using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Tokenization;
using SelfPlay.Tests.Shared;

namespace SelfPlay.Integration.Tests;

/// <summary>A campaign on a Hugging Face checkpoint (random weights, a real byte-level BPE tokenizer.json whose merges
/// cross step boundaries) through the real CLI: warm-up, search, training, held-out evaluation, export and resume.</summary>
public sealed class HfPolicyCampaignTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-hf-" + Guid.NewGuid().ToString("N"));

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task A_quick_campaign_runs_on_a_hugging_face_checkpoint_with_its_bpe_tokenizer(bool qwen2, bool lora)
    {
        var source = HfTestCheckpoint.Create(Path.Combine(_dir, "policy"), qwen2);
        var runDir = Path.Combine(_dir, "run");
        // The tiny random model's trees hold no pairs yet (every step invalid): imported pairs make sure the adapter trains.
        var pairs = Path.Combine(_dir, "pairs-in.jsonl");
        File.WriteAllLines(pairs, Enumerable.Range(1, 8).Select(i => JsonSerializer.Serialize(new
            { prompt = $"Input: {i} 3 8 8\n", chosen = $"8 / {i} = {8 / i}", rejected = $"{i} - 3 = {i - 3}" })));
        string[] loraSettings = lora ? ["--set", "policy.chat-template=chatml", "--set", "learner.lora.rank=4", "--set", "learner.dtype=bfloat16", "--set", "learner.lora.target-modules=q,v,up", "--set", $"learner.import={pairs}"] : [];
        var result = await CliRunner.RunAsync(["run", "--config", "hocon/campaigns/game24-quick.conf", "--set", $"policy.checkpoint={source}",
            "--set", "name=hf-quick", "--set", "warmup.epochs=2", .. loraSettings, "--run-dir", runDir]);
        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json"))))
        {
            Assert.Equal("completed", summary.RootElement.GetProperty("status").GetString());
            var rows = summary.RootElement.GetProperty("iterations");
            Assert.Equal(16, rows[1].GetProperty("trees").GetInt32());
            Assert.Equal(40, rows[1].GetProperty("heldOut").GetProperty("total").GetInt32());
        }

        // Every policy version is a Hugging Face folder with the source's tokenizer files, unchanged.
        foreach (var version in new[] { 0, 1 })
        {
            var dir = Path.Combine(runDir, "checkpoints", $"v{version}");
            Assert.Equal(File.ReadAllText(Path.Combine(source, "tokenizer.json")), File.ReadAllText(Path.Combine(dir, "tokenizer.json")));
            Assert.True(File.Exists(Path.Combine(dir, "generation_config.json")));
            Assert.Equal(qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM", Checkpoint.ReadConfig(dir).Architecture);
            var (model, tokenizer, _) = Checkpoint.Load(dir);
            model.Dispose();
            Assert.IsType<HfTokenizer>(tokenizer);
        }

        if (lora) await CheckLoraVersion(runDir, source);

        // The trees hold the BPE tokenizer's ids: each step's tokens decode to the text the policy wrote.
        using var bpe = HfTokenizer.Load(source, Checkpoint.ReadConfig(source));
        var system = ActorSystem.Create("hf-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), runDir, serilog: false));
        try
        {
            var trees = await TreeQueries.IterationTreesAsync(system, "hf-quick", 1);
            Assert.Equal(16, trees.Count);
            // With chatml (the LoRA run) the policy saw the environment's prompt as the user turn.
            if (lora) Assert.All(trees, t => Assert.StartsWith("<|im_start|>user\nInput: ", t.Root.StepText));
            var steps = trees.SelectMany(t => t.Nodes.Skip(1)).Where(n => n.TokenIds.Length > 0).ToList();
            Assert.NotEmpty(steps);
            Assert.All(steps, n =>
            {
                Assert.Equal(n.TokenIds.Length, n.LogProbs.Length);
                Assert.All(n.TokenIds, id => Assert.InRange(id, 0, HfTestCheckpoint.Vocabulary().Count + 4));
                Assert.StartsWith(n.Action, bpe.Decode(n.TokenIds));
            });
        }
        finally
        {
            await system.Terminate();
        }

        var export = Path.Combine(_dir, "pairs.jsonl");
        var exported = await CliRunner.RunAsync("export", "--run-dir", runDir, "--format", "trl-preference", "--out", export);
        Assert.True(exported.ExitCode == 0, exported.Stderr);

        // A completed campaign resumes as completed, with the same tokenizer.
        var resumed = await CliRunner.RunAsync("run", "--resume", "--run-dir", runDir);
        Assert.True(resumed.ExitCode == 0, resumed.Stdout + resumed.Stderr);
    }

    /// <summary>v0 is the warm-up's adapter merged into the source (only the target projections changed); v1 is a PEFT
    /// adapter on v0, whose weights it leaves bit-identical; `model merge` gives its logits.</summary>
    async Task CheckLoraVersion(string runDir, string source)
    {
        var v0 = Path.Combine(runDir, "checkpoints", "v0");
        var v1 = Path.Combine(runDir, "checkpoints", "v1");
        Assert.False(File.Exists(Path.Combine(v0, LoraAdapter.ConfigFile)));
        using (var pretrained = Checkpoint.LoadModel(source))
        using (var warm = Checkpoint.LoadModel(v0))
        {
            var before = pretrained.state_dict();
            foreach (var (name, weight) in warm.state_dict())
            {
                // The base trained in bfloat16 (learner.dtype): an untouched weight is the source's, rounded to it.
                var rounded = before[name].to(TorchSharp.torch.ScalarType.BFloat16).to(weight.dtype);
                var same = (weight == rounded).all().item<bool>() || (weight == before[name]).all().item<bool>();
                var target = name.Contains("q_proj.weight") || name.Contains("v_proj.weight") || name.Contains("up_proj.weight");
                Assert.True(same != target, $"{name}: {(target ? "a target projection the warm-up did not train" : "not a LoRA target, yet it changed")}");
            }
        }
        Assert.True(File.Exists(Path.Combine(v1, LoraAdapter.ConfigFile)));
        Assert.False(File.Exists(Path.Combine(v1, ModelWeights.SingleFile)));
        var names = SafeTensors.ReadHeader(Path.Combine(v1, LoraAdapter.WeightsFile)).Keys.ToList();
        Assert.Equal(3 * 2, names.Count); // 1 layer × q, v, up × A, B
        Assert.Contains("base_model.model.model.layers.0.mlp.up_proj.lora_B.weight", names);
        using var adapted = Checkpoint.LoadModel(v1);
        using var base0 = Checkpoint.LoadModel(v0);
        var trained = adapted.state_dict();
        foreach (var (name, weight) in base0.state_dict())
            Assert.True((weight == trained[name]).all().item<bool>(), $"{name} of the base changed");
        Assert.Contains(trained.Where(kv => kv.Key.Contains("lora_B")), kv => kv.Value.abs().sum().item<float>() > 0);

        var mergedDir = Path.Combine(_dir, "merged");
        var merged = await CliRunner.RunAsync("model", "merge", "--adapter", v1, "--out", mergedDir);
        Assert.True(merged.ExitCode == 0, merged.Stderr);
        using var full = Checkpoint.LoadModel(mergedDir);
        Assert.Null(full.Lora);
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var _ = TorchSharp.torch.no_grad();
        var ids = TorchSharp.torch.tensor(new long[] { 5, 9, 13, 2, 40, 7 }).unsqueeze(0);
        var diff = (full.Forward(ids) - adapted.Forward(ids)).abs().max().item<float>();
        Assert.True(diff < 1e-4, $"merged logits differ by {diff}");

        // An adapter merged onto another base: one line, non-zero.
        var other = HfTestCheckpoint.Create(Path.Combine(_dir, "other"), qwen2: false, hidden: 48);
        var wrong = await CliRunner.RunAsync("model", "merge", "--adapter", v1, "--checkpoint", other, "--out", Path.Combine(_dir, "wrong"));
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Single(wrong.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Tokenize_prints_the_ids_and_tokens_with_the_special_tokens_hugging_face_adds()
    {
        var qwen = HfTestCheckpoint.Create(Path.Combine(_dir, "qwen"), qwen2: true);
        var vocab = HfTestCheckpoint.Vocabulary();
        var plain = await CliRunner.RunAsync("model", "tokenize", "--checkpoint", qwen, "--text", "4 =", "--special");
        Assert.True(plain.ExitCode == 0, plain.Stderr);
        using (var json = JsonDocument.Parse(plain.Stdout))
        {
            Assert.Equal([vocab["4"], vocab["Ġ="]], json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(["4", "Ġ="], json.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()));
        }
        var llama = HfTestCheckpoint.Create(Path.Combine(_dir, "llama"), qwen2: false);
        var special = await CliRunner.RunAsync("model", "tokenize", "--checkpoint", llama, "--text", "4 =", "--special");
        using (var json = JsonDocument.Parse(special.Stdout))
            Assert.Equal([vocab[HfTestCheckpoint.EndOfText], vocab["4"], vocab["Ġ="]], json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));

        // A folder without a tokenizer, and a vocabulary larger than the embedding: one line each.
        File.Delete(Path.Combine(llama, "tokenizer.json"));
        var none = await CliRunner.RunAsync("model", "tokenize", "--checkpoint", llama, "--text", "x");
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("has no tokenizer", none.Stderr);
        var config = File.ReadAllText(Path.Combine(qwen, "config.json")).Replace($"\"vocab_size\": {vocab.Count + 5}", "\"vocab_size\": 100");
        File.WriteAllText(Path.Combine(qwen, "config.json"), config);
        var small = await CliRunner.RunAsync("run", "--config", "hocon/campaigns/game24-quick.conf", "--set", $"policy.checkpoint={qwen}", "--run-dir", Path.Combine(_dir, "r"));
        Assert.NotEqual(0, small.ExitCode);
        Assert.Contains("vocab_size (the embedding) is 100", small.Stderr);
        Assert.Single(small.Stderr.Trim().Split('\n'));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
