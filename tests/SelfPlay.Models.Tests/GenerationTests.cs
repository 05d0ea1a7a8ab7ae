using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

public class GenerationTests
{
    static readonly CharTokenizer Tok = new();

    static LlamaForCausalLM Tiny(long seed = 1) => new(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2, TieWordEmbeddings: false), seed);

    static int[] Prompt(string text) => [CharTokenizer.Bos, .. Tok.Encode(text)];

    static string Key(Sample s) => string.Join(",", s.TokenIds);

    [Fact]
    public void Prefix_cache_gives_the_same_samples_and_forwards_only_new_tokens()
    {
        using var model = Tiny(seed: 11);
        using var cache = new PrefixCache(64L << 20);
        var stats = new GenerationStats();
        var plainStats = new GenerationStats();
        var root = Prompt("Input: 4 5 6 10\n");
        // A search: expand the root, then two children that extend it, then the root's prompt again (siblings).
        int[][] prompts = [root, [.. root, .. Tok.Encode("5 * 4 = 20 (left: 6 10 20)\n")], [.. root, .. Tok.Encode("10 - 6 = 4 (left: 4 5 4)\n")], root];
        foreach (var prompt in prompts)
        {
            var request = new SampleRequest(prompt, 3, 1.0, 8, [Tok.Encode("\n")]) { Seed = 5, TopK = 20 };
            var cached = Sampler.Generate(model, [request], 0, new GenerationOptions { PrefixCache = cache, Stats = stats })[0];
            var plain = Sampler.Generate(model, [request], 0, new GenerationOptions { Stats = plainStats })[0];
            Assert.Equal(plain.Select(Key), cached.Select(Key));
            for (var i = 0; i < plain.Length; i++)
                for (var t = 0; t < plain[i].LogProbs.Length; t++) Assert.Equal(plain[i].LogProbs[t], cached[i].LogProbs[t], 4);
        }
        // Without the cache each distinct prompt is forwarded whole; with it, the root once, then only the children's
        // new lines, then one token of the root (its logits start the samples).
        Assert.Equal(prompts.Sum(p => p.Length), plainStats.PrefilledTokens);
        Assert.True(stats.PrefilledTokens <= prompts[1].Length + prompts[2].Length - root.Length + 1, $"prefilled {stats.PrefilledTokens}");
        Assert.Equal(plainStats.PrefilledTokens - stats.PrefilledTokens, stats.ReusedPromptTokens);
        Assert.Equal(plainStats.ForwardedTokens - stats.ReusedPromptTokens, stats.ForwardedTokens);
        Assert.True(cache.CachedTokens > root.Length);
    }

    [Fact]
    public void Samples_that_begin_alike_are_decoded_once_until_they_part_with_each_log_prob_as_a_full_forward()
    {
        // A nearly untrained model on a short alphabet at low temperature: many of the 12 samples share their first tokens.
        using var model = Tiny(seed: 13);
        var prompt = Prompt("Input: 4 5 6 10\n");
        var stats = new GenerationStats();
        var request = new SampleRequest(prompt, 12, 0.7, 6, [Tok.Encode("\n")]) { Seed = 3, TopK = 3 };
        var samples = Sampler.Generate(model, [request], 0, new GenerationOptions { Stats = stats })[0];

        // One forward per distinct prefix that was fed back (every generated token but a sample's last).
        var fedPrefixes = samples.SelectMany(s => Enumerable.Range(1, Math.Max(0, s.TokenIds.Length - 1)).Select(k => string.Join(",", s.TokenIds[..k])))
            .Distinct().Count();
        Assert.Equal(stats.PrefilledTokens + fedPrefixes, stats.ForwardedTokens);
        Assert.Equal(samples.Sum(s => s.TokenIds.Length), stats.GeneratedTokens);
        Assert.Equal(samples.Sum(s => s.TokenIds.Length - 1), stats.FedBackTokens);
        Assert.True(stats.ForwardedTokens - stats.PrefilledTokens < stats.FedBackTokens,
            $"no sharing: {stats.ForwardedTokens - stats.PrefilledTokens} decoded for {stats.GeneratedTokens} generated");
        Assert.True(samples.Select(Key).Distinct().Count() > 1, "the samples must part for the test to say anything");

        // Each sample's log-probs are those of its own sequence forwarded whole: the rows picked at a split carry their KV.
        using var noGrad = no_grad();
        foreach (var sample in samples)
        {
            int[] ids = [.. prompt, .. sample.TokenIds];
            using var scope = NewDisposeScope();
            var logSoftmax = model.Forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]))[0].log_softmax(-1);
            for (var t = 0; t < sample.TokenIds.Length; t++)
                Assert.Equal(logSoftmax[prompt.Length - 1 + t, sample.TokenIds[t]].item<float>(), sample.LogProbs[t], 4);
        }
    }

    [Fact]
    public void Mixed_batches_with_different_cached_lengths_match_single_requests()
    {
        using var model = Tiny(seed: 12);
        using var cache = new PrefixCache(64L << 20);
        var a = Prompt("Input: 1 2 3 4\nstep one\n");
        var b = Prompt("Input: 1 2 3 4\n");
        var c = Prompt("Completely different prompt");
        Sampler.Generate(model, [new SampleRequest(a[..12], 1, 0, 2, [])], 0, new GenerationOptions { PrefixCache = cache });
        SampleRequest[] requests = [new(a, 2, 0.8, 6, []) { Seed = 1 }, new(b, 1, 0, 6, []) { Seed = 2 }, new(c, 2, 1.0, 6, []) { Seed = 3, TopP = 0.9 }];
        var batched = Sampler.Generate(model, requests, 0, new GenerationOptions { PrefixCache = cache });
        for (var i = 0; i < requests.Length; i++)
        {
            var alone = Sampler.Generate(model, [requests[i]], 99)[0];
            Assert.Equal(alone.Select(Key), batched[i].Select(Key));
            for (var j = 0; j < alone.Length; j++)
                for (var t = 0; t < alone[j].LogProbs.Length; t++) Assert.Equal(alone[j].LogProbs[t], batched[i][j].LogProbs[t], 4);
        }
    }

    [Fact]
    public void Prefix_cache_splits_edges_and_evicts_least_recently_used_leaves()
    {
        using var scope = NewDisposeScope();
        Tensor[] Kv(int n, float value) => [full(2, n, 4, value), full(2, n, 4, value)];
        var bytesPerToken = 2 * 2 * 4 * 4 * 2L; // 2 layers x (K and V) x heads 2 x dim 4 x 4 bytes
        using var cache = new PrefixCache(bytesPerToken * 10);
        cache.Insert([1, 2, 3, 4], Kv(4, 1), Kv(4, 1));
        cache.Insert([1, 2, 7, 8], Kv(4, 2), Kv(4, 2)); // splits [1,2,3,4] after two tokens
        Assert.Equal(6, cache.CachedTokens);
        var hit = cache.Lookup([1, 2, 7, 9], 10)!.Value;
        Assert.Equal(3, hit.Length);
        Assert.Equal([1f, 1f, 2f], hit.Keys[0][0, .., 0].data<float>().ToArray());
        Assert.Equal(2, cache.Lookup([1, 2, 3, 4], 2)!.Value.Length);   // capped by maxLength
        Assert.Null(cache.Lookup([5, 1], 2));
        cache.Lookup([1, 2, 3], 3);                                     // [3,4] is now more recent than [7,8]
        cache.Insert([9, 9, 9, 9, 9], Kv(5, 3), Kv(5, 3));               // 11 tokens > 10: evict the LRU leaf [7,8]
        Assert.Equal(9, cache.CachedTokens);
        Assert.Equal(1, cache.Evictions);
        Assert.Equal(2, cache.Lookup([1, 2, 7, 8], 4)!.Value.Length);
        Assert.Equal(4, cache.Lookup([1, 2, 3, 4], 4)!.Value.Length);
        Assert.True(cache.Bytes <= cache.BudgetBytes);
    }

    [Fact]
    public void Top_k_and_top_p_restrict_samples_to_the_head_of_the_distribution()
    {
        using var model = Tiny(seed: 13);
        var prompt = Prompt("Input: 3 3 8 8\n");
        int[] topThree;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var logits = model.Forward(tensor(prompt.Select(i => (long)i).ToArray(), [1, prompt.Length]))[0, -1];
            topThree = logits.topk(3).indexes.data<long>().Select(i => (int)i).ToArray();
        }
        var greedy = Sampler.Generate(model, [new SampleRequest(prompt, 1, 0, 1, [])], 0)[0][0].TokenIds[0];
        var topK = Sampler.Generate(model, [new SampleRequest(prompt, 200, 5.0, 1, []) { TopK = 3, Seed = 1 }], 0)[0];
        Assert.All(topK, s => Assert.Contains(s.TokenIds[0], topThree));
        Assert.True(topK.Select(s => s.TokenIds[0]).Distinct().Count() > 1);
        var tinyP = Sampler.Generate(model, [new SampleRequest(prompt, 50, 5.0, 1, []) { TopP = 1e-4, Seed = 2 }], 0)[0];
        Assert.All(tinyP, s => Assert.Equal(greedy, s.TokenIds[0]));
        var wide = Sampler.Generate(model, [new SampleRequest(prompt, 200, 5.0, 1, []) { Seed = 3 }], 0)[0];
        Assert.Contains(wide, s => !topThree.Contains(s.TokenIds[0]));
    }

    [Fact]
    public void Seeded_requests_are_reproducible_whatever_shares_their_batch()
    {
        using var model = Tiny(seed: 14);
        var request = new SampleRequest(Prompt("Input: 2 4 6 8\n"), 4, 1.0, 10, []) { Seed = 77, TopP = 0.95 };
        var alone = Sampler.Generate(model, [request], 1)[0];
        var crowded = Sampler.Generate(model, [new SampleRequest(Prompt("other"), 3, 1.0, 12, []), request], 2)[1];
        var reseeded = Sampler.Generate(model, [request with { Seed = 78 }], 1)[0];
        Assert.Equal(alone.Select(Key), crowded.Select(Key));
        Assert.NotEqual(alone.Select(Key), reseeded.Select(Key));
    }

    [Fact]
    public void Stop_strings_and_max_new_tokens_end_samples()
    {
        using var model = Tiny(seed: 15);
        var prompt = Prompt("Q:");
        var free = Sampler.Generate(model, [new SampleRequest(prompt, 1, 0, 12, [])], 0)[0][0];
        Assert.Equal(12, free.TokenIds.Length);
        Assert.False(free.Stopped);
        var text = Tok.Decode(free.TokenIds);
        var stop = text.Substring(4, 2);
        var stopped = Sampler.Generate(model, [new SampleRequest(prompt, 1, 0, 12, []) { StopStrings = [stop] }], 0,
            new GenerationOptions { Decode = ids => Tok.Decode(ids) })[0][0];
        Assert.True(stopped.Stopped);
        Assert.EndsWith(stop, Tok.Decode(stopped.TokenIds));
        Assert.Equal(Tok.Decode(stopped.TokenIds).IndexOf(stop, StringComparison.Ordinal) + stop.Length, stopped.TokenIds.Length);
        Assert.Throws<ArgumentException>(() => Sampler.Generate(model, [new SampleRequest(prompt, 1, 0, 2, []) { StopStrings = ["x"] }], 0));
    }
}
