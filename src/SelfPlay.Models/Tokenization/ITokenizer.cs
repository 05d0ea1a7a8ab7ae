namespace SelfPlay.Models.Tokenization;

/// <summary>Text to token ids and back, with the special tokens generation and scoring need.</summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int? BosId { get; }
    IReadOnlyList<int> EosIds { get; }
    int[] Encode(string text);
    string Decode(IEnumerable<int> ids);
}

public static class TokenizerExtensions
{
    /// <summary>A prompt as the model expects it: BOS first when the tokenizer has one.</summary>
    public static int[] EncodePrompt(this ITokenizer tokenizer, string text) =>
        tokenizer.BosId is { } bos ? [bos, .. tokenizer.Encode(text)] : tokenizer.Encode(text);
}
