using System.Security.Cryptography;
using System.Text.Json;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Checkpoints;

/// <summary>
/// A checkpoint folder in the Hugging Face layout: config.json, model.safetensors (HF tensor names; or shards with
/// model.safetensors.index.json) and the tokenizer, plus selfplay.json with the policy version and the weights' sha256.
/// A model with a LoRA adapter is saved as a PEFT adapter folder instead of full weights (adapter_config.json,
/// adapter_model.safetensors, with config.json and the tokenizer beside them) that names its base folder.
/// </summary>
public static class Checkpoint
{
    public const string ConfigFile = "config.json", WeightsFile = ModelWeights.SingleFile, MetaFile = "selfplay.json";

    /// <param name="Base">of an adapter folder: its base folder, relative to it ("../v0"); "" for full weights</param>
    public sealed record Meta(int PolicyVersion, string Sha256, string Environment, string Base = "");

    public const string GenerationConfigFile = "generation_config.json";

    /// <summary>generation_config.json as transformers writes it: the special ids generation starts and stops with.</summary>
    static string GenerationConfig(LlamaConfig config, ITokenizer tokenizer)
    {
        var eos = tokenizer.EosIds.Count > 0 ? tokenizer.EosIds : [config.EosTokenId];
        var json = new System.Text.Json.Nodes.JsonObject
        {
            ["bos_token_id"] = tokenizer.BosId ?? config.BosTokenId,
            ["eos_token_id"] = eos.Count == 1 ? eos[0] : new System.Text.Json.Nodes.JsonArray([.. eos.Select(e => (System.Text.Json.Nodes.JsonNode)e)]),
            ["pad_token_id"] = config.PadTokenId,
            ["do_sample"] = true,
            ["transformers_version"] = "4.46.0",
        };
        return json.ToJsonString();
    }

    /// <summary>Writes into a temporary sibling folder and renames it, so a crash never leaves a half checkpoint.</summary>
    /// <param name="baseDirectory">for a model with a LoRA adapter: the folder of its base weights, which the adapter folder names</param>
    public static string Save(LlamaForCausalLM model, ITokenizer tokenizer, string directory, int policyVersion, string environment,
        long maxShardBytes = ModelWeights.DefaultMaxShardBytes, string? baseDirectory = null)
    {
        if (model.Lora is not null && baseDirectory is null) throw new ArgumentException("a model with a LoRA adapter is saved with the folder of its base weights");
        var full = Path.GetFullPath(directory);
        var temp = full.TrimEnd('/') + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        Directory.CreateDirectory(temp);
        File.WriteAllText(Path.Combine(temp, ConfigFile), model.Config.ToJson());
        if (model.Lora is null) ModelWeights.Save(model, temp, maxShardBytes);
        else LoraAdapter.Save(model, temp, baseDirectory!);
        tokenizer.Save(temp);
        File.WriteAllText(Path.Combine(temp, GenerationConfigFile), GenerationConfig(model.Config, tokenizer));
        var sha = WeightsSha256(temp);
        var relativeBase = model.Lora is null ? "" : Path.GetRelativePath(full, Path.GetFullPath(baseDirectory!));
        File.WriteAllText(Path.Combine(temp, MetaFile), JsonSerializer.Serialize(new Meta(policyVersion, sha, environment, relativeBase)));
        if (Directory.Exists(full)) Directory.Delete(full, true);
        Directory.Move(temp, full);
        return sha;
    }

    public static string Sha256Of(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>sha256 of model.safetensors; of a sharded checkpoint, over the shards in name order; of an adapter folder, of adapter_model.safetensors.</summary>
    public static string WeightsSha256(string directory)
    {
        if (LoraAdapter.IsAdapter(directory)) return Sha256Of(Path.Combine(directory, LoraAdapter.WeightsFile));
        var files = ModelWeights.Files(directory);
        if (files.Count == 1) return Sha256Of(files[0]);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files) hash.AppendData(File.ReadAllBytes(file));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>config.json of a checkpoint folder (architecture, sizes), with a one-line error naming the file.</summary>
    public static LlamaConfig ReadConfig(string directory)
    {
        if (!Directory.Exists(directory)) throw new InvalidDataException($"checkpoint folder not found: {directory}");
        var configPath = Path.Combine(directory, ConfigFile);
        if (!File.Exists(configPath)) throw new InvalidDataException($"checkpoint has no {ConfigFile}: {directory}");
        return LlamaConfig.FromJson(File.ReadAllText(configPath), configPath);
    }

    /// <summary>
    /// The model of any Llama-family checkpoint folder (ours or a Hugging Face one), on <paramref name="device"/>
    /// in <paramref name="dtype"/> (float32 or bfloat16), in eval mode.
    /// </summary>
    public static LlamaForCausalLM LoadModel(string directory, string device = "cpu", string dtype = "float32")
    {
        if (LoraAdapter.IsAdapter(directory))
        {
            // Base + adapter, unmerged: the adapter keeps training, and inference reads exactly the trained tensors.
            var adapted = LoadModel(LoraAdapter.BaseOf(directory, ReadMeta(directory).Base), device, dtype);
            try { LoraAdapter.Load(adapted, directory); }
            catch
            {
                adapted.Dispose();
                throw;
            }
            adapted.eval();
            return adapted;
        }
        var config = ReadConfig(directory);
        if (!ModelWeights.Exist(directory))
            throw new InvalidDataException($"checkpoint has no {ModelWeights.SingleFile} or {ModelWeights.IndexFile}: {directory}");
        var model = new LlamaForCausalLM(config);
        try
        {
            // Tied checkpoints sometimes still carry lm_head.weight; old Llama ones carry rotary inv_freq buffers.
            ModelWeights.Load(model, directory, name =>
                (config.TieWordEmbeddings && name == "lm_head.weight") || name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal));
            model.to(DeviceType(device, directory)).to(ScalarTypeOf(dtype));
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary>The folder's tokenizer, checked against its config.json: a folder without one, or a vocabulary larger
    /// than the embedding, is a one-line error.</summary>
    public static ITokenizer LoadTokenizer(string directory, out LlamaConfig config)
    {
        config = ReadConfig(directory);
        var tokenizer = TokenizerFiles.Load(directory)
            ?? throw new InvalidDataException($"checkpoint has no tokenizer ({CharTokenizer.FileName} or {HfTokenizer.FileName}): {directory}");
        if (tokenizer.VocabSize > config.VocabSize)
            throw new InvalidDataException($"{directory}: the tokenizer has {tokenizer.VocabSize} tokens but config.json's vocab_size (the embedding) is {config.VocabSize}");
        return tokenizer;
    }

    /// <summary>selfplay.json, or an empty record for a folder that SelfPlay did not write.</summary>
    public static Meta ReadMeta(string directory)
    {
        var metaPath = Path.Combine(directory, MetaFile);
        if (!File.Exists(metaPath)) return new Meta(0, "", "");
        try { return JsonSerializer.Deserialize<Meta>(File.ReadAllText(metaPath)) ?? throw new InvalidDataException($"{metaPath} is empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{metaPath} is not valid JSON: {e.Message}"); }
    }

    public static ScalarType ScalarTypeOf(string dtype) => dtype switch
    {
        "float32" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"model dtype must be float32 or bfloat16, got '{dtype}'"),
    };

    static Device DeviceType(string device, string directory) => device switch
    {
        "cpu" => CPU,
        _ when device.StartsWith("cuda", StringComparison.Ordinal) =>
            cuda.is_available() ? torch.device(device) : throw new ArgumentException($"device {device} requested for {directory}, but CUDA is not available (CPU build? see README \"GPU builds\")"),
        _ => throw new ArgumentException($"model device must be cpu or cuda[:N], got '{device}'"),
    };

    /// <summary>Loads a policy checkpoint with its tokenizer (the character model's or a Hugging Face tokenizer.json); any
    /// missing or inconsistent file is an <see cref="InvalidDataException"/> naming it.</summary>
    public static (LlamaForCausalLM Model, ITokenizer Tokenizer, Meta Meta) Load(string directory, string device = "cpu", string? expectedSha256 = null,
        string dtype = "float32")
    {
        var tokenizer = LoadTokenizer(directory, out var config);
        var meta = ReadMeta(directory);
        if (!ModelWeights.Exist(directory) && !File.Exists(Path.Combine(directory, LoraAdapter.WeightsFile)))
            throw new InvalidDataException($"checkpoint has no {WeightsFile} or {LoraAdapter.WeightsFile}: {directory}");
        var sha = WeightsSha256(directory);
        if (expectedSha256 is not null && !string.Equals(sha, expectedSha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{Path.Combine(directory, WeightsFile)} has sha256 {sha}, expected {expectedSha256}");
        return (LoadModel(directory, device, dtype), tokenizer, meta with { Sha256 = sha });
    }
}
