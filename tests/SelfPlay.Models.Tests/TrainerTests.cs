using SelfPlay.Core.Preferences;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

public class TrainerTests
{
    static readonly CharTokenizer Tok = new();

    static LlamaForCausalLM Tiny(long seed = 1) => new(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2), seed);

    static CompletionStep Step(string text, int policyChars)
    {
        var ids = Tok.Encode(text[..policyChars]);
        return new CompletionStep(text, ids, [.. ids.Select(_ => -0.5f)]);
    }

    /// <summary>Separable synthetic preferences: the chosen answer repeats the prompt's letter, the rejected one does not.</summary>
    static List<PreferenceExample> Synthetic(int count, int seed = 0)
    {
        var random = new Random(seed);
        var letters = "abcdefgh";
        return [.. Enumerable.Range(0, count).Select(i =>
        {
            var a = letters[random.Next(letters.Length)];
            var b = letters[(letters.IndexOf(a) + 1 + random.Next(letters.Length - 1)) % letters.Length];
            return PreferenceExample.Pair($"s{i}", $"Q {a}:", new Candidate([Step($"{a}{a}\n", 2)], 1, 3), new Candidate([Step($"{b}{a}\n", 2)], 0, 1));
        })];
    }

    static List<PreferenceExample> Lists(int count) =>
        [.. Enumerable.Range(0, count).Select(i => new PreferenceExample(ExampleKind.List, $"l{i}", $"P{i % 3}:",
            [new Candidate([Step("ab =1\n", 4), Step("cd =2\n", 4)], 1.0, 4), new Candidate([Step("ab =1\n", 4), Step("dc =0\n", 4)], 0.5, 2),
             new Candidate([Step("ba =0\n", 4)], 0.0, 1)]))];

    [Fact]
    public void Encoding_scores_the_policys_tokens_and_leaves_the_environments_text_unscored()
    {
        var candidate = new Candidate([Step("4 * 5 = 20 (left: 6 20)\n", 7), CompletionStep.FromText("xy")], 1);
        var (sequence, stepOf) = PreferenceData.Encode(Tok, "In:", candidate);
        var text = Tok.Decode(sequence.Ids.Skip(1));
        Assert.Equal("In:4 * 5 = 20 (left: 6 20)\nxy", text);
        var scored = Tok.Decode(sequence.Ids.Where((_, i) => sequence.Scored[i]));
        Assert.Equal("4 * 5 =xy", scored);
        Assert.Equal(new[] { 0, 0, 0, 0, 0, 0, 0, 1, 1 }, stepOf);
    }

    [Fact]
    public void Reference_log_probs_are_computed_once_and_travel_with_the_data()
    {
        using var reference = Tiny(seed: 2);
        var data = PreferenceData.Prepare(Synthetic(4), Tok, ReferenceSource.Model, reference);
        var expected = SequenceScorer.SumLogProbs(reference, data.Select(e => e.Candidates[0].Sequence).ToList());
        for (var i = 0; i < data.Count; i++) Assert.Equal(expected[i], data[i].Candidates[0].ReferenceSum, 4);
        var behaviour = PreferenceData.Prepare(Synthetic(4), Tok, ReferenceSource.Behaviour);
        Assert.All(behaviour, e => Assert.Equal(-1.0f, e.Candidates[0].ReferenceSum, 5)); // two tokens of −0.5 stored at generation
        var imported = PreferenceExample.Pair("x", "p", new Candidate([CompletionStep.FromText("a")], 1), new Candidate([CompletionStep.FromText("b")], 0));
        Assert.Throws<InvalidDataException>(() => PreferenceData.Prepare([imported], Tok, ReferenceSource.Behaviour));
    }

    [Fact]
    public void Sft_on_demonstrations_is_the_token_mean_nll_of_the_solution_and_training_lowers_it()
    {
        using var model = Tiny(seed: 4);
        var demonstrations = Enumerable.Range(0, 8).Select(i => new PreferenceExample(ExampleKind.Demonstration, $"d{i}", $"Q {"abcd"[i % 4]}:",
            [new Candidate([Step($"{"abcd"[i % 4]}{"abcd"[i % 4]}\n", 2), Step("= 24\n", 4)], 1, 2)])).ToList();
        var data = PreferenceData.Prepare(demonstrations, Tok, Losses.Get("sft").ReferenceFree ? ReferenceSource.None : ReferenceSource.Model);
        var options = new LossOptions("sft", SftWeight: 0);
        double Loss()
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return PreferenceObjective.Compute(model, data, options).Loss.ToDouble();
        }
        // The worked value: the mean over examples of −(summed log-prob of the solution's tokens) / its token count.
        var sums = SequenceScorer.SumLogProbs(model, [.. data.Select(e => e.Candidates[0].Sequence)]);
        var expected = data.Select((e, i) => -sums[i] / e.Candidates[0].Sequence.Scored.Count(s => s)).Average();
        var before = Loss();
        Assert.Equal(expected, before, 4);
        using (var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 4, WarmupShare: 0)))
            trainer.TrainPreferences(data, 3, options, new Random(1));
        Assert.True(Loss() < before * 0.9, $"sft loss {before} -> {Loss()}");
    }

    [Fact]
    public void Policy_ce_moves_the_policy_over_a_nodes_children_to_their_visit_shares()
    {
        using var model = Tiny(seed: 4);
        double[] shares = [0.7, 0.2, 0.1];
        var nodes = Enumerable.Range(0, 8).Select(i => new PreferenceExample(ExampleKind.Distribution, $"n{i}", $"Q {"abcd"[i % 4]}:",
            [.. new[] { "xy\n", "yz\n", "zx\n" }.Select((s, j) => new Candidate([Step(s, 3)], shares[j], 7 - 3 * j))])).ToList();
        var data = PreferenceData.Prepare(nodes, Tok, Losses.Get("policy-ce").ReferenceFree ? ReferenceSource.None : ReferenceSource.Model);
        var options = new LossOptions("policy-ce", SftWeight: 0); // no SFT term on the most visited child (sft-weight 0)
        double Loss()
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return PreferenceObjective.Compute(model, data, options).Loss.ToDouble();
        }
        // The worked value: −Σ π·log softmax(summed log-probs of the children), averaged over the nodes.
        var sums = SequenceScorer.SumLogProbs(model, [.. data.SelectMany(e => e.Candidates.Select(c => c.Sequence))]);
        var expected = Enumerable.Range(0, nodes.Count).Select(i =>
        {
            var l = sums.Skip(3 * i).Take(3).ToArray();
            var z = Math.Log(l.Sum(x => Math.Exp(x)));
            return -shares.Select((p, j) => p * (l[j] - z)).Sum();
        }).Average();
        var before = Loss();
        Assert.Equal(expected, before, 4);
        var entropy = -shares.Sum(p => p * Math.Log(p)); // the loss where the policy's shares are the visit shares
        using (var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 4, WarmupShare: 0)))
            trainer.TrainPreferences(data, 4, options, new Random(1));
        Assert.True(Loss() - entropy < 0.5 * (before - entropy), $"policy-ce {before} -> {Loss()}, minimum {entropy}");
        // With sft-weight the most visited child's token-mean NLL is added, as for the pair losses (it anchors the
        // children's absolute probabilities, which the softmax over them leaves free).
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var plain = PreferenceObjective.Compute(model, data, options).Loss.ToDouble();
        var anchored = PreferenceObjective.Compute(model, data, options with { SftWeight = 1 }).Loss.ToDouble();
        var nll = SequenceScorer.SumLogProbs(model, [.. data.Select(e => e.Candidates[0].Sequence)])
            .Select((s, i) => -s / data[i].Candidates[0].Sequence.Scored.Count(x => x)).Average();
        Assert.Equal(plain + nll, anchored, 4);
    }

    [Fact]
    public void Objective_gradients_agree_with_finite_differences_on_a_tiny_model()
    {
        using var model = Tiny(seed: 5);
        model.to(ScalarType.Float64);
        using var reference = Tiny(seed: 6);
        var pairs = PreferenceData.Prepare(Synthetic(3), Tok, ReferenceSource.Model, reference);
        var lists = PreferenceData.Prepare(Lists(2), Tok, ReferenceSource.Model, reference);
        var advantages = PreferenceData.Prepare([.. Synthetic(2).Select(e => new PreferenceExample(ExampleKind.Advantage, e.Source, e.Prompt, [e.Candidates[0] with { Score = 0.7 }]))],
            Tok, ReferenceSource.Behaviour);
        var parameter = model.parameters().First(p => p.dim() == 2 && p.shape[0] > 8);
        foreach (var (loss, data) in new[] { ("dpo", pairs), ("step-apo", pairs), ("tpo", lists), ("pro", lists), ("verifier", lists), ("ppo-clip", advantages) })
        {
            // TPO's step weights come from the model's own (detached) outputs, so finite differences would see them move: none here.
            var options = new LossOptions(loss, Beta: 0.5, SftWeight: 0.1, StepWeights: StepWeighting.None);
            model.zero_grad();
            using (var scope = NewDisposeScope()) PreferenceObjective.Compute(model, data, options).Loss.backward();
            var grad = parameter.grad!.clone();
            // Directional derivatives (the model's norms and logits run in float32, so single-weight differences drown in
            // rounding): along the gradient itself (= its norm) and along a fixed random direction (= their dot product).
            var random = randn(parameter.shape, dtype: parameter.dtype, generator: new Generator(3));
            foreach (var direction in new[] { grad / grad.norm(), random / random.norm() })
            {
                double At(double delta)
                {
                    using var _ = no_grad();
                    using var scope = NewDisposeScope();
                    parameter.add_(direction * delta);
                    var value = PreferenceObjective.Compute(model, data, options).Loss.ToDouble();
                    parameter.sub_(direction * delta);
                    return value;
                }
                var numeric = (At(1e-3) - At(-1e-3)) / 2e-3;
                var analytic = (grad * direction).sum().ToDouble();
                Assert.True(Math.Abs(numeric - analytic) < 1e-4 + 1e-2 * Math.Abs(analytic), $"{loss}: autograd {analytic}, finite difference {numeric}");
            }
        }
    }

    [Fact]
    public void Preference_training_on_a_separable_set_raises_ranking_accuracy()
    {
        using var model = Tiny(seed: 7);
        var examples = Synthetic(48);
        // Start from a policy that prefers the rejected answers, so there is something to flip.
        using (var sft = new PolicyTrainer(model, new TrainerOptions(LearningRate: 5e-3, BatchSize: 16)))
            sft.TrainSft([.. examples.Select(e => PreferenceData.Encode(Tok, e.Prompt, e.Candidates[1]).Sequence)], 6, new Random(0));
        var data = PreferenceData.Prepare(examples, Tok, ReferenceSource.Model, model);
        var before = LearnerDiagnostics.Score(model, data);
        using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 5e-3, BatchSize: 16, EvalEvery: 4));
        var evaluations = new List<int>();
        trainer.OnEval = step => evaluations.Add(step);
        var stats = trainer.TrainPreferences(data, 8, new LossOptions("dpo", 0.1, SftWeight: 0), new Random(1));
        Assert.Equal([4, 8, 12, 16, 20, 24], evaluations); // 3 steps per epoch, 8 epochs
        var diagnostics = LearnerDiagnostics.Compute(data, before, LearnerDiagnostics.Score(model, data), 0.1, []);
        Assert.True(diagnostics.RankingAccuracy >= 0.9 && diagnostics.RankingAccuracy > diagnostics.RankingAccuracyBefore + 0.2,
            $"ranking accuracy {diagnostics.RankingAccuracyBefore} -> {diagnostics.RankingAccuracy}");
        Assert.True(diagnostics.FlippedToCorrect > 0);
        Assert.True(stats[^1].Loss < stats[0].Loss);
        Assert.Equal(1.0, diagnostics.IdealizedRankingAccuracy); // α = 3/4 from the visits: log 3 / 0.1 outweighs the reference
    }

    static float[] Weights(LlamaForCausalLM model) => [.. model.parameters().SelectMany(p => p.detach().cpu().to(ScalarType.Float32).data<float>().ToArray())];

    static (float[] Weights, IReadOnlyList<EpochStats> Stats) Run(List<PreparedExample> data, string? dir, int every, int? killAt, bool resume,
        ScalarType compute)
    {
        using var model = Tiny(seed: 11);
        using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 3e-3, BatchSize: 2, GradientAccumulation: 2,
            CheckpointEvery: every, CheckpointDir: dir, WeightDecay: 0.01, ComputeDType: compute));
        if (killAt is { } k) trainer.OnStep = s => { if (s.Step == k) throw new OperationCanceledException("killed"); };
        if (resume) trainer.Resume(dir!);
        var stats = trainer.TrainPreferences(data, 3, new LossOptions("dpo", 0.1, SftWeight: 0.5), new Random(5));
        return (Weights(model), stats);
    }

    [Theory]
    [InlineData(1, 5, false)]  // checkpoint at step 4: epoch 1, half-way (3 steps per epoch)
    [InlineData(3, 5, false)]  // checkpoint at step 3: the epoch boundary; the remaining two epochs still train
    [InlineData(1, 5, true)]   // mixed precision: the bfloat16 working copy is re-derived from the float32 weights
    public void Resuming_from_a_checkpoint_matches_an_uninterrupted_run(int every, int killAt, bool bfloat16)
    {
        var compute = bfloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        using var reference = Tiny(seed: 12);
        var data = PreferenceData.Prepare(Synthetic(11), Tok, ReferenceSource.Model, reference); // 6 batches of ≤2, 3 optimizer steps per epoch
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-resume-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (expected, expectedStats) = Run(data, null, 0, null, false, compute);
            Assert.Throws<OperationCanceledException>(() => Run(data, dir, every, killAt, false, compute));
            var (resumed, stats) = Run(data, dir, every, null, true, compute);
            Assert.Equal(3, stats.Count);
            for (var i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - resumed[i]) <= 1e-6, $"weight {i}: {expected[i]} vs {resumed[i]}");
            for (var e = 0; e < 3; e++) Assert.Equal(expectedStats[e].Loss, stats[e].Loss, 5);
            Assert.NotEqual(Weights(Tiny(seed: 11)), resumed); // it trained
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    /// <summary>A model that already writes the held-out sequences (the rejected answers), then trained on the chosen
    /// ones at a high rate: every epoch makes the held-out loss worse.</summary>
    static (LlamaForCausalLM Model, List<ScoredSequence> Train, List<ScoredSequence> HeldOut) Contradicting()
    {
        const string letters = "abcdefgh";
        ScoredSequence Answer(int i, int shift)
        {
            var (a, answer) = (letters[i % 8], letters[(i + shift) % 8]);
            return PreferenceData.Encode(Tok, $"Q {a}:", new Candidate([Step($"{answer}{answer}\n", 2)], 1, 1)).Sequence;
        }
        var train = Enumerable.Range(0, 24).Select(i => Answer(i, 0)).ToList();   // repeat the letter
        var heldOut = Enumerable.Range(0, 24).Select(i => Answer(i, 1)).ToList(); // the next letter, twice
        var model = Tiny(seed: 5);
        using (var warm = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 8)))
            warm.TrainSft(heldOut, 20, new Random(0));
        return (model, train, heldOut);
    }

    [Fact]
    public void Early_stopping_keeps_the_weights_before_training_when_every_epoch_makes_the_held_out_loss_worse()
    {
        var (model, train, heldOut) = Contradicting();
        using var _ = model;
        var start = Weights(model);
        using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 8, Patience: 1));
        var stats = trainer.TrainSft(train, 4, new Random(1), heldOut: heldOut);
        var h = trainer.HeldOut!;
        Assert.Single(stats); // stopped after the first epoch: the held-out loss rose
        Assert.Equal((24, 0, true, 2), (h.Examples, h.KeptEpoch, h.Stopped, h.Losses.Count));
        Assert.True(h.Losses[1] > h.Losses[0], $"held-out loss {h.Losses[0]} -> {h.Losses[1]}");
        Assert.Equal(start, Weights(model)); // back to the weights before training, exactly
    }

    [Fact]
    public void Early_stopping_keeps_the_last_epoch_while_the_held_out_loss_falls()
    {
        var examples = Synthetic(48, seed: 4);
        var sequences = examples.Select(e => PreferenceData.Encode(Tok, e.Prompt, e.Candidates[0]).Sequence).ToList();
        using var model = Tiny(seed: 6);
        using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 5e-3, BatchSize: 8));
        trainer.TrainSft(sequences[..36], 3, new Random(1), heldOut: sequences[36..]);
        var h = trainer.HeldOut!;
        Assert.Equal((12, 3, false, 4), (h.Examples, h.KeptEpoch, h.Stopped, h.Losses.Count));
        Assert.True(h.Losses[3] < h.Losses[0] - 0.5, $"held-out loss {string.Join(" -> ", h.Losses)}");
        using var plain = new PolicyTrainer(model, new TrainerOptions(LearningRate: 5e-3, BatchSize: 8));
        plain.TrainSft(sequences, 1, new Random(1));
        Assert.Null(plain.HeldOut); // no slice, no early stopping
    }

    [Fact]
    public void A_resumed_run_with_a_held_out_slice_goes_back_to_the_kept_weights_from_its_checkpoint()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-heldout-" + Guid.NewGuid().ToString("N"));
        try
        {
            (float[] Start, float[] End, HeldOutStopping? HeldOut) Run(int? killAt, bool resume)
            {
                var (model, train, heldOut) = Contradicting();
                using var _ = model;
                var start = Weights(model);
                // Patience 3: all three epochs run (3 steps each), then the weights before training come back.
                using var trainer = new PolicyTrainer(model, new TrainerOptions(LearningRate: 1e-2, BatchSize: 8, Patience: 3,
                    CheckpointEvery: 1, CheckpointDir: dir));
                if (killAt is { } k) trainer.OnStep = s => { if (s.Step == k) throw new OperationCanceledException("killed"); };
                if (resume) trainer.Resume(dir);
                trainer.TrainSft(train, 3, new Random(1), heldOut: heldOut);
                return (start, Weights(model), trainer.HeldOut);
            }
            Assert.Throws<OperationCanceledException>(() => Run(killAt: 5, resume: false)); // in epoch 2: the model now holds later weights
            var (start, end, h) = Run(killAt: null, resume: true);
            Assert.Equal((0, false, 4), (h!.KeptEpoch, h.Stopped, h.Losses.Count));
            Assert.Equal(start, end);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    /// <summary>learner.dropout: masks only in training mode (eval-mode logits are those without dropout), and a training
    /// run with dropout is reproducible from its seed (the masks come from the seed and the step, not the global stream).</summary>
    [Fact]
    public void Dropout_acts_only_while_training_and_is_reproducible()
    {
        var ids = tensor(Tok.Encode("Q a: aa\n").Select(i => (long)i).ToArray()).unsqueeze(0);
        using var model = Tiny();
        model.eval();
        using var noGrad = no_grad();
        var plain = model.Forward(ids);
        model.Dropout = 0.3;
        Assert.True(plain.allclose(model.Forward(ids), 1e-6, 1e-6)); // eval mode: no masks
        model.train();
        Assert.False(plain.allclose(model.Forward(ids), 1e-3, 1e-3));
        model.eval();
        noGrad.Dispose();

        float[] Trained(double dropout, int globalSeed)
        {
            using var m = Tiny();
            var data = PreferenceData.Prepare(Synthetic(16), Tok, ReferenceSource.Model, Tiny(seed: 2));
            // Another thread draws from torch's global generator all along (as generation or another test does): the
            // masks must depend on neither it nor the global stream's seed.
            using var stop = new CancellationTokenSource();
            var other = Task.Run(() => { while (!stop.IsCancellationRequested) { using var _ = rand(64); } });
            using (var trainer = new PolicyTrainer(m, new TrainerOptions(3e-3, BatchSize: 4, Dropout: dropout)))
            {
                manual_seed(globalSeed);
                trainer.TrainPreferences(data, 2, new LossOptions("dpo", 0.1, SftWeight: 0), new Random(7));
            }
            stop.Cancel();
            other.Wait();
            return m.parameters().First().detach().flatten().data<float>().ToArray();
        }
        var once = Trained(0.2, 1);
        Assert.Equal(once, Trained(0.2, 2));
        Assert.NotEqual(once, Trained(0, 1));
    }
}
