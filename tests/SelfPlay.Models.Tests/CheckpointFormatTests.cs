using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

/// <summary>Hugging Face checkpoint folders: logits against an independent PyTorch forward, shards, damage.</summary>
public class CheckpointFormatTests
{
    static string Golden(string name) => Path.Combine(AppContext.BaseDirectory, "Golden", name);

    static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-hf-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    [Theory]
    [InlineData("llama-tied-theta1e4")]
    [InlineData("llama-untied-theta5e5-sharded")]
    [InlineData("qwen2-bias-tied")]
    [InlineData("llama3-rope-scaling")]
    [InlineData("mistral-untied")]
    public void Logits_match_the_pytorch_reference(string name)
    {
        using var model = Checkpoint.LoadModel(Golden(name));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var golden = Path.Combine(Golden(name), "golden.safetensors");
        var header = SafeTensors.ReadHeader(golden);
        var ids = SafeTensors.Read(golden, header["input_ids"]);
        var expected = SafeTensors.Read(golden, header["logits"]);
        var logits = model.Forward(ids);
        var maxDiff = (logits - expected).abs().max().item<float>();
        Assert.True(maxDiff < 1e-4, $"{name}: max |logit difference| {maxDiff}");
        // And the same model is not trivially right: the logits vary a lot.
        Assert.True(expected.std().item<float>() > 0.3);
    }

    [Fact]
    public void Config_names_are_read_as_hugging_face_writes_them()
    {
        var qwen = Checkpoint.ReadConfig(Golden("qwen2-bias-tied"));
        Assert.True(qwen.AttentionBias);
        Assert.True(qwen.TieWordEmbeddings);
        var llama3 = Checkpoint.ReadConfig(Golden("llama3-rope-scaling"));
        Assert.Equal("llama3", llama3.RopeScaling!.Type);
        Assert.Equal(16, llama3.HeadDim);
        Assert.True(llama3.IsEos(2) && llama3.IsEos(3) && !llama3.IsEos(4));
        Assert.Equal(llama3, LlamaConfig.FromJson(llama3.ToJson()) with { ExtraEosTokenIds = llama3.ExtraEosTokenIds });
    }

    [Fact]
    public void Sharded_save_and_load_round_trip()
    {
        var dir = TempDir();
        try
        {
            using var model = Checkpoint.LoadModel(Golden("llama-tied-theta1e4"));
            File.WriteAllText(Path.Combine(dir, Checkpoint.ConfigFile), model.Config.ToJson());
            ModelWeights.Save(model, dir, maxShardBytes: 60_000);
            Assert.True(File.Exists(Path.Combine(dir, ModelWeights.IndexFile)));
            Assert.False(File.Exists(Path.Combine(dir, ModelWeights.SingleFile)));
            Assert.True(ModelWeights.Files(dir).Count >= 3);
            using var loaded = Checkpoint.LoadModel(dir);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = randint(0, 96, [2, 9]);
            Assert.Equal(0f, (model.Forward(ids) - loaded.Forward(ids)).abs().max().item<float>());
        }
        finally { Directory.Delete(dir, true); }
    }

    static string ErrorOf(Action load) => Assert.Throws<InvalidDataException>(load).Message;

    [Fact]
    public void Damaged_folders_get_one_line_errors_naming_the_file()
    {
        var root = TempDir();
        try
        {
            string Fresh(string name)
            {
                var dir = Path.Combine(root, name);
                CopyFolder(Golden("llama-untied-theta5e5-sharded"), dir);
                return dir;
            }

            var truncated = Fresh("truncated");
            var shard = Path.Combine(truncated, "model-00002-of-00002.safetensors");
            var bytes = File.ReadAllBytes(shard);
            File.WriteAllBytes(shard, bytes[..(bytes.Length - 100)]);
            var error = ErrorOf(() => Checkpoint.LoadModel(truncated));
            Assert.Contains("model-00002-of-00002.safetensors is truncated", error);

            var missingShard = Fresh("missing-shard");
            File.Delete(Path.Combine(missingShard, "model-00001-of-00002.safetensors"));
            Assert.Contains("model-00001-of-00002.safetensors is missing", ErrorOf(() => Checkpoint.LoadModel(missingShard)));

            var wrongShape = Fresh("wrong-shape");
            var config = File.ReadAllText(Path.Combine(wrongShape, "config.json")).Replace("\"intermediate_size\": 96", "\"intermediate_size\": 128");
            File.WriteAllText(Path.Combine(wrongShape, "config.json"), config);
            error = ErrorOf(() => Checkpoint.LoadModel(wrongShape));
            Assert.Contains("safetensors: tensor model.layers.0.mlp.", error);
            Assert.Contains("config.json implies", error);

            var unknown = Fresh("unknown-arch");
            config = File.ReadAllText(Path.Combine(unknown, "config.json")).Replace("LlamaForCausalLM", "GPT2LMHeadModel");
            File.WriteAllText(Path.Combine(unknown, "config.json"), config);
            error = ErrorOf(() => Checkpoint.LoadModel(unknown));
            Assert.Contains("config.json: architecture GPT2LMHeadModel is not supported", error);

            var tiedButUntied = Fresh("missing-tensor");
            config = File.ReadAllText(Path.Combine(tiedButUntied, "config.json")).Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
            File.WriteAllText(Path.Combine(tiedButUntied, "config.json"), config);
            Assert.Contains("model.safetensors.index.json lacks tensor model.layers.2.", ErrorOf(() => Checkpoint.LoadModel(tiedButUntied)));

            var noWeights = Fresh("no-weights");
            File.Delete(Path.Combine(noWeights, ModelWeights.IndexFile));
            Assert.Contains("has no model.safetensors", ErrorOf(() => Checkpoint.LoadModel(noWeights)));

            var garbage = Path.Combine(root, "garbage");
            CopyFolder(Golden("mistral-untied"), garbage);
            File.WriteAllBytes(Path.Combine(garbage, "model.safetensors"), [1, 2, 3]);
            Assert.Contains("model.safetensors is truncated", ErrorOf(() => Checkpoint.LoadModel(garbage)));

            Assert.All(new[] { error }, e => Assert.DoesNotContain('\n', e));
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void Untrusted_offsets_and_sizes_are_refused_before_anything_is_read_or_allocated()
    {
        var root = TempDir();
        try
        {
            // One F32 tensor of 4 elements whose offsets start before the data section (they would read the header).
            var header = System.Text.Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}");
            var file = Path.Combine(root, "before.safetensors");
            File.WriteAllBytes(file, [.. BitConverter.GetBytes((long)header.Length), .. header, .. new byte[16]]);
            Assert.Contains("starting before the data section", ErrorOf(() => SafeTensors.ReadHeader(file)));

            header = System.Text.Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}");
            File.WriteAllBytes(file, [.. BitConverter.GetBytes((long)header.Length), .. header, .. new byte[16]]);
            Assert.Contains("too large to address", ErrorOf(() => SafeTensors.ReadHeader(file)));

            var huge = Path.Combine(root, "huge");
            CopyFolder(Golden("mistral-untied"), huge);
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(huge, "config.json")))!.AsObject();
            (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"], config["vocab_size"]) = (1 << 20, 1 << 22, 1000, 1 << 24);
            config.Remove("head_dim");
            File.WriteAllText(Path.Combine(huge, "config.json"), config.ToJsonString());
            var error = ErrorOf(() => Checkpoint.LoadModel(huge));
            Assert.Contains("GB; this machine has", error);
            Assert.DoesNotContain('\n', error);
        }
        finally { Directory.Delete(root, true); }
    }
}
