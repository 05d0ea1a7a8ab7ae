using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Checkpoints;

/// <summary>
/// A module's weights in a Hugging Face checkpoint folder: <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c>. Names are the module's state_dict names (HF names for our classes).
/// </summary>
public static class ModelWeights
{
    public const string SingleFile = "model.safetensors", IndexFile = "model.safetensors.index.json";

    /// <summary>Shards of at most 5 GB, as Hugging Face writes them.</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    public static bool Exist(string directory) =>
        File.Exists(Path.Combine(directory, SingleFile)) || File.Exists(Path.Combine(directory, IndexFile));

    /// <summary>The weight files of a folder, in order: the single file, or the shards of the index.</summary>
    public static IReadOnlyList<string> Files(string directory) => [.. WeightMap(directory).Values.Distinct().Order(StringComparer.Ordinal)];

    /// <summary>Tensor name -> file path. Null names map (single file) are read from its header.</summary>
    static Dictionary<string, string> WeightMap(string directory)
    {
        var index = Path.Combine(directory, IndexFile);
        var single = Path.Combine(directory, SingleFile);
        if (File.Exists(index))
        {
            JsonObject? map;
            try { map = JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as JsonObject; }
            catch (JsonException e) { throw new InvalidDataException($"{index} is not valid JSON: {e.Message}"); }
            if (map is null) throw new InvalidDataException($"{index} has no \"weight_map\" object");
            var result = new Dictionary<string, string>();
            foreach (var (name, file) in map)
            {
                var fileName = file is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new InvalidDataException($"{index}: weight_map entry {name} is not a file name");
                if (fileName.Contains('/') || fileName.Contains('\\')) throw new InvalidDataException($"{index}: shard name {fileName} must be a file in the folder");
                result[name] = Path.Combine(directory, fileName);
            }
            return result;
        }
        if (File.Exists(single)) return SafeTensors.ReadHeader(single).Keys.ToDictionary(k => k, _ => single);
        throw new InvalidDataException($"checkpoint has neither {SingleFile} nor {IndexFile}: {directory}");
    }

    /// <summary>
    /// Copies every tensor of the folder into the module's parameters (converting dtype). A missing, extra or
    /// misshaped tensor is an <see cref="InvalidDataException"/> naming the file and the tensor.
    /// </summary>
    public static void Load(nn.Module module, string directory, Func<string, bool>? ignoreExtra = null)
    {
        var map = WeightMap(directory);
        var source = Path.Combine(directory, File.Exists(Path.Combine(directory, IndexFile)) ? IndexFile : SingleFile);
        var headers = map.Values.Distinct().ToDictionary(f => f, SafeTensors.ReadHeader);
        var state = module.state_dict();
        foreach (var (name, file) in map)
        {
            if (!headers[file].ContainsKey(name)) throw new InvalidDataException($"{file} lacks tensor {name} (listed in {IndexFile})");
            if (!state.ContainsKey(name) && !(ignoreExtra?.Invoke(name) ?? false))
                throw new InvalidDataException($"{file}: tensor {name} does not belong to this architecture (see config.json)");
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, target) in state)
        {
            if (!map.TryGetValue(name, out var file))
                throw new InvalidDataException($"{source} lacks tensor {name} that config.json implies");
            var entry = headers[file][name];
            if (!entry.Shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"{file}: tensor {name} has shape [{string.Join(",", entry.Shape)}], config.json implies [{string.Join(",", target.shape)}]");
            target.copy_(SafeTensors.Read(file, entry).to(target.dtype, target.device));
        }
    }

    /// <summary>Writes model.safetensors, or shards and an index when the weights exceed <paramref name="maxShardBytes"/>.</summary>
    public static void Save(nn.Module module, string directory, long maxShardBytes = DefaultMaxShardBytes)
    {
        var tensors = module.state_dict().Select(kv => (kv.Key, kv.Value)).ToList();
        long Bytes(Tensor t) => t.numel() * t.ElementSize;
        var total = tensors.Sum(t => Bytes(t.Value));
        if (total <= maxShardBytes)
        {
            SafeTensors.Write(Path.Combine(directory, SingleFile), tensors);
            return;
        }
        var shards = new List<List<(string, Tensor)>> { new() };
        long current = 0;
        foreach (var t in tensors)
        {
            if (current > 0 && current + Bytes(t.Value) > maxShardBytes) { shards.Add([]); current = 0; }
            shards[^1].Add(t);
            current += Bytes(t.Value);
        }
        var weightMap = new JsonObject();
        for (var i = 0; i < shards.Count; i++)
        {
            var file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            SafeTensors.Write(Path.Combine(directory, file), shards[i]);
            foreach (var (name, _) in shards[i]) weightMap[name] = file;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(directory, IndexFile), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
