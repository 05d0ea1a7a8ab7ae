using SelfPlay.Core.Preferences;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

public class ModelTests
{
    static readonly CharTokenizer Tok = new();

    static LlamaForCausalLM Tiny(long seed = 1, bool tied = true, int kvHeads = 2) =>
        new(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, kvHeads, TieWordEmbeddings: tied), seed);

    static int[] Prompt(string text) => [CharTokenizer.Bos, .. Tok.Encode(text)];

    [Fact]
    public void State_dict_uses_hugging_face_tensor_names()
    {
        using var model = Tiny(tied: false);
        var names = model.state_dict().Keys.ToHashSet();
        Assert.Contains("model.embed_tokens.weight", names);
        Assert.Contains("model.layers.1.self_attn.k_proj.weight", names);
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", names);
        Assert.Contains("model.layers.0.input_layernorm.weight", names);
        Assert.Contains("model.layers.0.post_attention_layernorm.weight", names);
        Assert.Contains("model.norm.weight", names);
        Assert.Contains("lm_head.weight", names);
        Assert.All(names, n => Assert.True(n.StartsWith("model.", StringComparison.Ordinal) || n == "lm_head.weight", n));
        using var tied = Tiny(tied: true);
        Assert.DoesNotContain("lm_head.weight", tied.state_dict().Keys);
    }

    [Fact]
    public void Cached_decoding_matches_a_full_forward_pass()
    {
        using var model = Tiny();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = Prompt("Input: 4 5 6 10\n4 * 5 =");
        var full = model.Forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]));
        var cache = model.NewCache();
        var prefix = ids.Length - 3;
        model.Forward(tensor(ids.Take(prefix).Select(i => (long)i).ToArray(), [1, prefix]), cache: cache);
        for (var t = prefix; t < ids.Length; t++)
        {
            var mask = zeros(1, 1, 1, t + 1);
            var step = model.Forward(tensor(new long[] { ids[t] }, [1, 1]), tensor(new long[] { t }, [1, 1]), mask, cache);
            Assert.True(allclose(step[0, 0], full[0, t], rtol: 1e-4, atol: 1e-5), $"position {t}");
        }
    }

    [Fact]
    public void Left_padding_does_not_change_greedy_samples_or_log_probs()
    {
        using var model = Tiny(seed: 3);
        int[][] stops = [Tok.Encode("\n")];
        var shortPrompt = Prompt("Input: 1 2");
        var longPrompt = Prompt("Input: 4 5 6 10 and more text");
        var alone = Sampler.Generate(model, [new SampleRequest(shortPrompt, 1, 0, 8, stops)], 7)[0][0];
        var batched = Sampler.Generate(model,
            [new SampleRequest(longPrompt, 2, 0, 8, stops), new SampleRequest(shortPrompt, 1, 0, 8, stops)], 7)[1][0];
        Assert.Equal(alone.TokenIds, batched.TokenIds);
        for (var i = 0; i < alone.LogProbs.Length; i++) Assert.Equal(alone.LogProbs[i], batched.LogProbs[i], 4);
    }

    [Fact]
    public void Sampling_is_seeded_and_log_probs_match_scoring()
    {
        using var model = Tiny(seed: 5);
        var request = new SampleRequest(Prompt("Input: 3 3 8 8\n"), 6, 1.0, 10, [Tok.Encode(" =")]);
        var a = Sampler.Generate(model, [request], 42)[0];
        var b = Sampler.Generate(model, [request], 42)[0];
        var c = Sampler.Generate(model, [request], 43)[0];
        Assert.Equal(a.Select(s => string.Join(",", s.TokenIds)), b.Select(s => string.Join(",", s.TokenIds)));
        Assert.NotEqual(a.Select(s => string.Join(",", s.TokenIds)), c.Select(s => string.Join(",", s.TokenIds)));
        var scored = SequenceScorer.SumLogProbs(model, a.Select(s => ScoredSequence.PromptCompletion(request.PromptIds, s.TokenIds)).ToList());
        for (var i = 0; i < a.Length; i++) Assert.Equal(a[i].LogProbs.Sum(), scored[i], 3);
    }

    [Fact]
    public void Supervised_training_learns_a_pattern()
    {
        using var model = Tiny(seed: 2);
        var data = Enumerable.Range(0, 16).Select(i => ScoredSequence.PromptCompletion(Prompt($"{i % 4} ->"), Tok.Encode($" {(i % 4) * 2}\n"))).ToList();
        using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 8));
        var stats = trainer.TrainSft(data, 40, new Random(1));
        Assert.True(stats[^1].Loss < stats[0].Loss * 0.2, $"loss {stats[0].Loss} -> {stats[^1].Loss}");
        var sample = Sampler.Generate(model, [new SampleRequest(Prompt("3 ->"), 1, 0, 5, [Tok.Encode("\n")])], 0)[0][0];
        Assert.Equal(" 6\n", Tok.Decode(sample.TokenIds));
    }

    [Fact]
    public void Dpo_losses_match_the_worked_examples()
    {
        using var scope = NewDisposeScope();
        var margin = PreferenceLosses.Margin(tensor(new[] { -12f }), tensor(new[] { -15f }), tensor(new[] { -13f }), tensor(new[] { -14f }));
        Assert.Equal(2.0, margin.item<float>(), 5);
        Assert.Equal(0.598139, PreferenceLosses.Dpo(margin, 0.1).item<float>(), 5);
        Assert.Equal(0.618139, PreferenceLosses.Dpo(margin, 0.1, tensor(new[] { 0.1f })).item<float>(), 5);
        // MCTS-DPO conservative: N_w = 6, N_l = 2 -> conf 0.75 -> eps 0.25.
        Assert.Equal(0.648139, PreferenceLosses.Dpo(margin, 0.1, tensor(new[] { 0.25f })).item<float>(), 5);
    }

    [Fact]
    public void Dpo_training_raises_the_chosen_completion()
    {
        using var model = Tiny(seed: 4);
        var prompt = Prompt("Q:");
        var example = PreferenceExample.Pair("t", "Q:", new Candidate([CompletionStep.FromText("ab")], 1), new Candidate([CompletionStep.FromText("ba")], 0));
        var data = PreferenceData.Prepare([example], Tok, ReferenceSource.Model, model);
        var (chosen, rejected) = (data[0].Candidates[0].Sequence, data[0].Candidates[1].Sequence);
        var refs = SequenceScorer.SumLogProbs(model, [chosen, rejected]);
        using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 5e-3, BatchSize: 4));
        var stats = trainer.TrainPreferences(data, 30, new LossOptions("dpo", 0.1, SftWeight: 0), new Random(0));
        Assert.Equal(Math.Log(2), stats[0].Loss, 3); // policy = reference at the first step
        var after = SequenceScorer.SumLogProbs(model, [chosen, rejected]);
        Assert.True(after[0] - refs[0] > after[1] - refs[1] + 1, $"chosen {refs[0]}->{after[0]}, rejected {refs[1]}->{after[1]}");
        Assert.True(stats[^1].RewardAccuracy == 1.0);
    }

    [Fact]
    public void Checkpoint_round_trips_and_rejects_damage()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-ckpt-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var model = Tiny(seed: 9, tied: false);
            var sha = Checkpoint.Save(model, Tok, dir, 3, "game24");
            var (loaded, tokenizer, meta) = Checkpoint.Load(dir, expectedSha256: sha);
            using (loaded)
            {
                Assert.Equal(3, meta.PolicyVersion);
                Assert.Equal(Tok.Alphabet, Assert.IsType<CharTokenizer>(tokenizer).Alphabet);
                using var _ = no_grad();
                var prompt = Prompt("Input: 1 2 3 4");
                var ids = tensor(prompt.Select(i => (long)i).ToArray(), [1, prompt.Length]);
                Assert.True(allclose(model.Forward(ids), loaded.Forward(ids)));
            }
            Assert.Contains("sha256", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir, expectedSha256: "00")).Message);

            var bytes = File.ReadAllBytes(Path.Combine(dir, Checkpoint.WeightsFile));
            File.WriteAllBytes(Path.Combine(dir, Checkpoint.WeightsFile), bytes[..(bytes.Length / 2)]);
            Assert.Contains("model.safetensors", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir)).Message);

            File.WriteAllText(Path.Combine(dir, Checkpoint.ConfigFile), "{ not json");
            Assert.Contains("config.json", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir)).Message);
            File.Delete(Path.Combine(dir, Checkpoint.ConfigFile));
            Assert.Contains("no config.json", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir)).Message);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}
