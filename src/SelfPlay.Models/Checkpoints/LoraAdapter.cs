using System.Text.Json;
using System.Text.Json.Nodes;
using SelfPlay.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Checkpoints;

/// <summary>
/// A LoRA adapter folder in PEFT's layout: adapter_config.json (peft_type LORA, r, lora_alpha, target_modules, the
/// base's path) and adapter_model.safetensors with PEFT's tensor names
/// (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in], ...lora_B.weight [out, r]), so
/// Python's <c>PeftModel.from_pretrained(base, DIR)</c> loads it.
/// </summary>
public static class LoraAdapter
{
    public const string ConfigFile = "adapter_config.json", WeightsFile = "adapter_model.safetensors";
    const string Prefix = "base_model.model.";

    public static bool IsAdapter(string directory) => File.Exists(Path.Combine(directory, ConfigFile));

    /// <summary>Writes adapter_config.json and adapter_model.safetensors of the model's adapter.</summary>
    /// <param name="baseDirectory">the base checkpoint folder, written as base_model_name_or_path (absolute)</param>
    public static void Save(LlamaForCausalLM model, string directory, string baseDirectory)
    {
        var lora = model.Lora ?? throw new InvalidOperationException("the model has no LoRA adapter to save");
        var tensors = new List<(string, Tensor)>();
        foreach (var (name, layer) in model.Projections().Where(p => p.Layer.HasAdapter))
        {
            tensors.Add(($"{Prefix}{name}.lora_A.weight", layer.LoraA!.weight!));
            tensors.Add(($"{Prefix}{name}.lora_B.weight", layer.LoraB!.weight!));
        }
        SafeTensors.Write(Path.Combine(directory, WeightsFile), tensors);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = Path.GetFullPath(baseDirectory),
            ["r"] = lora.Rank,
            ["lora_alpha"] = lora.Alpha,
            ["lora_dropout"] = lora.Dropout,
            ["target_modules"] = new JsonArray([.. lora.ModuleNames.Select(m => (JsonNode)m)]),
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["use_rslora"] = false,
            ["use_dora"] = false,
            ["modules_to_save"] = null,
            ["layers_to_transform"] = null,
            ["layers_pattern"] = null,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
            ["revision"] = null,
        };
        File.WriteAllText(Path.Combine(directory, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>adapter_config.json as settings; anything PEFT would apply differently from plain LoRA is an error naming the field.</summary>
    public static LoraSettings ReadSettings(string directory)
    {
        var path = Path.Combine(directory, ConfigFile);
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"{path} is empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw new InvalidDataException($"{path} is not a JSON object: {e.Message}"); }
        string? Text(string key) => json[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        bool True(string key) => json[key] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
        if (Text("peft_type") is { } type && type != "LORA") throw new InvalidDataException($"{path}: peft_type {type} is not supported (only LORA)");
        foreach (var key in new[] { "use_rslora", "use_dora", "fan_in_fan_out" })
            if (True(key)) throw new InvalidDataException($"{path}: {key} = true is not supported");
        if (Text("bias") is { } bias && bias != "none") throw new InvalidDataException($"{path}: bias = {bias} is not supported (only none)");
        if (json["modules_to_save"] is JsonArray { Count: > 0 }) throw new InvalidDataException($"{path}: modules_to_save is not supported");
        if (json["rank_pattern"] is JsonObject { Count: > 0 } || json["alpha_pattern"] is JsonObject { Count: > 0 })
            throw new InvalidDataException($"{path}: rank_pattern / alpha_pattern are not supported");
        try
        {
            var rank = json["r"]!.GetValue<int>();
            var alpha = json["lora_alpha"]!.GetValue<double>();
            var dropout = json["lora_dropout"]?.GetValue<double>() ?? 0;
            var targets = json["target_modules"] switch
            {
                JsonArray a => string.Join(",", a.Select(t => t!.GetValue<string>())),
                JsonValue v => v.GetValue<string>(),
                _ => throw new InvalidDataException($"{path}: target_modules is missing"),
            };
            if (rank <= 0 || alpha <= 0) throw new InvalidDataException($"{path}: r and lora_alpha must be positive, got {rank} and {alpha}");
            return new LoraSettings(rank, alpha, dropout, LoraSettings.ParseTargets(targets, path));
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: r, lora_alpha and target_modules must be given as numbers and names ({e.Message})");
        }
    }

    /// <summary>The base folder of an adapter: selfplay.json's relative path when it exists (the run folder may have moved), else base_model_name_or_path.</summary>
    public static string BaseOf(string directory, string relativeBase)
    {
        if (relativeBase.Length > 0 && Directory.Exists(Path.Combine(directory, relativeBase))) return Path.GetFullPath(Path.Combine(directory, relativeBase));
        var path = Path.Combine(directory, ConfigFile);
        var node = JsonNode.Parse(File.ReadAllText(path))?["base_model_name_or_path"];
        var named = node is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
        var resolved = Path.IsPathRooted(named) ? named : Path.Combine(directory, named);
        if (named.Length == 0 || !Directory.Exists(resolved))
            throw new InvalidDataException($"{path}: the base model folder '{named}' is not found (load the adapter with an explicit base: selfplay model merge --checkpoint BASE --adapter {directory})");
        return Path.GetFullPath(resolved);
    }

    /// <summary>
    /// Attaches the folder's adapter to a base model and loads its tensors. An adapter for another base or rank (a
    /// missing, extra or misshaped tensor) is an <see cref="InvalidDataException"/> naming the tensor.
    /// </summary>
    public static void Load(LlamaForCausalLM model, string directory)
    {
        var settings = ReadSettings(directory);
        var file = Path.Combine(directory, WeightsFile);
        var header = SafeTensors.ReadHeader(file);
        model.AttachLora(settings, seed: 0);
        var expected = new Dictionary<string, TorchSharp.Modules.Parameter>();
        foreach (var (name, layer) in model.Projections().Where(p => p.Layer.HasAdapter))
        {
            expected[$"{Prefix}{name}.lora_A.weight"] = layer.LoraA!.weight!;
            expected[$"{Prefix}{name}.lora_B.weight"] = layer.LoraB!.weight!;
        }
        foreach (var name in header.Keys)
            if (!expected.ContainsKey(name)) throw new InvalidDataException($"{file}: tensor {name} does not belong to this base with target_modules {string.Join(",", settings.ModuleNames)} (an adapter for another base?)");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, target) in expected)
        {
            if (!header.TryGetValue(name, out var entry))
                throw new InvalidDataException($"{file} lacks tensor {name} (an adapter for another base, or fewer target modules than adapter_config.json lists)");
            if (!entry.Shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"{file}: tensor {name} has shape [{string.Join(",", entry.Shape)}], this base and r = {settings.Rank} imply [{string.Join(",", target.shape)}] (an adapter for another base or rank)");
            target.copy_(SafeTensors.Read(file, entry).to(target.dtype, target.device));
        }
    }

    /// <summary>A new model without an adapter whose projection weights are W + (α/r) B A: what <c>merge_and_unload</c> gives.</summary>
    public static LlamaForCausalLM Merge(LlamaForCausalLM adapted)
    {
        var merged = new LlamaForCausalLM(adapted.Config);
        merged.to(adapted.Device).to(adapted.DType);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var source = adapted.state_dict();
        var layers = adapted.Projections().ToDictionary(p => p.Name + ".weight", p => p.Layer);
        foreach (var (name, target) in merged.state_dict())
            target.copy_(layers.TryGetValue(name, out var layer) ? layer.MergedWeight() : source[name]);
        merged.eval();
        return merged;
    }
}
