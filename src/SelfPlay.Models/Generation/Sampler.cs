using SelfPlay.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Generation;

/// <summary>Ask for <paramref name="Count"/> continuations of one prompt. Temperature 0 means greedy.</summary>
public sealed record SampleRequest(int[] PromptIds, int Count, double Temperature, int MaxNewTokens, IReadOnlyList<int[]> StopSequences);

/// <summary>
/// One continuation: generated ids (stop sequence included) and their log-probs under the policy itself
/// (temperature 1), which is what priors and preference losses need whatever temperature was sampled at.
/// </summary>
public sealed record Sample(int[] TokenIds, float[] LogProbs, bool Stopped);

/// <summary>
/// Batched sampling with a KV cache. All requests run in one batch: prompts are left-padded, positions and an
/// additive attention mask account for the padding, so requests of different lengths share every forward pass.
/// </summary>
public static class Sampler
{
    public static IReadOnlyList<Sample[]> Generate(LlamaForCausalLM model, IReadOnlyList<SampleRequest> requests, long seed)
    {
        if (requests.Count == 0) return [];
        var device = model.parameters().First().device;
        var rows = requests.SelectMany((r, i) => Enumerable.Repeat(i, r.Count)).ToArray();
        var batch = rows.Length;
        var results = requests.Select(r => new Sample[r.Count]).ToArray();
        if (batch == 0) return results;
        foreach (var r in requests)
            if (r.PromptIds.Length == 0) throw new ArgumentException("a prompt must hold at least one token (BOS)");

        var maxPrompt = requests.Max(r => r.PromptIds.Length);
        var padded = new long[batch * maxPrompt];
        var valid = new bool[batch * maxPrompt];
        for (var b = 0; b < batch; b++)
        {
            var prompt = requests[rows[b]].PromptIds;
            var offset = maxPrompt - prompt.Length;
            for (var t = 0; t < prompt.Length; t++)
            {
                padded[b * maxPrompt + offset + t] = prompt[t];
                valid[b * maxPrompt + offset + t] = true;
            }
        }

        var generated = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var logProbs = Enumerable.Range(0, batch).Select(_ => new List<float>()).ToArray();
        var done = new bool[batch];
        var stopped = new bool[batch];
        var maxNew = requests.Max(r => r.MaxNewTokens);
        var temps = rows.Select(r => (float)requests[r].Temperature).ToArray();
        var anySampled = temps.Any(t => t > 0);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed, device);
        var tempTensor = tensor(temps.Select(t => Math.Max(t, 1e-6f)).ToArray(), device: device).unsqueeze(1);
        var greedyRows = tensor(temps.Select(t => t <= 0).ToArray(), device: device);

        var keyValid = tensor(valid, [batch, maxPrompt], device: device);
        var positions = (keyValid.to(ScalarType.Int64).cumsum(1) - 1).clamp_min(0);
        var cache = model.NewCache();
        var logits = model.Forward(tensor(padded, [batch, maxPrompt], device: device), positions,
            PrefillMask(keyValid), cache)[.., -1, ..];
        var nextPosition = positions[.., -1] + 1;

        for (var step = 0; step < maxNew; step++)
        {
            using var stepScope = NewDisposeScope();
            var logSoftmax = logits.to(ScalarType.Float32).log_softmax(-1);
            var greedy = logits.argmax(-1);
            var next = greedy;
            if (anySampled)
            {
                var sampled = multinomial((logits.to(ScalarType.Float32) / tempTensor).softmax(-1), 1, false, generator).squeeze(1);
                next = where(greedyRows, greedy, sampled);
            }
            var chosenLogProbs = logSoftmax.gather(1, next.unsqueeze(1)).squeeze(1).cpu().data<float>().ToArray();
            var nextIds = next.cpu().data<long>().ToArray();

            var allDone = true;
            for (var b = 0; b < batch; b++)
            {
                if (done[b]) continue;
                var request = requests[rows[b]];
                var token = (int)nextIds[b];
                generated[b].Add(token);
                logProbs[b].Add(chosenLogProbs[b]);
                if (token == model.Config.EosTokenId || EndsWithAny(generated[b], request.StopSequences))
                {
                    done[b] = true;
                    stopped[b] = true;
                }
                else if (generated[b].Count >= request.MaxNewTokens) done[b] = true;
                allDone &= done[b];
            }
            if (allDone) break;

            // Finished rows keep decoding a pad token; their output is never read.
            var feed = nextIds.Select((id, b) => done[b] ? model.Config.PadTokenId : id).ToArray();
            keyValid = cat([keyValid, ones(batch, 1, dtype: ScalarType.Bool, device: device)], 1).MoveToOuterDisposeScope();
            var mask = zeros(batch, 1, 1, keyValid.shape[1], device: device)
                .masked_fill(keyValid.logical_not().unsqueeze(1).unsqueeze(1), float.NegativeInfinity);
            logits = model.Forward(tensor(feed, [batch, 1], device: device), nextPosition.unsqueeze(1), mask, cache)[.., -1, ..]
                .MoveToOuterDisposeScope();
            nextPosition = (nextPosition + 1).MoveToOuterDisposeScope();
            for (var l = 0; l < cache.Keys.Length; l++)
            {
                cache.Keys[l]!.MoveToOuterDisposeScope();
                cache.Values[l]!.MoveToOuterDisposeScope();
            }
        }

        var counters = new int[requests.Count];
        for (var b = 0; b < batch; b++)
        {
            var r = rows[b];
            results[r][counters[r]++] = new Sample([.. generated[b]], [.. logProbs[b]], stopped[b]);
        }
        return results;
    }

    /// <summary>Causal mask over a left-padded prompt; a padding query attends to itself only, so no row is all -inf.</summary>
    static Tensor PrefillMask(Tensor keyValid)
    {
        var (batch, length) = (keyValid.shape[0], keyValid.shape[1]);
        var index = arange(length, device: keyValid.device);
        var causal = index.unsqueeze(0) <= index.unsqueeze(1);           // [T,S]
        var diagonal = index.unsqueeze(0) == index.unsqueeze(1);
        var allowed = causal.unsqueeze(0).logical_and(keyValid.unsqueeze(1)).logical_or(diagonal.unsqueeze(0)); // [B,T,S]
        return zeros(batch, 1, length, length, device: keyValid.device)
            .masked_fill(allowed.logical_not().unsqueeze(1), float.NegativeInfinity);
    }

    static bool EndsWithAny(List<int> ids, IReadOnlyList<int[]> stops)
    {
        foreach (var stop in stops)
        {
            if (stop.Length == 0 || stop.Length > ids.Count) continue;
            var match = true;
            for (var i = 0; i < stop.Length && match; i++) match = ids[ids.Count - stop.Length + i] == stop[i];
            if (match) return true;
        }
        return false;
    }
}
