using SelfPlay.Core.Search;
using SelfPlay.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Generation;

/// <summary>
/// Ask for <paramref name="Count"/> continuations of one prompt. Temperature 0 means greedy. <see cref="TopK"/> 0 and
/// <see cref="TopP"/> 1 leave the distribution whole. <see cref="Seed"/>, when set, makes this request's samples
/// independent of what else shares the batch (sample j draws from its own stream, seeded by (Seed, j)).
/// </summary>
public sealed record SampleRequest(int[] PromptIds, int Count, double Temperature, int MaxNewTokens, IReadOnlyList<int[]> StopSequences)
{
    public int TopK { get; init; }
    public double TopP { get; init; } = 1.0;
    /// <summary>Text stops, checked on the decoded continuation (needs <see cref="GenerationOptions.Decode"/>).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    public long? Seed { get; init; }
    /// <summary>How many of the most likely tokens to report at each step, with their log-probs (0 = none).</summary>
    public int TopLogProbs { get; init; }
}

/// <summary>A token with its log-prob under the policy (temperature 1).</summary>
public readonly record struct TokenLogProb(int Id, float LogProb);

/// <summary>One token of sample <paramref name="Sample"/> of request <paramref name="Request"/>, as it is generated.</summary>
public sealed record GeneratedToken(int Request, int Sample, int Id, float LogProb, TokenLogProb[] Top);

/// <summary>
/// One continuation: generated ids (stop sequence included) and their log-probs under the policy itself
/// (temperature 1), which is what priors and preference losses need whatever temperature was sampled at.
/// </summary>
public sealed record Sample(int[] TokenIds, float[] LogProbs, bool Stopped)
{
    /// <summary>Per generated token, the <see cref="SampleRequest.TopLogProbs"/> most likely tokens (empty when none were asked for).</summary>
    public IReadOnlyList<TokenLogProb[]> TopLogProbs { get; init; } = [];
}

/// <summary>What a generation call may use besides the model: a decoder for text stops, a prefix cache, counters.</summary>
public sealed record GenerationOptions
{
    public Func<IReadOnlyList<int>, string>? Decode { get; init; }
    public PrefixCache? PrefixCache { get; init; }
    public GenerationStats? Stats { get; init; }
    /// <summary>Called for every token as it is generated, on the generating thread: what streaming needs.</summary>
    public Action<GeneratedToken>? OnToken { get; init; }
}

/// <summary>Token counts of generation calls: what went through the model and what the prefix cache spared.</summary>
public sealed class GenerationStats
{
    /// <summary>Every token that went through the model: prompt tokens prefilled plus tokens fed back while decoding.</summary>
    public long ForwardedTokens { get; set; }
    public long PrefilledTokens { get; set; }
    public long PromptTokens { get; set; }
    public long ReusedPromptTokens { get; set; }
    public long GeneratedTokens { get; set; }
    /// <summary>Generated tokens fed back, counted per sample (what decoding would forward if no samples shared a forward).</summary>
    public long FedBackTokens { get; set; }
}

/// <summary>
/// Batched sampling with a KV cache. Identical prompts are prefilled once; with a <see cref="PrefixCache"/> only the
/// part of each prompt not cached is forwarded. Prompts are left-padded, positions and an additive attention mask
/// account for the padding, so requests of different lengths share every forward pass.
/// </summary>
public static class Sampler
{
    public static IReadOnlyList<Sample[]> Generate(LlamaForCausalLM model, IReadOnlyList<SampleRequest> requests, long seed,
        GenerationOptions? options = null)
    {
        options ??= new GenerationOptions();
        if (requests.Count == 0) return [];
        var device = model.parameters().First().device;
        var rows = requests.SelectMany((r, i) => Enumerable.Repeat(i, r.Count)).ToArray();
        var sampleIndex = requests.SelectMany(r => Enumerable.Range(0, r.Count)).ToArray();
        var batch = rows.Length;
        var results = requests.Select(r => new Sample[r.Count]).ToArray();
        if (batch == 0) return results;
        foreach (var r in requests)
        {
            if (r.PromptIds.Length == 0) throw new ArgumentException("a prompt must hold at least one token (BOS)");
            if (r.TopP is <= 0 or > 1) throw new ArgumentException($"top-p must be in (0, 1], got {r.TopP}");
            if (r.TopK < 0) throw new ArgumentException($"top-k must be 0 (off) or positive, got {r.TopK}");
            if (r.StopStrings.Count > 0 && options.Decode is null) throw new ArgumentException("stop strings need a decoder");
        }

        var generated = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var logProbs = Enumerable.Range(0, batch).Select(_ => new List<float>()).ToArray();
        var topLogProbs = Enumerable.Range(0, batch).Select(_ => new List<TokenLogProb[]>()).ToArray();
        var topK = rows.Select(r => requests[r].TopLogProbs).ToArray();
        var maxTopK = topK.Max();
        var done = new bool[batch];
        var stopped = new bool[batch];
        var maxNew = requests.Max(r => r.MaxNewTokens);
        var temps = rows.Select(r => (float)requests[r].Temperature).ToArray();
        var anySampled = temps.Any(t => t > 0);
        // One stream per sample: the batch a request lands in never changes its samples.
        var streams = rows.Select((r, b) => new Random(unchecked((int)Seeds.Mix(requests[r].Seed ?? seed, sampleIndex[b])))).ToArray();
        var stats = options.Stats;

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var filter = SamplingFilter.Create(requests, rows, device);
        var tempTensor = tensor(temps.Select(t => Math.Max(t, 1e-6f)).ToArray(), device: device).unsqueeze(1);
        var greedyRows = tensor(temps.Select(t => t <= 0).ToArray(), device: device);

        // Decoding runs over sequences, not rows: rows whose prompt and generated tokens so far are the same have the same
        // next-token distribution, so one forward serves them all (siblings sampled from one state often begin alike)
        // and each row still samples with its own stream. A sequence splits when its rows sample different tokens and
        // ends when all its rows are done. Sequence s holds its KV in row s of the cache.
        var prefill = Prefill(model, requests, options.PrefixCache, stats, device);
        var cache = prefill.Cache;
        var keyValid = prefill.KeyValid;
        var logits = prefill.LastLogits;
        var nextPosition = prefill.NextPosition;
        var sequenceOf = rows.Select(r => prefill.UniqueOf[r]).ToArray();

        for (var step = 0; step < maxNew; step++)
        {
            using var stepScope = NewDisposeScope();
            var rowLogits = logits.index_select(0, tensor(sequenceOf.Select(q => (long)q).ToArray(), device: device));
            var logSoftmax = rowLogits.log_softmax(-1);
            var next = rowLogits.argmax(-1);
            if (anySampled)
            {
                var probs = filter.Apply(rowLogits / tempTensor).softmax(-1);
                var uniforms = tensor(streams.Select(s => (float)s.NextDouble()).ToArray(), device: device).unsqueeze(1);
                // Inverse CDF with each row's own uniform: the first token whose cumulative probability exceeds u.
                var cumulative = probs.cumsum(1);
                var sampled = (cumulative <= uniforms * cumulative.select(1, -1).unsqueeze(1)).sum(1).clamp_max(probs.shape[1] - 1);
                next = where(greedyRows, next, sampled);
            }
            var chosenLogProbs = logSoftmax.gather(1, next.unsqueeze(1)).squeeze(1).cpu().data<float>().ToArray();
            var nextIds = next.cpu().data<long>().ToArray();
            float[] topValues = [];
            long[] topIds = [];
            if (maxTopK > 0)
            {
                var (values, indices) = logSoftmax.topk(Math.Min(maxTopK, (int)logSoftmax.shape[1]), -1);
                (topValues, topIds) = (values.cpu().data<float>().ToArray(), indices.cpu().data<long>().ToArray());
            }
            var width = topIds.Length / batch;

            // The next sequences: one per (sequence, token) of the rows still running.
            var parents = new List<long>();
            var feed = new List<long>();
            var byParentAndToken = new Dictionary<(int, long), int>();
            var finished = new HashSet<int>(); // sequences a row finished on (cached below)
            for (var b = 0; b < batch; b++)
            {
                if (done[b]) continue;
                var request = requests[rows[b]];
                var token = (int)nextIds[b];
                generated[b].Add(token);
                logProbs[b].Add(chosenLogProbs[b]);
                TokenLogProb[] top = topK[b] > 0 ? [.. Enumerable.Range(b * width, Math.Min(topK[b], width)).Select(i => new TokenLogProb((int)topIds[i], topValues[i]))] : [];
                if (topK[b] > 0) topLogProbs[b].Add(top);
                options.OnToken?.Invoke(new GeneratedToken(rows[b], sampleIndex[b], token, chosenLogProbs[b], top));
                if (stats is not null) stats.GeneratedTokens++;
                if (model.Config.IsEos(token) || EndsWithAny(generated[b], request.StopSequences) || HasStopString(generated[b], request.StopStrings, options.Decode))
                {
                    done[b] = true;
                    stopped[b] = true;
                }
                else if (generated[b].Count >= request.MaxNewTokens) done[b] = true;
                if (done[b])
                {
                    if (finished.Add(sequenceOf[b]) && options.PrefixCache is { } prefixCache)
                        StoreSequence(prefixCache, requests[rows[b]].PromptIds, generated[b], sequenceOf[b], cache, keyValid);
                    sequenceOf[b] = 0; // any valid row: a finished row's logits are never read
                    continue;
                }
                if (stats is not null) stats.FedBackTokens++;
                if (!byParentAndToken.TryGetValue((sequenceOf[b], token), out var child))
                {
                    byParentAndToken[(sequenceOf[b], token)] = child = parents.Count;
                    parents.Add(sequenceOf[b]);
                    feed.Add(token);
                }
                sequenceOf[b] = child;
            }
            if (parents.Count == 0) break;

            var sequences = parents.Count;
            if (stats is not null) stats.ForwardedTokens += sequences;
            var previous = (Keys: cache.Keys.ToArray(), Values: cache.Values.ToArray(), Logits: logits, Position: nextPosition, Valid: keyValid);
            // Sequences that split or ended: their rows of the cache are picked (a copy; none while each goes on alone).
            if (sequences != (int)logits.shape[0] || parents.Where((p, j) => p != j).Any())
            {
                var pick = tensor(parents.ToArray(), device: device);
                for (var l = 0; l < cache.Keys.Length; l++)
                {
                    cache.Keys[l] = cache.Keys[l]!.index_select(0, pick);
                    cache.Values[l] = cache.Values[l]!.index_select(0, pick);
                }
                keyValid = keyValid.index_select(0, pick);
                nextPosition = nextPosition.index_select(0, pick);
            }
            keyValid = cat([keyValid, ones(sequences, 1, dtype: ScalarType.Bool, device: device)], 1).MoveToOuterDisposeScope();
            var mask = zeros(sequences, 1, 1, keyValid.shape[1], dtype: logits.dtype, device: device)
                .masked_fill(keyValid.logical_not().unsqueeze(1).unsqueeze(1), float.NegativeInfinity).to(model.DType);
            logits = model.Forward(tensor(feed.ToArray(), [sequences, 1], device: device), nextPosition.unsqueeze(1), mask, cache)[.., -1, ..]
                .MoveToOuterDisposeScope();
            nextPosition = (nextPosition + 1).MoveToOuterDisposeScope();
            for (var l = 0; l < cache.Keys.Length; l++)
            {
                cache.Keys[l]!.MoveToOuterDisposeScope();
                cache.Values[l]!.MoveToOuterDisposeScope();
            }
            // The grown cache replaces the old one: free it now, not when the call ends (memory stays linear in steps).
            foreach (var t in previous.Keys.Concat(previous.Values).Append(previous.Logits).Append(previous.Position).Append(previous.Valid)) t!.Dispose();
        }

        var counters = new int[requests.Count];
        for (var b = 0; b < batch; b++)
        {
            var r = rows[b];
            results[r][counters[r]++] = new Sample([.. generated[b]], [.. logProbs[b]], stopped[b]) { TopLogProbs = topLogProbs[b] };
        }
        return results;
    }

    sealed record PrefillResult(KvCache Cache, Tensor KeyValid, Tensor LastLogits, Tensor NextPosition, int[] UniqueOf);

    /// <summary>
    /// Forwards each distinct prompt once, after the KV of its longest cached prefix (left-padded to a common length):
    /// slots [0, C) hold cached keys, slots [C, C+S) the forwarded suffixes, each block left-padded.
    /// </summary>
    static PrefillResult Prefill(LlamaForCausalLM model, IReadOnlyList<SampleRequest> requests, PrefixCache? prefixCache,
        GenerationStats? stats, Device device)
    {
        var unique = new List<int[]>();
        var byPrompt = new Dictionary<string, int>();
        var uniqueOf = new int[requests.Count];
        for (var i = 0; i < requests.Count; i++)
        {
            var key = string.Join(',', requests[i].PromptIds);
            if (!byPrompt.TryGetValue(key, out var u)) { byPrompt[key] = u = unique.Count; unique.Add(requests[i].PromptIds); }
            uniqueOf[i] = u;
        }
        var n = unique.Count;
        // The last prompt token is always forwarded: its logits start the generation.
        var cached = unique.Select(p => prefixCache?.Lookup(p, p.Length - 1)).ToArray();
        var cachedLength = cached.Select(c => c?.Length ?? 0).ToArray();
        var pastSlots = cachedLength.Max();
        var newSlots = unique.Select((p, u) => p.Length - cachedLength[u]).Max();
        if (stats is not null)
        {
            stats.PromptTokens += requests.Sum(r => (long)r.PromptIds.Length * r.Count);
            stats.ReusedPromptTokens += cachedLength.Sum();
            var prefilled = unique.Select((p, u) => (long)(p.Length - cachedLength[u])).Sum();
            stats.PrefilledTokens += prefilled;
            stats.ForwardedTokens += prefilled;
        }

        var total = pastSlots + newSlots;
        var ids = new long[n * newSlots];
        var valid = new bool[n * total];
        var positions = new long[n * newSlots];
        for (var u = 0; u < n; u++)
        {
            var prompt = unique[u];
            for (var t = 0; t < cachedLength[u]; t++) valid[u * total + pastSlots - cachedLength[u] + t] = true;
            var suffix = prompt.Length - cachedLength[u];
            for (var t = 0; t < suffix; t++)
            {
                var slot = newSlots - suffix + t;
                ids[u * newSlots + slot] = prompt[cachedLength[u] + t];
                positions[u * newSlots + slot] = cachedLength[u] + t;
                valid[u * total + pastSlots + slot] = true;
            }
        }
        var keyValid = tensor(valid, [n, total], device: device);
        var cache = model.NewCache();
        if (pastSlots > 0)
        {
            var c = model.Config;
            for (var l = 0; l < c.NumHiddenLayers; l++)
            {
                var keys = zeros([n, c.NumKeyValueHeads, pastSlots, c.HeadDim], dtype: model.DType, device: device);
                var values = zeros([n, c.NumKeyValueHeads, pastSlots, c.HeadDim], dtype: model.DType, device: device);
                for (var u = 0; u < n; u++)
                {
                    if (cached[u] is not { } hit) continue;
                    keys[u, .., (pastSlots - hit.Length)..] = hit.Keys[l];
                    values[u, .., (pastSlots - hit.Length)..] = hit.Values[l];
                }
                cache.Keys[l] = keys;
                cache.Values[l] = values;
            }
        }
        var logits = model.Forward(tensor(ids, [n, newSlots], device: device), tensor(positions, [n, newSlots], device: device),
            PrefillMask(keyValid, pastSlots).to(model.DType), cache)[.., -1, ..];
        var nextPosition = tensor(unique.Select(p => (long)p.Length).ToArray(), device: device);
        return new PrefillResult(cache, keyValid, logits, nextPosition, uniqueOf);
    }

    /// <summary>
    /// Mask [B,1,S,P+S] for S new slots after P past slots: a query sees valid keys up to its own slot; a padding
    /// query sees itself only, so no row is all -inf.
    /// </summary>
    static Tensor PrefillMask(Tensor keyValid, int pastSlots)
    {
        var (batch, total) = (keyValid.shape[0], keyValid.shape[1]);
        var newSlots = total - pastSlots;
        var query = arange(pastSlots, total, device: keyValid.device).unsqueeze(1);  // [S,1] slot of each query
        var key = arange(total, device: keyValid.device).unsqueeze(0);               // [1,P+S]
        var allowed = (key <= query).unsqueeze(0).logical_and(keyValid.unsqueeze(1)).logical_or((key == query).unsqueeze(0));
        return zeros(batch, 1, newSlots, total, device: keyValid.device)
            .masked_fill(allowed.logical_not().unsqueeze(1), float.NegativeInfinity);
    }

    /// <summary>Caches a finished sample's prompt plus the generated tokens that were fed back (all but the last), from
    /// the valid slots of its sequence's row of the cache.</summary>
    static void StoreSequence(PrefixCache prefixCache, int[] prompt, List<int> generated, int sequence, KvCache cache, Tensor keyValid)
    {
        using var scope = NewDisposeScope();
        var index = keyValid[sequence].nonzero().squeeze(1);
        var tokens = prompt.Concat(generated.Take(Math.Max(0, generated.Count - 1))).ToArray();
        if (index.shape[0] != tokens.Length) throw new InvalidOperationException($"sequence {sequence} holds {index.shape[0]} keys for {tokens.Length} tokens");
        var keys = cache.Keys.Select(k => k![sequence].index_select(1, index)).ToArray();
        var values = cache.Values.Select(v => v![sequence].index_select(1, index)).ToArray();
        prefixCache.Insert(tokens, keys, values);
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

    /// <summary>A stop string that ends inside the newest token: it lies within the last (its length) tokens.</summary>
    static bool HasStopString(List<int> ids, IReadOnlyList<string> stops, Func<IReadOnlyList<int>, string>? decode)
    {
        if (stops.Count == 0 || decode is null) return false;
        var tail = decode(ids.Skip(Math.Max(0, ids.Count - stops.Max(s => s.Length) - 1)).ToList());
        return stops.Any(s => s.Length > 0 && tail.Contains(s, StringComparison.Ordinal));
    }
}

/// <summary>Top-k and top-p (nucleus) filtering of logits, per row; inactive when no row asks for it.</summary>
sealed class SamplingFilter
{
    readonly Tensor? _topK, _topP;

    SamplingFilter(Tensor? topK, Tensor? topP) => (_topK, _topP) = (topK, topP);

    public static SamplingFilter Create(IReadOnlyList<SampleRequest> requests, int[] rows, Device device)
    {
        var k = rows.Select(r => (long)requests[r].TopK).ToArray();
        var p = rows.Select(r => (float)requests[r].TopP).ToArray();
        return new SamplingFilter(k.Any(x => x > 0) ? tensor(k, device: device) : null, p.Any(x => x < 1) ? tensor(p, device: device).unsqueeze(1) : null);
    }

    public Tensor Apply(Tensor logits)
    {
        if (_topK is null && _topP is null) return logits;
        var vocab = logits.shape[1];
        var (sorted, order) = logits.sort(-1, descending: true);
        var rank = arange(vocab, device: logits.device).unsqueeze(0);
        var remove = zeros_like(sorted, dtype: ScalarType.Bool);
        if (_topK is not null)
        {
            var k = where(_topK > 0, _topK, full_like(_topK, vocab)).unsqueeze(1);
            remove = remove.logical_or(rank >= k);
        }
        if (_topP is not null)
        {
            // Keep the smallest prefix whose mass reaches p: drop a token when the mass before it already does.
            var probs = sorted.softmax(-1);
            var before = probs.cumsum(-1) - probs;
            remove = remove.logical_or(before >= _topP);
        }
        var filtered = sorted.masked_fill(remove, float.NegativeInfinity);
        return full_like(logits, float.NegativeInfinity).scatter(1, order, filtered);
    }
}
