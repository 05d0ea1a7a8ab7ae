using System.Security.Cryptography;
using System.Text.Json;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using TorchSharp;
using TorchSharp.PyBridge;

namespace SelfPlay.Models.Checkpoints;

/// <summary>
/// A checkpoint folder in the Hugging Face layout: config.json, model.safetensors (HF tensor names) and the
/// tokenizer, plus selfplay.json with the policy version and the weights' sha256.
/// </summary>
public static class Checkpoint
{
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", MetaFile = "selfplay.json";

    public sealed record Meta(int PolicyVersion, string Sha256, string Environment);

    /// <summary>Writes into a temporary sibling folder and renames it, so a crash never leaves a half checkpoint.</summary>
    public static string Save(LlamaForCausalLM model, CharTokenizer tokenizer, string directory, int policyVersion, string environment)
    {
        var full = Path.GetFullPath(directory);
        var temp = full.TrimEnd('/') + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        Directory.CreateDirectory(temp);
        File.WriteAllText(Path.Combine(temp, ConfigFile), model.Config.ToJson());
        model.save_safetensors(Path.Combine(temp, WeightsFile));
        tokenizer.Save(temp);
        var sha = Sha256Of(Path.Combine(temp, WeightsFile));
        File.WriteAllText(Path.Combine(temp, MetaFile), JsonSerializer.Serialize(new Meta(policyVersion, sha, environment)));
        if (Directory.Exists(full)) Directory.Delete(full, true);
        Directory.Move(temp, full);
        return sha;
    }

    public static string Sha256Of(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Loads a checkpoint; any missing or inconsistent file is an <see cref="InvalidDataException"/> naming it.</summary>
    public static (LlamaForCausalLM Model, CharTokenizer Tokenizer, Meta Meta) Load(string directory, string device = "cpu", string? expectedSha256 = null)
    {
        if (!Directory.Exists(directory)) throw new InvalidDataException($"checkpoint folder not found: {directory}");
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new InvalidDataException($"checkpoint has no {ConfigFile}: {directory}");
        if (!File.Exists(weightsPath)) throw new InvalidDataException($"checkpoint has no {WeightsFile}: {directory}");
        var config = LlamaConfig.FromJson(File.ReadAllText(configPath), configPath);
        var tokenizer = CharTokenizer.Load(directory);
        if (tokenizer.VocabSize > config.VocabSize)
            throw new InvalidDataException($"tokenizer has {tokenizer.VocabSize} tokens but config.json vocab_size is {config.VocabSize}");
        var metaPath = Path.Combine(directory, MetaFile);
        var meta = File.Exists(metaPath)
            ? JsonSerializer.Deserialize<Meta>(File.ReadAllText(metaPath)) ?? throw new InvalidDataException($"{metaPath} is empty")
            : new Meta(0, "", "");
        var sha = Sha256Of(weightsPath);
        if (expectedSha256 is not null && !string.Equals(sha, expectedSha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{weightsPath} has sha256 {sha}, expected {expectedSha256}");
        var model = new LlamaForCausalLM(config);
        try
        {
            model.load_safetensors(weightsPath, strict: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            model.Dispose();
            throw new InvalidDataException($"{weightsPath} is corrupt or does not match config.json: {e.Message.Split('\n')[0]}");
        }
        model.to(device);
        model.eval();
        return (model, tokenizer, meta with { Sha256 = sha });
    }
}
