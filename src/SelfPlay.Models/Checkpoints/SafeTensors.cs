using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace SelfPlay.Models.Checkpoints;

/// <summary>
/// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data), read tensor by
/// tensor so multi-gigabyte shards never need one array. Every damage (truncation, bad header, unknown dtype) is an
/// <see cref="InvalidDataException"/> naming the file.
/// </summary>
public static class SafeTensors
{
    public sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    static readonly Dictionary<string, (ScalarType Type, int Bytes)> DTypes = new()
    {
        ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2), ["BF16"] = (ScalarType.BFloat16, 2),
        ["F64"] = (ScalarType.Float64, 8), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["U8"] = (ScalarType.Byte, 1), ["I8"] = (ScalarType.Int8, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>The tensors a file holds, with their byte ranges checked against the file's length.</summary>
    public static IReadOnlyDictionary<string, Entry> ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"{path} is missing");
        using var stream = File.OpenRead(path);
        var lengthBytes = new byte[8];
        if (stream.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false) < 8)
            throw new InvalidDataException($"{path} is truncated: shorter than a safetensors header");
        var headerLength = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
        if (headerLength <= 0 || headerLength > 100_000_000 || 8 + headerLength > stream.Length)
            throw new InvalidDataException($"{path} is truncated or not a safetensors file (header length {headerLength}, file {stream.Length} bytes)");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        JsonObject json;
        try { json = JsonNode.Parse(header)?.AsObject() ?? throw new InvalidDataException($"{path}: empty safetensors header"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: safetensors header is not a JSON object ({e.Message})");
        }
        var dataStart = 8 + headerLength;
        var entries = new Dictionary<string, Entry>();
        foreach (var (tensorName, node) in json)
        {
            if (tensorName == "__metadata__") continue;
            try
            {
                var dtype = node!["dtype"]!.GetValue<string>();
                if (!DTypes.TryGetValue(dtype, out var t)) throw new InvalidDataException($"{path}: tensor {tensorName} has unsupported dtype {dtype}");
                var shape = node["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = node["data_offsets"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                if (shape.Any(d => d < 0)) throw new InvalidDataException($"{path}: tensor {tensorName} has a negative dimension");
                long bytes;
                try { bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * t.Bytes); }
                catch (OverflowException) { throw new InvalidDataException($"{path}: tensor {tensorName} has a shape too large to address"); }
                if (offsets.Length != 2 || offsets[1] - offsets[0] != bytes)
                    throw new InvalidDataException($"{path}: tensor {tensorName} has data_offsets that do not match its shape");
                // An offset before the data section would read the header (or bytes before it) as weights.
                if (offsets[0] < 0) throw new InvalidDataException($"{path}: tensor {tensorName} has data_offsets starting before the data section ({offsets[0]})");
                if (dataStart + offsets[1] > stream.Length)
                    throw new InvalidDataException($"{path} is truncated: tensor {tensorName} ends at byte {dataStart + offsets[1]}, the file has {stream.Length}");
                entries[tensorName] = new Entry(tensorName, t.Type, shape, dataStart + offsets[0], dataStart + offsets[1]);
            }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
            {
                throw new InvalidDataException($"{path}: malformed header entry for tensor {tensorName}");
            }
        }
        return entries;
    }

    /// <summary>One tensor, on the CPU, in the file's dtype.</summary>
    public static Tensor Read(string path, Entry entry)
    {
        var data = new byte[entry.End - entry.Begin];
        using (var stream = File.OpenRead(path))
        {
            stream.Position = entry.Begin;
            stream.ReadExactly(data);
        }
        var result = empty(entry.Shape, entry.DType);
        result.bytes = data;
        return result;
    }

    /// <summary>Writes tensors (moved to the CPU, made contiguous) in the order given; the header is padded to 8 bytes.</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var list = tensors.ToList();
        var header = new JsonObject();
        long offset = 0;
        foreach (var (name, t) in list)
        {
            var code = DTypes.First(d => d.Value.Type == t.dtype).Key;
            var size = t.numel() * DTypes[code].Bytes;
            header[name] = new JsonObject
            {
                ["dtype"] = code,
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + size),
            };
            offset += size;
        }
        var text = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = new byte[(text.Length + 7) / 8 * 8];
        Array.Fill(padded, (byte)' ');
        text.CopyTo(padded, 0);
        using var stream = File.Create(path);
        var lengthBytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(lengthBytes, padded.Length);
        stream.Write(lengthBytes);
        stream.Write(padded);
        foreach (var (_, t) in list)
        {
            using var cpu = t.detach().cpu().contiguous();
            stream.Write(cpu.bytes);
        }
    }
}
