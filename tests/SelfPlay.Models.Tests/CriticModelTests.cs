using SelfPlay.Models.Heads;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;

namespace SelfPlay.Models.Tests;

/// <summary>The trained critic: learns what a state is worth, beats the constant predictor on held-out states, and
/// round-trips through its checkpoint folder, which a changed file or a wrong sha256 refuses.</summary>
public sealed class CriticModelTests : IDisposable
{
    static readonly CharTokenizer Tok = new();
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-critic-" + Guid.NewGuid().ToString("N"));

    // A state is worth 1 when its last step reached 24, 0 otherwise (the numbers vary, so it must read the step).
    static List<(string State, double Target)> Data(int from, int count) => Enumerable.Range(from, count)
        .Select(i => ($"Input: {i % 9 + 1} {i % 7 + 2} 8 3\n{i % 5 + 1} + {i % 4 + 2} = " + (i % 2 == 0 ? "24\n" : $"{i % 13 + 5}\n"), i % 2 == 0 ? 1.0 : 0.0))
        .ToList();

    static CriticModel NewCritic(string kind) =>
        CriticModel.Create(new LlamaForCausalLM(new LlamaConfig(Tok.VocabSize, 32, 64, 2, 4, 2, MaxPositionEmbeddings: 128), 5), Tok, kind, 11);

    [Theory]
    [InlineData("prm")]
    [InlineData("value")]
    public void A_critic_learns_the_states_worth_and_beats_the_constant_predictor(string kind)
    {
        using var critic = NewCritic(kind);
        var train = Data(0, 64);
        var heldOut = Data(1000, 32);
        var before = critic.Loss(heldOut);
        var epochs = critic.Train(train, heldOut, 8, new TrainerOptions(3e-3, BatchSize: 16), new Random(3));
        Assert.Equal(8, epochs.Count);
        var constant = CriticModel.ConstantLoss(kind, train.Select(e => e.Target).ToList(), heldOut.Select(e => e.Target).ToList());
        Assert.True(epochs[^1].HeldOutLoss < 0.5 * constant, $"held-out loss {before:F4} -> {epochs[^1].HeldOutLoss:F4}, constant {constant:F4}");
        Assert.True(epochs[^1].Loss < epochs[0].Loss, $"training loss {epochs[0].Loss:F4} -> {epochs[^1].Loss:F4}");

        var scores = critic.Score(heldOut.Select(e => e.State).ToList());
        var good = scores.Where((_, i) => heldOut[i].Target == 1).Average();
        var bad = scores.Where((_, i) => heldOut[i].Target == 0).Average();
        Assert.True(good > bad + 0.5, $"mean score {good:F3} on winning states vs {bad:F3} on losing ones");
        if (kind == "prm") Assert.All(scores, s => Assert.InRange(s, 0, 1));
    }

    [Fact]
    public void Training_is_seeded_and_a_saved_critic_scores_the_same_after_loading()
    {
        var states = Data(500, 8).Select(e => e.State).ToList();
        double[] Run(out string sha)
        {
            using var critic = NewCritic("prm");
            critic.Train(Data(0, 16), [], 1, new TrainerOptions(3e-3, BatchSize: 8), new Random(3));
            sha = critic.Save(_dir, 1, "game24");
            return critic.Score(states);
        }
        var first = Run(out var sha1);
        var second = Run(out var sha2);
        Assert.Equal(first, second);
        Assert.Equal(sha1, sha2);

        using var loaded = CriticModel.Load(_dir, "cpu", sha1);
        Assert.Equal("prm", loaded.Kind);
        var again = loaded.Score(states);
        for (var i = 0; i < states.Count; i++) Assert.Equal(first[i], again[i], 6);
        // Scoring one at a time or in a batch (right padding) gives the same scores.
        Assert.Equal(again[3], loaded.Score([states[3]])[0], 5);
    }

    [Fact]
    public void A_wrong_sha_a_changed_head_or_a_missing_file_is_a_one_line_error()
    {
        using (var critic = NewCritic("value")) critic.Save(_dir, 1, "game24");
        var wrongSha = Assert.Throws<InvalidDataException>(() => CriticModel.Load(_dir, "cpu", new string('0', 64)));
        Assert.Contains("expected " + new string('0', 64), wrongSha.Message);

        var head = Path.Combine(_dir, CriticModel.HeadName + ".safetensors");
        var bytes = File.ReadAllBytes(head);
        bytes[^1] ^= 0x55;
        File.WriteAllBytes(head, bytes);
        var changed = Assert.Throws<InvalidDataException>(() => CriticModel.Load(_dir));
        Assert.Contains(head, changed.Message);
        Assert.DoesNotContain('\n', changed.Message);

        File.Delete(Path.Combine(_dir, CriticModel.MetaFile));
        Assert.Contains("not a critic checkpoint", Assert.Throws<InvalidDataException>(() => CriticModel.Load(_dir)).Message);
        Assert.Contains("not a critic checkpoint", Assert.Throws<InvalidDataException>(() => CriticModel.Load(_dir + "-missing")).Message);
    }

    [Fact]
    public void The_constant_predictor_loss_matches_worked_numbers()
    {
        // value: mean 0.25, held-out (1, 0): ((0.75)^2 + (0.25)^2) / 2 = 0.3125
        Assert.Equal(0.3125, CriticModel.ConstantLoss("value", [0, 0, 0, 1], [1, 0]), 12);
        // prm: p = 0.25, held-out (1, 0): (−ln 0.25 − ln 0.75) / 2 = 0.837128...
        Assert.Equal((-Math.Log(0.25) - Math.Log(0.75)) / 2, CriticModel.ConstantLoss("prm", [0, 0, 0, 1], [1, 0]), 12);
        Assert.True(double.IsNaN(CriticModel.ConstantLoss("prm", [], [1])));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
