namespace SelfPlay.Models.Tokenization;

/// <summary>Text to token ids and back, with the special tokens generation and scoring need.</summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int? BosId { get; }
    IReadOnlyList<int> EosIds { get; }
    int[] Encode(string text);
    string Decode(IEnumerable<int> ids);

    /// <summary>The token's text as the vocabulary spells it (byte-level BPE: "Ġ=" for " ="), for debugging.</summary>
    string TokenText(int id);

    /// <summary>Writes the files that load this tokenizer back into a checkpoint folder: tokenizer.json and
    /// tokenizer_config.json, which Hugging Face's AutoTokenizer reads too.</summary>
    void Save(string directory);

    /// <summary>
    /// The ids of a text and, per id, where its text ends (characters of the text decoded up to and including it):
    /// how spans of text map to tokens whatever the merges. Exact for ASCII text; a byte-level token that splits a
    /// multi-byte character ends where the decoder puts it.
    /// </summary>
    (int[] Ids, int[] Ends) EncodeWithEnds(string text)
    {
        var ids = Encode(text);
        var ends = new int[ids.Length];
        for (var i = 0; i < ids.Length; i++) ends[i] = Decode(ids.Take(i + 1)).Length;
        return (ids, ends);
    }
}

public static class TokenizerExtensions
{
    /// <summary>A prompt as the model expects it: BOS first when the tokenizer adds one.</summary>
    public static int[] EncodePrompt(this ITokenizer tokenizer, string text) =>
        tokenizer.BosId is { } bos ? [bos, .. tokenizer.Encode(text)] : tokenizer.Encode(text);
}
