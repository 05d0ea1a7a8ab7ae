using System.Text.Json;
using System.Text.Json.Nodes;

namespace SelfPlay.Models.Llama;

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
    string Architecture = "LlamaForCausalLM")
{
    public int HeadDim => HiddenSize / NumAttentionHeads;

    public void Validate()
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || IntermediateSize <= 0 || NumHiddenLayers <= 0 || NumAttentionHeads <= 0)
            throw new InvalidDataException("config.json: sizes must be positive");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new InvalidDataException($"config.json: hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        if (NumKeyValueHeads <= 0 || NumAttentionHeads % NumKeyValueHeads != 0)
            throw new InvalidDataException($"config.json: num_attention_heads {NumAttentionHeads} is not a multiple of num_key_value_heads {NumKeyValueHeads}");
        if (HeadDim % 2 != 0) throw new InvalidDataException("config.json: head dimension must be even for rotary embeddings");
    }

    public string ToJson() => new JsonObject
    {
        ["architectures"] = new JsonArray(Architecture),
        ["model_type"] = Architecture.StartsWith("Qwen2", StringComparison.Ordinal) ? "qwen2" : "llama",
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
        ["eos_token_id"] = EosTokenId,
        ["pad_token_id"] = PadTokenId,
        ["torch_dtype"] = "float32",
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public static LlamaConfig FromJson(string json, string source = "config.json")
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"{source} is not valid JSON: {e.Message}"); }
        if (root is not JsonObject o) throw new InvalidDataException($"{source} is not a JSON object");

        int Int(string key, int? fallback = null) =>
            o[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : fallback ?? throw new InvalidDataException($"{source} lacks integer \"{key}\"");
        double Dbl(string key, double fallback) =>
            o[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d : fallback;
        bool Bool(string key, bool fallback) =>
            o[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : fallback;

        var arch = (o["architectures"] as JsonArray)?.FirstOrDefault()?.GetValue<string>() ?? "LlamaForCausalLM";
        string[] supported = ["LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"];
        if (!supported.Contains(arch))
            throw new InvalidDataException($"{source}: architecture {arch} is not supported (supported: {string.Join(", ", supported)})");
        var heads = Int("num_attention_heads");
        var config = new LlamaConfig(
            VocabSize: Int("vocab_size"),
            HiddenSize: Int("hidden_size"),
            IntermediateSize: Int("intermediate_size"),
            NumHiddenLayers: Int("num_hidden_layers"),
            NumAttentionHeads: heads,
            NumKeyValueHeads: Int("num_key_value_heads", heads),
            MaxPositionEmbeddings: Int("max_position_embeddings", 2048),
            RopeTheta: Dbl("rope_theta", 10000),
            RmsNormEps: Dbl("rms_norm_eps", 1e-6),
            TieWordEmbeddings: Bool("tie_word_embeddings", false),
            AttentionBias: Bool("attention_bias", arch == "Qwen2ForCausalLM"),
            BosTokenId: Int("bos_token_id", 1),
            EosTokenId: Int("eos_token_id", 2),
            PadTokenId: Int("pad_token_id", 0),
            Architecture: arch);
        config.Validate();
        return config;
    }
}
