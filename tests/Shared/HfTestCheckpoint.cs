using System.Text.Json.Nodes;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;

namespace SelfPlay.Tests.Shared;

/// <summary>
/// Small random Hugging Face checkpoints for tests: config.json, model.safetensors and a real byte-level BPE
/// tokenizer.json in Qwen2's layout (its pre-tokenizer regex, a ByteLevel post-processor that adds no BOS,
/// bos_token null) or Llama's (TemplateProcessing adding &lt;s&gt;). Its merges cross the boundaries the environments
/// write: " =" (Game of 24's stop string) and ")\n" (a step's end) are one token each.
/// </summary>
public static class HfTestCheckpoint
{
    /// <summary>Merges applied in this order (byte-level symbols: Ġ is the space, Ċ the newline).</summary>
    public static readonly string[] Merges =
    [
        "Ġ =", ") Ċ", "Ġ *", "Ġ +", "Ġ -", "Ġ /", "Ġ (", "l e", "le f", "lef t", "I n", "In p", "Inp u", "Inpu t",
        "A n", "An s", "Ans w", "Answ e", "Answe r", ": Ċ",
    ];

    public const string EndOfText = "<|endoftext|>", ImStart = "<|im_start|>", ImEnd = "<|im_end|>";

    /// <summary>GPT-2's byte-to-symbol table: printable bytes map to themselves, the others to U+0100 onwards.</summary>
    public static string[] ByteSymbols()
    {
        var bytes = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToList();
        var chars = bytes.ToList();
        var n = 0;
        for (var b = 0; b < 256; b++)
            if (!bytes.Contains(b)) { bytes.Add(b); chars.Add(256 + n++); }
        var symbols = new string[256];
        for (var i = 0; i < bytes.Count; i++) symbols[bytes[i]] = ((char)chars[i]).ToString();
        return symbols;
    }

    /// <summary>The vocabulary: the 256 byte symbols (ids 0..255 in byte order), the merges' results, then the specials.</summary>
    public static Dictionary<string, int> Vocabulary()
    {
        var vocab = new Dictionary<string, int>();
        foreach (var symbol in ByteSymbols()) vocab[symbol] = vocab.Count;
        foreach (var merge in Merges) vocab.TryAdd(merge.Replace(" ", ""), vocab.Count);
        foreach (var special in new[] { EndOfText, ImStart, ImEnd }) vocab[special] = vocab.Count;
        return vocab;
    }

    /// <summary>Writes tokenizer.json and tokenizer_config.json into <paramref name="dir"/>.</summary>
    public static void WriteTokenizer(string dir, bool qwen2)
    {
        var vocab = Vocabulary();
        var model = new JsonObject { ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
            ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
            ["vocab"] = new JsonObject(vocab.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["merges"] = new JsonArray([.. Merges.Select(m => (JsonNode)m)]) };
        JsonObject Added(string content) => new() { ["id"] = vocab[content], ["content"] = content, ["single_word"] = false, ["lstrip"] = false,
            ["rstrip"] = false, ["normalized"] = false, ["special"] = true };
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = !qwen2 };
        JsonNode preTokenizer = qwen2
            ? new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] =
                    @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
                    ["behavior"] = "Isolated", ["invert"] = false },
                byteLevel.DeepClone()) }
            : byteLevel.DeepClone();
        JsonNode postProcessor = qwen2
            ? byteLevel.DeepClone()
            : new JsonObject { ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = EndOfText, ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject { [EndOfText] = new JsonObject { ["id"] = EndOfText, ["ids"] = new JsonArray(vocab[EndOfText]),
                    ["tokens"] = new JsonArray(EndOfText) } } };
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = new JsonArray(Added(EndOfText), Added(ImStart), Added(ImEnd)),
            ["normalizer"] = null, ["pre_tokenizer"] = preTokenizer, ["post_processor"] = postProcessor,
            ["decoder"] = byteLevel.DeepClone(), ["model"] = model,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), new JsonObject
        {
            ["bos_token"] = qwen2 ? null : EndOfText, ["eos_token"] = qwen2 ? ImEnd : EndOfText, ["pad_token"] = EndOfText,
            ["tokenizer_class"] = qwen2 ? "Qwen2Tokenizer" : "PreTrainedTokenizerFast", ["model_max_length"] = 32768,
        }.ToJsonString());
    }

    /// <summary>A random checkpoint folder (Qwen2: attention bias, tied embeddings; Llama: untied) with the tokenizer.</summary>
    public static string Create(string dir, bool qwen2, int hidden = 32, int layers = 1, long seed = 1)
    {
        Directory.CreateDirectory(dir);
        WriteTokenizer(dir, qwen2);
        var vocab = Vocabulary();
        // vocab_size larger than the tokenizer's, as published checkpoints pad their embeddings.
        var config = new LlamaConfig(VocabSize: vocab.Count + 5, HiddenSize: hidden, IntermediateSize: hidden * 2, NumHiddenLayers: layers,
            NumAttentionHeads: 2, NumKeyValueHeads: 1, MaxPositionEmbeddings: 512, TieWordEmbeddings: qwen2, AttentionBias: qwen2,
            BosTokenId: vocab[EndOfText], EosTokenId: vocab[qwen2 ? ImEnd : EndOfText], PadTokenId: vocab[EndOfText],
            Architecture: qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
        using var model = new LlamaForCausalLM(config, initSeed: seed);
        File.WriteAllText(Path.Combine(dir, Checkpoint.ConfigFile), config.ToJson());
        ModelWeights.Save(model, dir);
        return dir;
    }
}
