using System.Text.Json;
using System.Text.Json.Nodes;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

/// <summary>LoRA learners: only the adapter trains, the PEFT layout round-trips, merging gives the adapted logits.</summary>
public sealed class LoraTests : IDisposable
{
    static readonly CharTokenizer Tok = new();
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-lora-" + Guid.NewGuid().ToString("N"));

    static LlamaForCausalLM Model(int hidden = 32, long seed = 3) => new(new LlamaConfig(Tok.VocabSize, hidden, 64, 2, 4, 2), seed);

    static readonly LoraSettings Rank4 = new(4, 8, 0, ["q", "k", "v", "o", "down"]);

    static Tensor Ids() => tensor(new[] { CharTokenizer.Bos }.Concat(Tok.Encode("Input: 4 5 6 10\n5 * 4 = 20")).Select(i => (long)i).ToArray()).unsqueeze(0);

    static float[] Logits(LlamaForCausalLM model)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return model.Forward(Ids()).data<float>().ToArray();
    }

    static Dictionary<string, float[]> Weights(LlamaForCausalLM model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().data<float>().ToArray());

    /// <summary>A few steps of supervised training with a learning rate large enough to move every adapter.</summary>
    static void Train(LlamaForCausalLM model)
    {
        var text = Tok.Encode("Input: 4 5 6 10\n5 * 4 = 20 (left: 6 10 20)\n");
        var sequences = Enumerable.Range(0, 8).Select(i => ScoredSequence.PromptCompletion([CharTokenizer.Bos], text[..(10 + i * 3)])).ToList();
        using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 4, WarmupShare: 0));
        trainer.TrainSft(sequences, 3, new Random(1));
    }

    [Fact]
    public void Rank_r_trains_exactly_the_adapter_tensors_and_leaves_the_base_bit_identical()
    {
        using var model = Model();
        var baseLogits = Logits(model);
        var before = Weights(model);
        model.AttachLora(Rank4, seed: 5);
        // B starts at zero: the adapted model is the base until it trains.
        Assert.Equal(baseLogits, Logits(model));
        // r·(in + out) per target projection: q,o 32→32, k,v 32→16, down 64→32, over 2 layers.
        long perLayer = 4 * (32 + 32) * 2 + 4 * (32 + 16) * 2 + 4 * (64 + 32);
        Assert.Equal(2 * perLayer, model.TrainableParameters().Sum(p => p.numel()));
        Assert.All(model.named_parameters().Where(p => p.parameter.requires_grad), p => Assert.Contains(".lora_", p.name));

        Train(model);
        var after = Weights(model);
        foreach (var (name, values) in before) Assert.True(values.SequenceEqual(after[name]), $"{name} changed: only the adapter may train");
        var adapters = after.Keys.Where(k => k.Contains(".lora_B.")).ToList();
        Assert.Equal(10, adapters.Count);
        Assert.All(adapters, name => Assert.Contains(after[name], v => v != 0)); // every B moved off zero
        Assert.NotEqual(baseLogits, Logits(model));
        // Without its adapter the model is the base again: the reference policy, without a second copy of the weights.
        using (model.WithoutAdapter()) Assert.Equal(baseLogits, Logits(model));
        Assert.NotEqual(baseLogits, Logits(model));
    }

    /// <summary>v0 = the model's weights, then a rank-4 adapter (trained or fresh) saved as v1 on it.</summary>
    (string BaseDir, string AdapterDir, string Sha) SaveBaseAndAdapter(LlamaForCausalLM model, bool train)
    {
        var baseDir = Path.Combine(_dir, "v0");
        Checkpoint.Save(model, Tok, baseDir, 0, "game24");
        model.AttachLora(Rank4, seed: 5);
        if (train) Train(model);
        var adapterDir = Path.Combine(_dir, "v1");
        return (baseDir, adapterDir, Checkpoint.Save(model, Tok, adapterDir, 1, "game24", baseDirectory: baseDir));
    }

    [Fact]
    public void The_adapter_is_saved_in_the_peft_layout_and_loads_back_onto_its_base()
    {
        using var model = Model();
        var (baseDir, adapterDir, sha) = SaveBaseAndAdapter(model, train: true);

        Assert.False(File.Exists(Path.Combine(adapterDir, ModelWeights.SingleFile)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterDir, LoraAdapter.ConfigFile)))!;
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal("CAUSAL_LM", config["task_type"]!.GetValue<string>());
        Assert.Equal(4, config["r"]!.GetValue<int>());
        Assert.Equal(8, config["lora_alpha"]!.GetValue<double>());
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"], config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal(Path.GetFullPath(baseDir), config["base_model_name_or_path"]!.GetValue<string>());
        var header = SafeTensors.ReadHeader(Path.Combine(adapterDir, LoraAdapter.WeightsFile));
        Assert.Equal(20, header.Count);
        Assert.Equal([4L, 32L], header["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].Shape);
        Assert.Equal([16L, 4L], header["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"].Shape);
        Assert.Equal([4L, 64L], header["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"].Shape);
        Assert.Equal("../v0", Checkpoint.ReadMeta(adapterDir).Base);

        var (loaded, tokenizer, meta) = Checkpoint.Load(adapterDir, expectedSha256: sha);
        using (loaded)
        {
            Assert.Equal(sha, meta.Sha256);
            Assert.Equal(Rank4.Rank, loaded.Lora!.Rank);
            Assert.Equal(Logits(model), Logits(loaded));
            Assert.Equal(Tok.Encode("24"), tokenizer.Encode("24"));
        }

        // The run folder moved: the base is found by its relative path.
        var moved = Path.Combine(_dir, "moved");
        Directory.CreateDirectory(moved);
        Directory.Move(baseDir, Path.Combine(moved, "v0"));
        Directory.Move(adapterDir, Path.Combine(moved, "v1"));
        using var relocated = Checkpoint.LoadModel(Path.Combine(moved, "v1"));
        Assert.Equal(Logits(model), Logits(relocated));
    }

    [Fact]
    public void Merged_weights_give_the_logits_of_base_plus_adapter()
    {
        using var model = Model();
        model.AttachLora(new LoraSettings(8, 16, 0, LoraSettings.Supported), seed: 9);
        Train(model);
        using var merged = LoraAdapter.Merge(model);
        Assert.Null(merged.Lora);
        Assert.DoesNotContain(merged.state_dict().Keys, k => k.Contains("lora_"));
        var expected = Logits(model);
        var actual = Logits(merged);
        var maxDiff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff < 1e-5, $"max |logit difference| {maxDiff}");
    }

    [Fact]
    public void An_adapter_for_another_rank_or_base_is_a_one_line_error_naming_the_tensor()
    {
        using var model = Model();
        var (_, adapterDir, _) = SaveBaseAndAdapter(model, train: false);

        // adapter_config.json says r = 8, the tensors are rank 4.
        var configPath = Path.Combine(adapterDir, LoraAdapter.ConfigFile);
        var original = File.ReadAllText(configPath);
        File.WriteAllText(configPath, original.Replace("\"r\": 4", "\"r\": 8"));
        var rank = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(adapterDir));
        Assert.Contains("another base or rank", rank.Message);
        Assert.Contains("lora_A.weight", rank.Message);
        Assert.DoesNotContain('\n', rank.Message);
        File.WriteAllText(configPath, original);

        // Another base: a wider model.
        using var wider = Model(hidden: 48);
        var widerDir = Path.Combine(_dir, "wider");
        Checkpoint.Save(wider, Tok, widerDir, 0, "game24");
        using var widerBase = Checkpoint.LoadModel(widerDir);
        var other = Assert.Throws<InvalidDataException>(() => LoraAdapter.Load(widerBase, adapterDir));
        Assert.Contains("another base", other.Message);

        // PEFT settings this LoRA does not apply are refused, not misread.
        File.WriteAllText(configPath, original.Replace("\"use_dora\": false", "\"use_dora\": true"));
        Assert.Contains("use_dora", Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(adapterDir)).Message);
    }

    [Fact]
    public void Bfloat16_compute_keeps_the_base_in_bfloat16_and_trains_the_float32_adapter()
    {
        using var model = Model();
        model.AttachLora(Rank4, seed: 5);
        var baseInBfloat16 = model.state_dict().Where(kv => !kv.Key.Contains("lora_"))
            .ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray());
        var text = Tok.Encode("Input: 4 5 6 10\n5 * 4 = 20\n");
        using (var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 2, WarmupShare: 0, ComputeDType: ScalarType.BFloat16)))
            trainer.TrainSft([ScoredSequence.PromptCompletion([CharTokenizer.Bos], text)], 2, new Random(1));
        Assert.Equal(ScalarType.BFloat16, model.DType);
        foreach (var (name, values) in baseInBfloat16)
        {
            var now = model.state_dict()[name];
            Assert.Equal(ScalarType.BFloat16, now.dtype);
            Assert.True(values.SequenceEqual(now.to(ScalarType.Float32).data<float>().ToArray()), $"{name} changed");
        }
        var b = model.state_dict()["model.layers.0.self_attn.q_proj.lora_B.weight"];
        Assert.Equal(ScalarType.Float32, b.dtype);
        Assert.Contains(b.data<float>().ToArray(), v => v != 0);
        Assert.All(model.TrainableParameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.Equal(ScalarType.Float32, model.Forward(Ids()).dtype);
    }

    [Fact]
    public void Target_modules_are_checked_by_name()
    {
        Assert.Equal(["q", "v", "gate"], LoraSettings.ParseTargets("gate_proj, v,q", "x"));
        Assert.Contains("unknown target module 'lm_head'", Assert.Throws<ArgumentException>(() => LoraSettings.ParseTargets("q,lm_head", "x")).Message);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
