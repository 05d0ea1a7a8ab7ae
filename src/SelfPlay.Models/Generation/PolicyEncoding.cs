using SelfPlay.Core.Training;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;

namespace SelfPlay.Models.Generation;

/// <summary>
/// How text becomes policy tokens, in one place for sampling and training alike. The rule, for any tokenizer: a text
/// (a state, or a state with its steps) is encoded whole, BOS first when the tokenizer adds one, so the tokens the
/// learner trains on are the tokens the sampler conditions on at that text (a BPE merge across a step boundary, such
/// as ")\n" or " =", is the same in both). Parts of the text are mapped to tokens by character position: a token
/// belongs to the part its first character is in. With the character tokenizer this is one token per character.
/// </summary>
public static class PolicyEncoding
{
    public static int[] Prompt(ITokenizer tokenizer, string state) => tokenizer.EncodePrompt(state);

    /// <summary>Text parts encoded whole: the ids, and per id the part it belongs to (-1: the BOS).</summary>
    public static (int[] Ids, int[] PartOf) Encode(ITokenizer tokenizer, IReadOnlyList<string> parts)
    {
        var (ids, ends) = tokenizer.EncodeWithEnds(string.Concat(parts));
        var partOf = new int[ids.Length];
        var part = 0;
        var partEnd = parts.Count > 0 ? parts[0].Length : 0;
        var start = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            while (part < parts.Count - 1 && start >= partEnd) partEnd += parts[++part].Length;
            partOf[i] = part;
            start = Math.Max(start, ends[i]);
        }
        if (tokenizer.BosId is not { } bos) return (ids, partOf);
        return ([bos, .. ids], [-1, .. partOf]);
    }

    /// <summary>A warm-up trace as a scored token sequence: the tokens of scored segments are scored (BOS never).</summary>
    public static ScoredSequence Trace(ITokenizer tokenizer, IReadOnlyList<TextSegment> segments)
    {
        var (ids, partOf) = Encode(tokenizer, segments.Select(s => s.Text).ToList());
        return new ScoredSequence(ids, [.. partOf.Select(p => p >= 0 && segments[p].Scored)]);
    }
}
