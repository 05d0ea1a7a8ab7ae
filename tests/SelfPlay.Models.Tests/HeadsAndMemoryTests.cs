using System.Diagnostics;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Heads;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

/// <summary>Run alone: the memory test reads the process's working set, which tests running beside it would move.</summary>
[CollectionDefinition(nameof(HeadsAndMemoryTests), DisableParallelization = true)]
public sealed class HeadsAndMemoryCollection;

[Collection(nameof(HeadsAndMemoryTests))]
public class HeadsAndMemoryTests
{
    static readonly CharTokenizer Tok = new();

    [Fact]
    public void A_value_head_on_the_policy_trunk_learns_and_round_trips()
    {
        using var trunk = new LlamaForCausalLM(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2), 31);
        using var head = new ScalarHead(32, initSeed: 1);
        // Reward 1 for answers ending in "24", 0 otherwise; read at the last token.
        var data = new[] { ("3 * 8 = 24", 1f), ("4 * 6 = 24", 1f), ("3 + 8 = 11", 0f), ("4 - 6 = -2", 0f), ("12 * 2 = 24", 1f), ("9 / 3 = 3", 0f) }
            .Select(d => (Ids: Tok.EncodePrompt(d.Item1), Target: d.Item2)).ToArray();
        using var optimizer = optim.AdamW(head.parameters().Concat(trunk.parameters()), 3e-3);
        float Loss()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var values = head.Score(trunk, data.Select(d => d.Ids).ToList());
            var loss = nn.functional.mse_loss(values, tensor(data.Select(d => d.Target).ToArray()));
            loss.backward();
            optimizer.step();
            return loss.item<float>();
        }
        var first = Loss();
        for (var i = 0; i < 60; i++) Loss();
        var last = Loss();
        Assert.True(last < first * 0.1, $"loss {first} -> {last}");

        var dir = Path.Combine(Path.GetTempPath(), "selfplay-head-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            head.Save(dir, "value_head");
            using var loaded = ScalarHead.Load(dir, "value_head", 32);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = data.Select(d => d.Ids).ToList();
            Assert.Equal(head.Score(trunk, ids).data<float>().ToArray(), loaded.Score(trunk, ids).data<float>().ToArray());
            // A PRM reads a step's end: position 4 of the first answer gives the value of its prefix alone.
            var prefix = head.Score(trunk, [data[0].Ids[..5]]).item<float>();
            Assert.Equal(prefix, head.Score(trunk, [data[0].Ids], [4]).item<float>(), 4);
            Assert.Contains("value_head.safetensors: tensor score.weight has shape [1,32], expected [1,16]", Assert.Throws<InvalidDataException>(() => ScalarHead.Load(dir, "value_head", 16)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Ten_thousand_generation_steps_keep_native_memory_flat()
    {
        using var model = new LlamaForCausalLM(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2, MaxPositionEmbeddings: 512), 32);
        using var cache = new PrefixCache(256 * 1024); // small: evictions run all the time
        var stats = new GenerationStats();
        var options = new GenerationOptions { PrefixCache = cache, Stats = stats };
        var prompt = Tok.EncodePrompt("Input: 1 2 3 4\n");
        void Round(int i) => Sampler.Generate(model, [new SampleRequest([.. prompt, .. Tok.Encode($"{i % 7}")], 2, 1.0, 50, []) { Seed = i, TopK = 10 }], i, options);

        for (var i = 0; i < 10; i++) Round(i);                     // warm up allocators and the cache
        GC.Collect(); GC.WaitForPendingFinalizers();
        // Tensors alive outside the prefix cache (whose size moves within its budget).
        var liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount - cache.TensorCount;
        var rssBefore = Process.GetCurrentProcess().WorkingSet64;
        var stepsBefore = stats.GeneratedTokens;
        for (var i = 10; stats.GeneratedTokens - stepsBefore < 20_000; i++) Round(i); // 2 rows: 10,000 decoding steps
        GC.Collect(); GC.WaitForPendingFinalizers();
        var liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount - cache.TensorCount;
        var rssGrowth = Process.GetCurrentProcess().WorkingSet64 - rssBefore;

        Assert.True(cache.Evictions > 0);
        Assert.True(liveAfter - liveBefore <= 8, $"live tensors {liveBefore} -> {liveAfter}");
        Assert.True(rssGrowth < 64L << 20, $"working set grew by {rssGrowth >> 20} MB");
    }
}
