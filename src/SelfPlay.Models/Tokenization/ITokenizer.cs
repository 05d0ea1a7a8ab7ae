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
        return (ids, TokenEnds.Of(ids, Decode, _ => null));
    }
}

public static class TokenEnds
{
    /// <summary>
    /// Where each token's text ends, in linear time: a token adds what decoding it after the token before it adds (a
    /// pair keeps the decoder's context, such as Metaspace dropping only the text's first space). The sum is checked
    /// against one decode of all the ordinary tokens; a decoder whose pieces do not add up (a multi-byte character
    /// split over three tokens) falls back to decoding every prefix. A special token (Decode leaves it out) counts
    /// <paramref name="specialLength"/> characters.
    /// </summary>
    public static int[] Of(IReadOnlyList<int> ids, Func<IEnumerable<int>, string> decode, Func<int, int?> specialLength)
    {
        var ends = new int[ids.Count];
        var (specialChars, ordinaryChars, previous) = (0, 0, (int?)null);
        var ordinary = new List<int>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            if (specialLength(ids[i]) is { } length) specialChars += length;
            else
            {
                ordinaryChars += previous is { } p ? decode([p, ids[i]]).Length - decode([p]).Length : decode([ids[i]]).Length;
                previous = ids[i];
                ordinary.Add(ids[i]);
            }
            ends[i] = specialChars + ordinaryChars;
        }
        if (ordinaryChars == decode(ordinary).Length) return ends;

        (specialChars, ordinary) = (0, new List<int>(ids.Count));
        for (var i = 0; i < ids.Count; i++)
        {
            if (specialLength(ids[i]) is { } length) specialChars += length;
            else ordinary.Add(ids[i]);
            ends[i] = specialChars + decode(ordinary).Length;
        }
        return ends;
    }
}

public static class TokenizerExtensions
{
    /// <summary>A prompt as the model expects it: BOS first when the tokenizer adds one.</summary>
    public static int[] EncodePrompt(this ITokenizer tokenizer, string text) =>
        tokenizer.BosId is { } bos ? [bos, .. tokenizer.Encode(text)] : tokenizer.Encode(text);
}
