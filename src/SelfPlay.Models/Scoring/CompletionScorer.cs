using SelfPlay.Models.Llama;
using SelfPlay.Models.Training;
using static TorchSharp.torch;

namespace SelfPlay.Models.Scoring;

/// <summary>
/// A completion to score after a prompt. <see cref="SpanStart"/>..<see cref="SpanEnd"/> (completion token indices,
/// end exclusive; null = to the end) selects the part whose log-probs <see cref="CompletionScore.SpanSum"/> adds up,
/// e.g. one step of a multi-step answer.
/// </summary>
public sealed record ScoreRequest(int[] PromptIds, int[] CompletionIds, int SpanStart = 0, int? SpanEnd = null);

/// <summary>Per-token log-probs of the completion under the model, their sum and mean, and the span's sum.</summary>
public sealed record CompletionScore(float[] TokenLogProbs, double Sum, double Mean, double SpanSum);

/// <summary>Batched log-probs of (prompt, completion) pairs: one forward pass per batch, right-padded, masked.</summary>
public static class CompletionScorer
{
    public static IReadOnlyList<CompletionScore> Score(LlamaForCausalLM model, IReadOnlyList<ScoreRequest> requests, int batchSize = 32)
    {
        foreach (var r in requests)
        {
            if (r.PromptIds.Length == 0) throw new ArgumentException("a prompt needs at least one token (e.g. BOS) to condition the completion on");
            if (r.CompletionIds.Length == 0) throw new ArgumentException("the completion is empty");
            var end = r.SpanEnd ?? r.CompletionIds.Length;
            if (r.SpanStart < 0 || end > r.CompletionIds.Length || r.SpanStart > end)
                throw new ArgumentException($"span {r.SpanStart}..{end} is outside the completion (length {r.CompletionIds.Length})");
            foreach (var id in r.PromptIds.Concat(r.CompletionIds))
                if (id < 0 || id >= model.Config.VocabSize) throw new ArgumentException($"token id {id} is outside the vocabulary (0..{model.Config.VocabSize - 1})");
        }
        var results = new List<CompletionScore>(requests.Count);
        using var noGrad = no_grad();
        for (var i = 0; i < requests.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = requests.Skip(i).Take(batchSize).ToList();
            var (logProbs, _) = SequenceScorer.TokenLogProbs(model, chunk.Select(r => ScoredSequence.PromptCompletion(r.PromptIds, r.CompletionIds)).ToList());
            var width = logProbs.shape[1];
            var values = logProbs.cpu().data<float>().ToArray();
            for (var b = 0; b < chunk.Count; b++)
            {
                var r = chunk[b];
                // Position t of the row holds log p(token t+1 | ..t): the completion starts at prompt length - 1.
                var tokens = values.AsSpan((int)(b * width) + r.PromptIds.Length - 1, r.CompletionIds.Length).ToArray();
                var sum = tokens.Sum(x => (double)x);
                var spanSum = tokens[r.SpanStart..(r.SpanEnd ?? tokens.Length)].Sum(x => (double)x);
                results.Add(new CompletionScore(tokens, sum, sum / tokens.Length, spanSum));
            }
        }
        return results;
    }
}
