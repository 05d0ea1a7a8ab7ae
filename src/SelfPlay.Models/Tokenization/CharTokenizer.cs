using System.Text.Json;
using System.Text.Json.Nodes;

namespace SelfPlay.Models.Tokenization;

/// <summary>
/// Character-level tokenizer for the small sample models: one id per character of a fixed alphabet,
/// plus PAD/BOS/EOS/UNK. The alphabet is stored with the checkpoint so ids never shift between versions.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    public const int Pad = 0, Bos = 1, Eos = 2, Unk = 3;
    const int FirstChar = 4;

    /// <summary>Every character the built-in environments write.</summary>
    public const string DefaultAlphabet =
        " \n0123456789+-*/=()[]:.,;!?'\"_<>%#&|{}abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

    readonly Dictionary<char, int> _ids;

    public string Alphabet { get; }
    public int VocabSize => FirstChar + Alphabet.Length;
    public int? BosId => Bos;
    public IReadOnlyList<int> EosIds => [Eos];

    public CharTokenizer(string? alphabet = null)
    {
        Alphabet = alphabet ?? DefaultAlphabet;
        _ids = new Dictionary<char, int>();
        for (var i = 0; i < Alphabet.Length; i++)
            if (!_ids.TryAdd(Alphabet[i], FirstChar + i))
                throw new ArgumentException($"tokenizer alphabet repeats the character '{Alphabet[i]}'");
    }

    public int[] Encode(string text)
    {
        var ids = new int[text.Length];
        for (var i = 0; i < text.Length; i++) ids[i] = _ids.TryGetValue(text[i], out var id) ? id : Unk;
        return ids;
    }

    /// <summary>One token per character: token i ends at character i + 1 (an unknown character is one UNK token).</summary>
    public (int[] Ids, int[] Ends) EncodeWithEnds(string text) => (Encode(text), [.. Enumerable.Range(1, text.Length)]);

    public string TokenText(int id) => id switch
    {
        Pad => "<pad>", Bos => "<s>", Eos => "</s>", Unk => "<unk>",
        _ when id >= FirstChar && id < VocabSize => Alphabet[id - FirstChar].ToString(),
        _ => throw new ArgumentOutOfRangeException(nameof(id), $"token {id} is not in the vocabulary of {VocabSize}"),
    };

    public string Decode(IEnumerable<int> ids)
    {
        var chars = new List<char>();
        foreach (var id in ids)
            if (id >= FirstChar && id < VocabSize) chars.Add(Alphabet[id - FirstChar]);
        return new string([.. chars]);
    }

    public const string FileName = "char_tokenizer.json";

    /// <summary>
    /// char_tokenizer.json (what SelfPlay loads), and the same vocabulary as a Hugging Face WordLevel tokenizer.json
    /// (every character its own pre-token, BOS added by the post-processor, pieces fused on decode) with its
    /// tokenizer_config.json, so AutoTokenizer loads a character checkpoint without a converter.
    /// </summary>
    public void Save(string directory)
    {
        File.WriteAllText(Path.Combine(directory, FileName),
            JsonSerializer.Serialize(new { type = "char", alphabet = Alphabet, pad = Pad, bos = Bos, eos = Eos, unk = Unk }));
        var vocab = new JsonObject();
        for (var id = 0; id < VocabSize; id++) vocab[TokenText(id)] = id;
        JsonObject Added(int id) => new()
        {
            ["id"] = id, ["content"] = TokenText(id), ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        };
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = new JsonArray(Added(Pad), Added(Bos), Added(Eos), Added(Unk)),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "[\\s\\S]" }, ["behavior"] = "Isolated", ["invert"] = false,
            },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(Bos), ["tokens"] = new JsonArray("<s>") },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "Fuse" },
            ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = vocab, ["unk_token"] = "<unk>" },
        };
        File.WriteAllText(Path.Combine(directory, HfTokenizer.FileName), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(directory, HfTokenizer.ConfigFileName), new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast", ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["pad_token"] = "<pad>",
            ["unk_token"] = "<unk>", ["model_max_length"] = 1_000_000,
        }.ToJsonString());
    }

    public static CharTokenizer Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint has no {FileName}: {directory}");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        if (!doc.RootElement.TryGetProperty("alphabet", out var alphabet) || alphabet.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{path} has no \"alphabet\" string");
        return new CharTokenizer(alphabet.GetString());
    }
}
