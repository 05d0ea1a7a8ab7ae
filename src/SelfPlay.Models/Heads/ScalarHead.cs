using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfPlay.Models.Heads;

#pragma warning disable IDE1006 // Hugging Face tensor name on purpose: score.weight, as LlamaForSequenceClassification

/// <summary>
/// A scalar head on the hidden states of a Llama trunk: value model (value of a state), process reward model (score of
/// each step) or outcome reward model (score of a whole answer). The trunk can be the policy itself (shared trunk) or a
/// separate model; the head alone is saved as <c>{name}.safetensors</c> next to the trunk's checkpoint.
/// </summary>
public sealed class ScalarHead : nn.Module<Tensor, Tensor>
{
    readonly Linear score;

    public int HiddenSize { get; }

    public ScalarHead(int hiddenSize, long? initSeed = null) : base(nameof(ScalarHead))
    {
        HiddenSize = hiddenSize;
        score = nn.Linear(hiddenSize, 1, hasBias: true);
        RegisterComponents();
        using var noGrad = no_grad();
        var generator = initSeed is { } s ? new Generator((ulong)s) : null;
        score.weight!.normal_(0, 1.0 / Math.Sqrt(hiddenSize), generator);
        score.bias!.zero_();
    }

    /// <summary>Hidden states [.., H] -> scalars [..] (float32).</summary>
    public override Tensor forward(Tensor hidden) => score.call(hidden.to(score.weight!.dtype)).squeeze(-1).to(ScalarType.Float32);

    /// <summary>
    /// One scalar per sequence, read at the given token of each (e.g. the last token of an answer for a reward model,
    /// the last token of a step for a PRM). Right-padded batch through the trunk; gradients flow unless under no_grad.
    /// </summary>
    public Tensor Score(LlamaForCausalLM trunk, IReadOnlyList<int[]> sequences, IReadOnlyList<int>? positions = null)
    {
        if (trunk.Config.HiddenSize != HiddenSize)
            throw new ArgumentException($"head expects hidden size {HiddenSize}, the trunk has {trunk.Config.HiddenSize}");
        if (sequences.Count == 0 || sequences.Any(s => s.Length == 0)) throw new ArgumentException("every sequence needs at least one token");
        var device = trunk.parameters().First().device;
        var length = sequences.Max(s => s.Length);
        var ids = new long[sequences.Count * length];
        for (var b = 0; b < sequences.Count; b++)
            for (var t = 0; t < sequences[b].Length; t++) ids[b * length + t] = sequences[b][t];
        var at = sequences.Select((s, b) => positions is null ? s.Length - 1 : positions[b]).ToArray();
        for (var b = 0; b < at.Length; b++)
            if (at[b] < 0 || at[b] >= sequences[b].Length) throw new ArgumentException($"position {at[b]} is outside sequence {b} (length {sequences[b].Length})");
        // Causal attention: right padding never changes the hidden state of a real token.
        var hidden = trunk.HiddenStates(tensor(ids, [sequences.Count, length], device: device));
        var index = tensor(at.Select(p => (long)p).ToArray(), device: device).view(-1, 1, 1).expand(-1, 1, hidden.shape[2]);
        return forward(hidden.gather(1, index).squeeze(1));
    }

    public void Save(string directory, string name) => SafeTensors.Write(Path.Combine(directory, name + ".safetensors"),
        state_dict().Select(kv => (kv.Key, kv.Value)));

    /// <summary>Loads <c>{name}.safetensors</c> of a checkpoint folder; wrong shapes or missing tensors name the file.</summary>
    public static ScalarHead Load(string directory, string name, int hiddenSize)
    {
        var head = new ScalarHead(hiddenSize);
        var path = Path.Combine(directory, name + ".safetensors");
        var header = SafeTensors.ReadHeader(path);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (key, target) in head.state_dict())
        {
            if (!header.TryGetValue(key, out var entry)) throw new InvalidDataException($"{path} lacks tensor {key}");
            if (!entry.Shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"{path}: tensor {key} has shape [{string.Join(",", entry.Shape)}], expected [{string.Join(",", target.shape)}]");
            target.copy_(SafeTensors.Read(path, entry).to(target.dtype));
        }
        return head;
    }
}
#pragma warning restore IDE1006
