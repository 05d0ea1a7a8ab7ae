using System.Text.Json;
using System.Text.Json.Nodes;

namespace SelfPlay.Models.Llama;

/// <summary>Hugging Face <c>rope_scaling</c>: "linear" (positions divided by the factor) or "llama3" (Llama 3.1+ frequency bands).</summary>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1, double HighFreqFactor = 4, int OriginalMaxPositions = 8192);

/// <summary>Architecture of a Llama-family causal LM, read from / written to a Hugging Face config.json.</summary>
public sealed record LlamaConfig(
    int VocabSize,
    int HiddenSize,
    int IntermediateSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int NumKeyValueHeads,
    int MaxPositionEmbeddings = 512,
    double RopeTheta = 10000,
    double RmsNormEps = 1e-5,
    bool TieWordEmbeddings = true,
    bool AttentionBias = false,
    int BosTokenId = 1,
    int EosTokenId = 2,
    int PadTokenId = 0,
    string Architecture = "LlamaForCausalLM",
    int? ExplicitHeadDim = null,
    RopeScaling? RopeScaling = null,
    int[]? ExtraEosTokenIds = null)
{
    public static readonly string[] SupportedArchitectures = ["LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"];

    /// <summary>hidden_size / heads unless config.json names head_dim (Llama 3.2, Mistral Nemo do).</summary>
    public int HeadDim => ExplicitHeadDim ?? HiddenSize / NumAttentionHeads;

    /// <summary>Llama 3 configs list several end tokens (end_of_text, eot_id, ...); any of them ends a sample.</summary>
    public bool IsEos(int token) => token == EosTokenId || (ExtraEosTokenIds is { } extra && Array.IndexOf(extra, token) >= 0);

    public void Validate(string source = "config.json")
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || IntermediateSize <= 0 || NumHiddenLayers <= 0 || NumAttentionHeads <= 0)
            throw new InvalidDataException($"{source}: sizes must be positive");
        if (ExplicitHeadDim is null && HiddenSize % NumAttentionHeads != 0)
            throw new InvalidDataException($"{source}: hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        if (NumKeyValueHeads <= 0 || NumAttentionHeads % NumKeyValueHeads != 0)
            throw new InvalidDataException($"{source}: num_attention_heads {NumAttentionHeads} is not a multiple of num_key_value_heads {NumKeyValueHeads}");
        if (HeadDim <= 0 || HeadDim % 2 != 0) throw new InvalidDataException($"{source}: head dimension must be even for rotary embeddings");
        if (!SupportedArchitectures.Contains(Architecture))
            throw new InvalidDataException($"{source}: architecture {Architecture} is not supported (supported: {string.Join(", ", SupportedArchitectures)})");
        if (MaxPositionEmbeddings <= 0 || MaxPositionEmbeddings > MaxPositions)
            throw new InvalidDataException($"{source}: max_position_embeddings {MaxPositionEmbeddings} is outside 1..{MaxPositions}");
        // An untrusted config.json must not make the loader allocate what no machine holds (a 4e15-byte model failed
        // deep inside libtorch): the weights, at 2 bytes each at least, must fit in this machine's memory.
        var bytes = EstimatedParameters * 2.0;
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (bytes > available)
            throw new InvalidDataException($"{source}: a model of ~{EstimatedParameters / 1e9:F1}B parameters needs at least {bytes / 1e9:F1} GB; this machine has {available / 1e9:F1} GB");
    }

    /// <summary>Longest context accepted from a config.json (the largest published models use 1M positions).</summary>
    public const int MaxPositions = 1 << 24;

    /// <summary>Weights of the decoder: embeddings (twice when untied), attention and MLP per layer, norms (in double: an
    /// untrusted config can name sizes whose product overflows a long).</summary>
    public double EstimatedParameters
    {
        get
        {
            double h = HiddenSize, kv = (double)NumKeyValueHeads * HeadDim, q = (double)NumAttentionHeads * HeadDim;
            var perLayer = h * q + 2 * h * kv + q * h + 3 * h * IntermediateSize + 2 * h;
            return (double)VocabSize * h * (TieWordEmbeddings ? 1 : 2) + NumHiddenLayers * perLayer + h;
        }
    }

    /// <summary>Rotary inverse frequencies as Hugging Face computes them (float32 base, then the rope_scaling rule).</summary>
    public float[] InverseFrequencies()
    {
        var half = HeadDim / 2;
        var inv = new double[half];
        for (var i = 0; i < half; i++) inv[i] = 1.0 / Math.Pow(RopeTheta, (float)(2 * i) / HeadDim);
        if (RopeScaling is { Type: "linear", Factor: var linear })
            for (var i = 0; i < half; i++) inv[i] /= linear;
        else if (RopeScaling is { Type: "llama3" } s)
        {
            double lowWavelen = s.OriginalMaxPositions / s.LowFreqFactor, highWavelen = s.OriginalMaxPositions / s.HighFreqFactor;
            for (var i = 0; i < half; i++)
            {
                var wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowWavelen) inv[i] /= s.Factor;            // low frequencies: stretched
                else if (wavelen >= highWavelen)                         // middle band: interpolated
                {
                    var smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                }
            }
        }
        return inv.Select(x => (float)x).ToArray();
    }

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = Architecture switch { "Qwen2ForCausalLM" => "qwen2", "MistralForCausalLM" => "mistral", _ => "llama" },
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["rope_theta"] = RopeTheta,
            ["rms_norm_eps"] = RmsNormEps,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_bias"] = AttentionBias,
            ["hidden_act"] = "silu",
            ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = ExtraEosTokenIds is { Length: > 0 } extra
                ? new JsonArray([EosTokenId, .. extra.Select(e => (JsonNode)e)]) : EosTokenId,
            ["pad_token_id"] = PadTokenId,
            ["torch_dtype"] = "float32",
        };
        if (ExplicitHeadDim is { } headDim) o["head_dim"] = headDim;
        if (RopeScaling is { } r)
            o["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = r.Type, ["factor"] = r.Factor, ["low_freq_factor"] = r.LowFreqFactor,
                ["high_freq_factor"] = r.HighFreqFactor, ["original_max_position_embeddings"] = r.OriginalMaxPositions,
            };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static LlamaConfig FromJson(string json, string source = "config.json")
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"{source} is not valid JSON: {e.Message}"); }
        if (root is not JsonObject o) throw new InvalidDataException($"{source} is not a JSON object");

        static bool TryInt(JsonNode? node, out int value)
        {
            value = 0;
            return node is JsonValue v && (v.TryGetValue(out value) || (v.TryGetValue<double>(out var d) && d == Math.Floor(d) && (value = (int)d) == d));
        }
        int Int(string key, int? fallback = null) =>
            TryInt(o[key], out var i) ? i : fallback ?? throw new InvalidDataException($"{source} lacks integer \"{key}\"");
        double Dbl(JsonObject obj, string key, double fallback) =>
            obj[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d : fallback;
        bool Bool(string key, bool fallback) =>
            o[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : fallback;

        var arch = (o["architectures"] as JsonArray)?.FirstOrDefault()?.GetValue<string>() ?? "LlamaForCausalLM";
        if (!SupportedArchitectures.Contains(arch))
            throw new InvalidDataException($"{source}: architecture {arch} is not supported (supported: {string.Join(", ", SupportedArchitectures)})");
        if (o["hidden_act"] is JsonValue act && act.GetValue<string>() != "silu")
            throw new InvalidDataException($"{source}: hidden_act {act} is not supported (silu only)");

        // eos_token_id is an integer or (Llama 3) a list of integers.
        var eos = o["eos_token_id"] switch
        {
            JsonArray list => list.Select(n => TryInt(n, out var id) ? id : throw new InvalidDataException($"{source}: eos_token_id holds a non-integer")).ToArray(),
            var node when TryInt(node, out var id) => [id],
            _ => [2],
        };
        if (eos.Length == 0) throw new InvalidDataException($"{source}: eos_token_id is an empty list");

        RopeScaling? scaling = null;
        if (o["rope_scaling"] is JsonObject rs)
        {
            var type = (rs["rope_type"] ?? rs["type"])?.GetValue<string>() ?? "default";
            scaling = type switch
            {
                "default" => null,
                "linear" => new RopeScaling("linear", Dbl(rs, "factor", 1)),
                "llama3" => new RopeScaling("llama3", Dbl(rs, "factor", 8), Dbl(rs, "low_freq_factor", 1), Dbl(rs, "high_freq_factor", 4),
                    TryInt(rs["original_max_position_embeddings"], out var omp) ? omp : 8192),
                _ => throw new InvalidDataException($"{source}: rope_scaling type \"{type}\" is not supported (linear, llama3)"),
            };
        }

        var heads = Int("num_attention_heads");
        var config = new LlamaConfig(
            VocabSize: Int("vocab_size"),
            HiddenSize: Int("hidden_size"),
            IntermediateSize: Int("intermediate_size"),
            NumHiddenLayers: Int("num_hidden_layers"),
            NumAttentionHeads: heads,
            NumKeyValueHeads: Int("num_key_value_heads", heads),
            MaxPositionEmbeddings: Int("max_position_embeddings", 2048),
            RopeTheta: Dbl(o, "rope_theta", 10000),
            RmsNormEps: Dbl(o, "rms_norm_eps", 1e-6),
            TieWordEmbeddings: Bool("tie_word_embeddings", false),
            AttentionBias: Bool("attention_bias", arch == "Qwen2ForCausalLM"),
            BosTokenId: Int("bos_token_id", 1),
            EosTokenId: eos[0],
            PadTokenId: Int("pad_token_id", eos[0]),
            Architecture: arch,
            ExplicitHeadDim: o["head_dim"] is null ? null : Int("head_dim"),
            RopeScaling: scaling,
            ExtraEosTokenIds: eos.Length > 1 ? eos[1..] : null);
        config.Validate(source);
        return config;
    }
}
