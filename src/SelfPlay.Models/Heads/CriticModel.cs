using System.Security.Cryptography;
using System.Text.Json;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Heads;

/// <summary>One epoch of critic training: the mean training loss, and the held-out loss after the epoch (NaN without held-out examples).</summary>
public sealed record CriticEpoch(int Epoch, double Loss, double HeldOutLoss);

/// <summary>
/// A trained critic: a Llama trunk of its own with a <see cref="ScalarHead"/> read at the last token of a state.
/// "value" regresses state values (mean squared error, raw scores); "prm" predicts the chance that a state leads to a
/// solved episode (binary cross-entropy on soft labels, scores through a sigmoid). The whole model trains (trunk and
/// head), float32, AdamW with the policy trainer's warm-up + cosine schedule. States longer than the trunk's positions
/// keep their last tokens, the same in training and scoring.
/// Saved as a checkpoint folder (the trunk in the Hugging Face layout, the head as critic-head.safetensors, critic.json);
/// its sha256 covers trunk and head, and a load with the wrong one fails.
/// </summary>
public sealed class CriticModel : IDisposable
{
    public const string HeadName = "critic-head", MetaFile = "critic.json";
    const int ScoreBatch = 64;

    public sealed record Meta(string Kind, int Version, string TrunkSha256, string HeadSha256);

    public LlamaForCausalLM Trunk { get; }
    public ScalarHead Head { get; }
    public string Kind { get; }
    readonly ITokenizer _tokenizer;

    CriticModel(LlamaForCausalLM trunk, ScalarHead head, string kind, ITokenizer tokenizer)
    {
        if (kind is not ("value" or "prm")) throw new ArgumentException($"critic kind must be value or prm, got '{kind}'");
        (Trunk, Head, Kind, _tokenizer) = (trunk, head, kind, tokenizer);
        Head.to(trunk.Device);
    }

    /// <summary>A new critic on the given trunk (taken over: disposed with the critic) and a freshly initialised head.</summary>
    public static CriticModel Create(LlamaForCausalLM trunk, ITokenizer tokenizer, string kind, long seed) =>
        new(trunk, new ScalarHead(trunk.Config.HiddenSize, seed), kind, tokenizer);

    int[] Encode(string state)
    {
        var ids = PolicyEncoding.Prompt(_tokenizer, state);
        var max = Trunk.Config.MaxPositionEmbeddings;
        return ids.Length <= max ? ids : ids[^max..];
    }

    /// <summary>The critic's score of each state (value: the regressed value; prm: a probability).</summary>
    public double[] Score(IReadOnlyList<string> states)
    {
        var scores = new double[states.Count];
        if (states.Count == 0) return scores;
        Trunk.eval();
        Head.eval();
        using var noGrad = no_grad();
        for (var start = 0; start < states.Count; start += ScoreBatch)
        {
            using var scope = NewDisposeScope();
            var batch = states.Skip(start).Take(ScoreBatch).Select(Encode).ToList();
            var raw = Head.Score(Trunk, batch);
            var output = (Kind == "prm" ? raw.sigmoid() : raw).to(ScalarType.Float64).cpu().data<double>().ToArray();
            output.CopyTo(scores, start);
        }
        return scores;
    }

    /// <summary>The loss of the critic's kind over the examples (no gradient); NaN without examples.</summary>
    public double Loss(IReadOnlyList<(string State, double Target)> examples)
    {
        if (examples.Count == 0) return double.NaN;
        Trunk.eval();
        Head.eval();
        using var noGrad = no_grad();
        var sum = 0.0;
        for (var start = 0; start < examples.Count; start += ScoreBatch)
        {
            using var scope = NewDisposeScope();
            var batch = examples.Skip(start).Take(ScoreBatch).ToList();
            sum += BatchLoss(batch).item<float>() * batch.Count;
        }
        return sum / examples.Count;
    }

    /// <summary>
    /// The held-out loss of the constant predictor that always says the training targets' mean: the baseline a critic
    /// has to beat to know anything about states (NaN without examples on either side).
    /// </summary>
    public static double ConstantLoss(string kind, IReadOnlyList<double> trainTargets, IReadOnlyList<double> heldOutTargets)
    {
        if (trainTargets.Count == 0 || heldOutTargets.Count == 0) return double.NaN;
        var mean = trainTargets.Average();
        if (kind != "prm") return heldOutTargets.Average(t => (t - mean) * (t - mean));
        var p = Math.Clamp(mean, 1e-7, 1 - 1e-7);
        return heldOutTargets.Average(t => -(t * Math.Log(p) + (1 - t) * Math.Log(1 - p)));
    }

    Tensor BatchLoss(IReadOnlyList<(string State, double Target)> batch)
    {
        var raw = Head.Score(Trunk, batch.Select(e => Encode(e.State)).ToList());
        var target = tensor(batch.Select(e => (float)e.Target).ToArray(), device: raw.device);
        return Kind == "prm"
            ? nn.functional.binary_cross_entropy_with_logits(raw, target)
            : nn.functional.mse_loss(raw, target);
    }

    /// <summary>
    /// Trains trunk and head on the examples for <paramref name="epochs"/> shuffled epochs (seeded by
    /// <paramref name="random"/>), measuring the held-out loss after each epoch.
    /// </summary>
    public List<CriticEpoch> Train(IReadOnlyList<(string State, double Target)> examples, IReadOnlyList<(string State, double Target)> heldOut,
        int epochs, TrainerOptions options, Random random, Action<int, int>? progress = null)
    {
        var history = new List<CriticEpoch>();
        if (examples.Count == 0 || epochs == 0) return history;
        // lm_head never gets a gradient from a scalar head; leaving it out keeps AdamW from touching it.
        var parameters = Trunk.named_parameters().Where(p => !p.name.StartsWith("lm_head", StringComparison.Ordinal)).Select(p => p.parameter)
            .Concat(Head.parameters()).ToList();
        using var optimizer = optim.AdamW(parameters, options.LearningRate, weight_decay: options.WeightDecay);
        var batches = (examples.Count + options.BatchSize - 1) / options.BatchSize;
        var total = batches * epochs;
        var step = 0;
        for (var epoch = 1; epoch <= epochs; epoch++)
        {
            var order = Enumerable.Range(0, examples.Count).ToArray();
            random.Shuffle(order);
            Trunk.train();
            Head.train();
            var lossSum = 0.0;
            for (var b = 0; b < batches; b++, step++)
            {
                using var scope = NewDisposeScope();
                var batch = order.Skip(b * options.BatchSize).Take(options.BatchSize).Select(i => examples[i]).ToList();
                foreach (var group in optimizer.ParamGroups) group.LearningRate = options.LearningRateAt(step, total);
                optimizer.zero_grad();
                var loss = BatchLoss(batch);
                loss.backward();
                nn.utils.clip_grad_norm_(parameters, options.MaxGradNorm);
                optimizer.step();
                lossSum += loss.item<float>() * batch.Count;
                progress?.Invoke(step + 1, total);
            }
            history.Add(new CriticEpoch(epoch, lossSum / examples.Count, Loss(heldOut)));
        }
        Trunk.eval();
        Head.eval();
        return history;
    }

    /// <summary>Writes the critic into <paramref name="directory"/> (via a temporary sibling folder and a rename, so a
    /// crash never leaves half a critic) and returns its sha256.</summary>
    public string Save(string directory, int version, string environment)
    {
        var full = Path.GetFullPath(directory).TrimEnd('/');
        var temp = full + ".tmp-critic-" + Environment.ProcessId;
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        var trunkSha = Checkpoint.Save(Trunk, _tokenizer, temp, version, environment);
        Head.Save(temp, HeadName);
        var meta = new Meta(Kind, version, trunkSha, Checkpoint.Sha256Of(Path.Combine(temp, HeadName + ".safetensors")));
        File.WriteAllText(Path.Combine(temp, MetaFile), JsonSerializer.Serialize(meta));
        if (Directory.Exists(full)) Directory.Delete(full, true);
        Directory.Move(temp, full);
        return Sha256(meta);
    }

    static string Sha256(Meta meta) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(meta.TrunkSha256 + ":" + meta.HeadSha256)));

    /// <summary>Loads a critic folder; a missing or changed file (trunk, head or critic.json) is a one-line error naming it.</summary>
    public static CriticModel Load(string directory, string device = "cpu", string? expectedSha256 = null)
    {
        var metaPath = Path.Combine(directory, MetaFile);
        if (!File.Exists(metaPath)) throw new InvalidDataException($"not a critic checkpoint (no {MetaFile}): {directory}");
        Meta meta;
        try { meta = JsonSerializer.Deserialize<Meta>(File.ReadAllText(metaPath)) ?? throw new InvalidDataException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{metaPath} is not valid critic metadata: {e.Message}"); }
        var headPath = Path.Combine(directory, HeadName + ".safetensors");
        if (!File.Exists(headPath)) throw new InvalidDataException($"critic checkpoint has no {HeadName}.safetensors: {directory}");
        var headSha = Checkpoint.Sha256Of(headPath);
        if (headSha != meta.HeadSha256) throw new InvalidDataException($"{headPath} has sha256 {headSha}, {MetaFile} says {meta.HeadSha256}");
        if (expectedSha256 is not null && Sha256(meta) != expectedSha256)
            throw new InvalidDataException($"critic {directory} has sha256 {Sha256(meta)}, expected {expectedSha256}");
        var (trunk, tokenizer, _) = Checkpoint.Load(directory, device, meta.TrunkSha256);
        try
        {
            var head = ScalarHead.Load(directory, HeadName, trunk.Config.HiddenSize);
            return new CriticModel(trunk, head, meta.Kind, tokenizer);
        }
        catch
        {
            trunk.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Trunk.Dispose();
        Head.Dispose();
    }
}
