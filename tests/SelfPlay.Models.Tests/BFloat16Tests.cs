using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

/// <summary>`model.dtype = bfloat16` and `learner.dtype = bfloat16`, on the CPU (CI has no GPU; the code paths are the same).</summary>
public class BFloat16Tests
{
    static readonly CharTokenizer Tok = new();

    static string Golden(string name) => Path.Combine(AppContext.BaseDirectory, "Golden", name);

    static int[] Prompt(string text) => [CharTokenizer.Bos, .. Tok.Encode(text)];

    [Theory]
    [InlineData("llama-untied-theta5e5-sharded")]
    [InlineData("qwen2-bias-tied")]
    public void Bfloat16_weights_give_logits_close_to_float32(string name)
    {
        using var wide = Checkpoint.LoadModel(Golden(name));
        using var narrow = Checkpoint.LoadModel(Golden(name), dtype: "bfloat16");
        Assert.Equal(ScalarType.BFloat16, narrow.DType);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var golden = Path.Combine(Golden(name), "golden.safetensors");
        var ids = SafeTensors.Read(golden, SafeTensors.ReadHeader(golden)["input_ids"]);
        var expected = wide.Forward(ids);
        var logits = narrow.Forward(ids);
        Assert.Equal(ScalarType.Float32, logits.dtype); // logits are widened whatever the weights
        // bfloat16 keeps 8 bits of mantissa: logits move by a few hundredths, and the ranking of the top token holds.
        var maxDiff = (logits - expected).abs().max().item<float>();
        var scale = expected.abs().max().item<float>();
        Assert.True(maxDiff > 0 && maxDiff < 0.05f * scale, $"{name}: max |logit difference| {maxDiff}, largest |logit| {scale}");
        var agree = (logits.argmax(-1) == expected.argmax(-1)).to(ScalarType.Float32).mean().item<float>();
        Assert.True(agree >= 0.9f, $"{name}: top token agrees at {agree:P0} of positions");
    }

    [Fact]
    public void Bfloat16_sampling_with_the_prefix_cache_reports_the_log_probs_scoring_gives()
    {
        using var model = new LlamaForCausalLM(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2), 3);
        model.to(ScalarType.BFloat16);
        using var cache = new PrefixCache(16L << 20);
        var root = Prompt("Input: 4 5 6 10\n");
        var request = new SampleRequest(root, 3, 1.0, 10, [Tok.Encode("\n")]) { Seed = 7 };
        Sample[] samples = [];
        for (var round = 0; round < 2; round++) // the second round starts from the cached prompt
            samples = Sampler.Generate(model, [request], 0, new GenerationOptions { PrefixCache = cache })[0];
        Assert.True(cache.CachedTokens >= root.Length);
        foreach (var sample in samples)
        {
            Assert.NotEmpty(sample.TokenIds);
            Assert.All(sample.LogProbs, lp => Assert.True(float.IsFinite(lp) && lp <= 0));
            var scored = SequenceScorer.SumLogProbs(model, [ScoredSequence.PromptCompletion(root, sample.TokenIds)])[0];
            Assert.True(Math.Abs(scored - sample.LogProbs.Sum()) < 0.05 * sample.LogProbs.Length + 0.05,
                $"sampled {sample.LogProbs.Sum()} vs scored {scored}");
        }
    }

    [Fact]
    public void Mixed_precision_training_keeps_float32_weights_and_tracks_float32_training()
    {
        var data = Enumerable.Range(0, 16).Select(i => ScoredSequence.PromptCompletion(Prompt($"{i % 4} ->"), Tok.Encode($" {(i % 4) * 2}\n"))).ToList();
        IReadOnlyList<EpochStats> Train(LlamaForCausalLM model, ScalarType compute)
        {
            using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 8, ComputeDType: compute));
            return trainer.TrainSft(data, 40, new Random(1));
        }
        using var wide = new LlamaForCausalLM(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2), 2);
        using var mixed = new LlamaForCausalLM(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2), 2);
        var expected = Train(wide, ScalarType.Float32);
        var stats = Train(mixed, ScalarType.BFloat16);
        Assert.Equal(ScalarType.Float32, mixed.DType);
        Assert.True(stats[^1].Loss < stats[0].Loss * 0.2, $"loss {stats[0].Loss} -> {stats[^1].Loss}");
        Assert.True(Math.Abs(stats[^1].Loss - expected[^1].Loss) < 0.1 + 0.2 * expected[^1].Loss,
            $"bfloat16 compute ends at loss {stats[^1].Loss}, float32 at {expected[^1].Loss}");
        Assert.NotEqual(stats[^1].Loss, expected[^1].Loss); // the forward really ran in bfloat16
        var sample = Sampler.Generate(mixed, [new SampleRequest(Prompt("3 ->"), 1, 0, 5, [Tok.Encode("\n")])], 0)[0][0];
        Assert.True(" 6\n" == Tok.Decode(sample.TokenIds), $"sampled '{Tok.Decode(sample.TokenIds)}'; losses {stats[0].Loss} -> {stats[^1].Loss}, float32 {expected[0].Loss} -> {expected[^1].Loss}");
    }

    [Fact]
    public void A_bfloat16_model_cannot_be_the_trained_weights()
    {
        using var model = new LlamaForCausalLM(new LlamaConfig(Tok.VocabSize, 16, 32, 1, 2, 1), 1);
        model.to(ScalarType.BFloat16);
        var e = Assert.Throws<ArgumentException>(() => new PolicyTrainer(model, new TrainerOptions()));
        Assert.Contains("float32", e.Message);
    }
}
