using System.Text.Json;

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

    public string Decode(IEnumerable<int> ids)
    {
        var chars = new List<char>();
        foreach (var id in ids)
            if (id >= FirstChar && id < VocabSize) chars.Add(Alphabet[id - FirstChar]);
        return new string([.. chars]);
    }

    public const string FileName = "char_tokenizer.json";

    public void Save(string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName),
            JsonSerializer.Serialize(new { type = "char", alphabet = Alphabet, pad = Pad, bos = Bos, eos = Eos, unk = Unk }));

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
