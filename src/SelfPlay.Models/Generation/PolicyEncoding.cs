using SelfPlay.Core.Training;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;

namespace SelfPlay.Models.Generation;

/// <summary>How text states become policy tokens: BOS, then the characters. One place, for sampling and training alike.</summary>
public static class PolicyEncoding
{
    public static int[] Prompt(CharTokenizer tokenizer, string state) => [CharTokenizer.Bos, .. tokenizer.Encode(state)];

    /// <summary>A warm-up trace as a scored token sequence (BOS first, never scored).</summary>
    public static ScoredSequence Trace(CharTokenizer tokenizer, IReadOnlyList<TextSegment> segments)
    {
        var ids = new List<int> { CharTokenizer.Bos };
        var scored = new List<bool> { false };
        foreach (var segment in segments)
        {
            var encoded = tokenizer.Encode(segment.Text);
            ids.AddRange(encoded);
            scored.AddRange(Enumerable.Repeat(segment.Scored, encoded.Length));
        }
        return new ScoredSequence([.. ids], [.. scored]);
    }
}
