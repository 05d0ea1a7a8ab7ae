using System.Text.Json;
using System.Text.Json.Nodes;
using SelfPlay.Models.Llama;

namespace SelfPlay.Models.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> through the Rust tokenizers library (Tokenizers.DotNet), with the special
/// tokens and chat template of the checkpoint's <c>tokenizer_config.json</c> (falling back to config.json's ids).
/// BOS is what Hugging Face adds: the tokenizer.json post-processor decides (Llama's TemplateProcessing adds one,
/// Qwen2's ByteLevel adds none, whatever config.json's bos_token_id says); add_bos_token = false turns it off.
/// </summary>
public sealed class HfTokenizer : ITokenizer, IDisposable
{
    public const string FileName = "tokenizer.json", ConfigFileName = "tokenizer_config.json";

    readonly global::Tokenizers.DotNet.Tokenizer _tokenizer;
    readonly uint[] _addedPrefix;
    readonly Dictionary<int, string> _tokens;
    readonly HashSet<int> _special;

    /// <summary>The folder it was loaded from (its files are copied into every checkpoint saved with it).</summary>
    public string SourceDirectory { get; }

    /// <summary>The files a checkpoint carries for this tokenizer, when the source has them.</summary>
    public static readonly string[] Files = [FileName, ConfigFileName, "special_tokens_map.json"];

    public int VocabSize { get; }
    public int? BosId { get; }
    public IReadOnlyList<int> EosIds { get; }
    public int? PadId { get; }
    /// <summary>tokenizer_config.json's Jinja chat_template, or null.</summary>
    public string? ChatTemplateSource { get; }

    /// <summary>The recognised format of <see cref="ChatTemplateSource"/> (plain without one); an unsupported template throws here, when used.</summary>
    public ChatTemplate ChatTemplate => ChatTemplate.Detect(ChatTemplateSource);

    HfTokenizer(global::Tokenizers.DotNet.Tokenizer tokenizer, string source, Dictionary<string, int> ids, HashSet<int> special, bool? addBos,
        IReadOnlyList<int> eos, int? pad, string? template)
    {
        (_tokenizer, SourceDirectory, _special) = (tokenizer, source, special);
        _tokens = ids.GroupBy(kv => kv.Value).ToDictionary(g => g.Key, g => g.First().Key);
        // The post-processor's special tokens (e.g. Llama's BOS) come back from Encode(""): Encode strips them and
        // EncodePrompt puts BOS back, so texts concatenate without stray BOS tokens in the middle.
        _addedPrefix = tokenizer.Encode("");
        BosId = addBos != false && _addedPrefix.Length == 1 ? (int)_addedPrefix[0] : null;
        (VocabSize, EosIds, PadId, ChatTemplateSource) = (ids.Count == 0 ? 0 : ids.Values.Max() + 1, eos, pad, template);
    }

    public static HfTokenizer Load(string directory, LlamaConfig? modelConfig = null)
    {
        var path = Path.Combine(directory, FileName);
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path} is not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not valid JSON: {e.Message}"); }
        var ids = new Dictionary<string, int>();
        if (json["model"]?["vocab"] is JsonObject vocab)
            foreach (var (token, id) in vocab) ids[token] = id!.GetValue<int>();
        var special = new HashSet<int>();
        if (json["added_tokens"] is JsonArray added)
            foreach (var t in added)
            {
                ids[t!["content"]!.GetValue<string>()] = t["id"]!.GetValue<int>();
                if (t["special"]?.GetValueKind() == JsonValueKind.True) special.Add(t["id"]!.GetValue<int>());
            }

        var configPath = Path.Combine(directory, ConfigFileName);
        JsonObject? config = null;
        if (File.Exists(configPath))
        {
            try { config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject; }
            catch (JsonException e) { throw new InvalidDataException($"{configPath} is not valid JSON: {e.Message}"); }
        }
        int? Special(string key)
        {
            var node = config?[key];
            var text = node is JsonObject o ? o["content"]?.GetValue<string>() : node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            if (text is null) return null;
            return ids.TryGetValue(text, out var id) ? id : throw new InvalidDataException($"{configPath}: {key} \"{text}\" is not a token of {FileName}");
        }
        _ = Special("bos_token"); // checked to be a token, but the post-processor decides whether it is added
        bool? addBos = config?["add_bos_token"] is JsonValue addBosValue && addBosValue.TryGetValue<bool>(out var adds) ? adds : null;
        var eos = Special("eos_token") is { } eosId ? [eosId] : modelConfig is { } m ? [m.EosTokenId, .. m.ExtraEosTokenIds ?? []] : new List<int>();
        var template = config?["chat_template"] is JsonValue tv && tv.TryGetValue<string>(out var tpl) ? tpl : null;

        global::Tokenizers.DotNet.Tokenizer tokenizer;
        try { tokenizer = new global::Tokenizers.DotNet.Tokenizer(path); }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path} cannot be loaded by the tokenizers library: {ex.Message.Split('\n')[0]}");
        }
        return new HfTokenizer(tokenizer, Path.GetFullPath(directory), ids, special, addBos, eos, Special("pad_token"), template);
    }

    public int[] Encode(string text)
    {
        var ids = _tokenizer.Encode(text);
        var skip = ids.AsSpan().StartsWith(_addedPrefix) ? _addedPrefix.Length : 0;
        return ids.Skip(skip).Select(i => (int)i).ToArray();
    }

    public string TokenText(int id) => _tokens.TryGetValue(id, out var text) ? text
        : throw new ArgumentOutOfRangeException(nameof(id), $"token {id} is not in {FileName}");

    /// <summary>Copies the tokenizer files of the folder it was loaded from (unchanged: they are Hugging Face's).</summary>
    public void Save(string directory)
    {
        foreach (var file in Files)
        {
            var from = Path.Combine(SourceDirectory, file);
            var to = Path.Combine(directory, file);
            if (File.Exists(from) && !string.Equals(Path.GetFullPath(from), Path.GetFullPath(to), StringComparison.Ordinal)) File.Copy(from, to, overwrite: true);
        }
    }

    /// <summary>Text of the ids, special tokens left out.</summary>
    public string Decode(IEnumerable<int> ids) => _tokenizer.Decode(ids.Select(i => (uint)i).ToArray());

    /// <summary>
    /// The ids and where each one's text ends in <paramref name="text"/>. Decode leaves the special tokens out, but the
    /// text holds them (a chat template's markers, written as text and encoded as one token each), so their text counts
    /// here: otherwise every end after a marker falls short by the markers' length, and a loss mask built from the ends
    /// (prompt, steps, environment turns) lands on the wrong tokens.
    /// </summary>
    public (int[] Ids, int[] Ends) EncodeWithEnds(string text)
    {
        var ids = Encode(text);
        return (ids, TokenEnds.Of(ids, Decode, id => _special.Contains(id) ? TokenText(id).Length : null));
    }

    /// <summary>A conversation rendered with the checkpoint's chat template, BOS first, ready for generation.</summary>
    public int[] EncodeChat(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true) =>
        this.EncodePrompt(ChatTemplate.Render(messages, addGenerationPrompt));

    public void Dispose() => _tokenizer.Dispose();
}
