using SelfPlay.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Training;

/// <summary>A token sequence and which of its tokens are scored (the completion / the policy's own steps).</summary>
public sealed record ScoredSequence(int[] Ids, bool[] Scored)
{
    public static ScoredSequence PromptCompletion(int[] prompt, int[] completion) =>
        new([.. prompt, .. completion], [.. new bool[prompt.Length], .. Enumerable.Repeat(true, completion.Length)]);

    /// <summary>Drops the unscored tokens after the last scored one: they carry no loss, only cost.</summary>
    public ScoredSequence TrimUnscoredTail()
    {
        var end = Array.LastIndexOf(Scored, true) + 1;
        return end == Ids.Length || end == 0 ? this : new ScoredSequence(Ids[..end], Scored[..end]);
    }
}

/// <summary>Log-probs of the scored tokens of right-padded sequences, in one forward pass.</summary>
public static class SequenceScorer
{
    /// <summary>
    /// Per-token log-probs [B, L-1] (position t holds log p(token t+1 | tokens ≤ t)) and the 0/1 mask of scored
    /// tokens in the same layout. Gradients flow when called outside no_grad.
    /// </summary>
    public static (Tensor LogProbs, Tensor Mask) TokenLogProbs(LlamaForCausalLM model, IReadOnlyList<ScoredSequence> sequences)
    {
        var (logProbs, _, mask) = Score(model, sequences);
        return (logProbs, mask);
    }

    /// <summary>Per-token log-probs [B, L-1] (zero where not scored) and the logits [B, L, V] they came from.</summary>
    public static (Tensor LogProbs, Tensor Logits) TokenLogProbsAndLogits(LlamaForCausalLM model, IReadOnlyList<ScoredSequence> sequences)
    {
        var (logProbs, logits, _) = Score(model, sequences);
        return (logProbs, logits);
    }

    static (Tensor MaskedLogProbs, Tensor Logits, Tensor Mask) Score(LlamaForCausalLM model, IReadOnlyList<ScoredSequence> sequences)
    {
        var device = model.parameters().First().device;
        var length = sequences.Max(s => s.Ids.Length);
        if (length < 2) throw new ArgumentException("sequences need at least two tokens (a prompt token and a scored token)");
        var ids = new long[sequences.Count * length];
        var mask = new float[sequences.Count * (length - 1)];
        for (var b = 0; b < sequences.Count; b++)
        {
            var s = sequences[b];
            if (s.Scored.Length != s.Ids.Length) throw new ArgumentException("Scored must be as long as Ids");
            if (s.Scored.Length > 0 && s.Scored[0]) throw new ArgumentException("the first token has no context and cannot be scored");
            for (var t = 0; t < s.Ids.Length; t++) ids[b * length + t] = s.Ids[t];
            for (var t = 1; t < s.Ids.Length; t++) mask[b * (length - 1) + t - 1] = s.Scored[t] ? 1 : 0;
        }
        var input = tensor(ids, [sequences.Count, length], device: device);
        var logits = model.Forward(input);
        var logProbs = logits[.., ..^1, ..].log_softmax(-1).gather(2, input[.., 1..].unsqueeze(2)).squeeze(2);
        var maskTensor = tensor(mask, [sequences.Count, length - 1], device: device);
        return (logProbs * maskTensor, logits, maskTensor);
    }

    /// <summary>Summed log-prob of the scored tokens of each sequence, without gradients.</summary>
    public static float[] SumLogProbs(LlamaForCausalLM model, IReadOnlyList<ScoredSequence> sequences, int batchSize = 64)
    {
        var sums = new List<float>();
        using var noGrad = no_grad();
        for (var i = 0; i < sequences.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var (logProbs, _) = TokenLogProbs(model, sequences.Skip(i).Take(batchSize).ToList());
            sums.AddRange(logProbs.sum(1).cpu().data<float>().ToArray());
        }
        return [.. sums];
    }
}

/// <summary>Per-token log-probs of the scored tokens only, one array per sequence (no gradients).</summary>
public static class ScoredTokenLogProbs
{
    public static float[][] Compute(LlamaForCausalLM model, IReadOnlyList<ScoredSequence> sequences, int batchSize = 64)
    {
        var result = new List<float[]>();
        using var noGrad = no_grad();
        for (var i = 0; i < sequences.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = sequences.Skip(i).Take(batchSize).ToList();
            var (logProbs, _) = SequenceScorer.TokenLogProbs(model, batch);
            var width = (int)logProbs.shape[1];
            var data = logProbs.cpu().data<float>().ToArray();
            for (var b = 0; b < batch.Count; b++)
            {
                var values = new List<float>();
                for (var t = 1; t < batch[b].Ids.Length; t++)
                    if (batch[b].Scored[t]) values.Add(data[b * width + t - 1]);
                result.Add([.. values]);
            }
        }
        return [.. result];
    }
}
