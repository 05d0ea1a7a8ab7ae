using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfPlay.Models.Llama;

#pragma warning disable IDE1006 // snake_case on purpose: these are the Hugging Face / PEFT tensor names

/// <summary>
/// LoRA as PEFT defines it: y = W x + b + (α/r) · B A dropout(x), with A [r, in] (Kaiming-uniform), B [out, r] (zeros,
/// so an attached adapter starts as the identity). <paramref name="TargetModules"/> are the projection names without
/// "_proj" (q, k, v, o, gate, up, down).
/// </summary>
public sealed record LoraSettings(int Rank, double Alpha, double Dropout, IReadOnlyList<string> TargetModules)
{
    public static readonly IReadOnlyList<string> Supported = ["q", "k", "v", "o", "gate", "up", "down"];

    public double Scaling => Alpha / Rank;

    /// <summary>PEFT's module names: q → q_proj.</summary>
    public IEnumerable<string> ModuleNames => TargetModules.Select(t => t + "_proj");

    public bool Targets(string moduleName) => ModuleNames.Any(m => moduleName == m || moduleName.EndsWith("." + m, StringComparison.Ordinal));

    /// <summary>"q,k,v,o" (also "q_proj, v_proj") → the target list; an unknown name is an error naming it.</summary>
    public static IReadOnlyList<string> ParseTargets(string list, string source)
    {
        var names = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(n => n.EndsWith("_proj", StringComparison.Ordinal) ? n[..^5] : n).Distinct().ToList();
        if (names.Count == 0) throw new ArgumentException($"{source}: no target modules (any of {string.Join(",", Supported)})");
        foreach (var n in names)
            if (!Supported.Contains(n)) throw new ArgumentException($"{source}: unknown target module '{n}' (any of {string.Join(",", Supported)})");
        return [.. Supported.Where(names.Contains)];
    }

    public bool SameShape(LoraSettings other) => Rank == other.Rank && ModuleNames.SequenceEqual(other.ModuleNames);
}

/// <summary>
/// The decoder's projection layer: a linear map (weight [out, in], optional bias, Hugging Face names) that can carry a
/// LoRA adapter (lora_A, lora_B, PEFT's names). Without an adapter it is exactly nn.Linear.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter? bias;
    Linear? lora_A, lora_B;
    double _scaling, _dropout;

    public LoraLinear(long inFeatures, long outFeatures, bool hasBias) : base(nameof(LoraLinear))
    {
        weight = new Parameter(empty(outFeatures, inFeatures));
        if (hasBias) bias = new Parameter(zeros(outFeatures));
        RegisterComponents();
    }

    public bool HasAdapter => lora_A is not null;

    /// <summary>Off: the base layer alone (the reference policy of a LoRA learner, without a second copy of the weights).</summary>
    public bool AdapterEnabled { get; set; } = true;

    public Linear? LoraA => lora_A;
    public Linear? LoraB => lora_B;

    /// <summary>Adds a fresh adapter on the weight's device, in at least float32 (the trained weights, whatever the
    /// base's dtype): A Kaiming-uniform (PEFT's a = √5, i.e. U(±1/√in)), B zeros.</summary>
    public void Attach(LoraSettings settings, Generator? generator)
    {
        if (HasAdapter) throw new InvalidOperationException("this layer already has an adapter");
        var (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1]);
        var dtype = LlamaForCausalLM.AtLeastFloat32(weight.dtype);
        lora_A = nn.Linear(inFeatures, settings.Rank, hasBias: false, device: weight.device, dtype: dtype);
        lora_B = nn.Linear(settings.Rank, outFeatures, hasBias: false, device: weight.device, dtype: dtype);
        using (no_grad())
        {
            var bound = 1 / Math.Sqrt(inFeatures);
            lora_A.weight!.uniform_(-bound, bound, generator);
            lora_B.weight!.zero_();
        }
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
        (_scaling, _dropout) = (settings.Scaling, settings.Dropout);
    }

    public override Tensor forward(Tensor x)
    {
        var y = F.linear(x, weight, bias);
        if (lora_A is null || lora_B is null || !AdapterEnabled) return y;
        var input = _dropout > 0 && training ? F.dropout(x, _dropout, true) : x;
        // The adapter computes in its own dtype (float32 beside a bfloat16 base) and adds in the base's.
        return y + (lora_B.call(lora_A.call(input.to(lora_A.weight!.dtype))) * _scaling).to(y.dtype);
    }

    /// <summary>W + (α/r) B A: the weight with the adapter merged in.</summary>
    public Tensor MergedWeight()
    {
        using var _ = no_grad();
        return lora_A is null || lora_B is null ? weight.clone() : (weight + lora_B.weight!.matmul(lora_A.weight!) * _scaling).to(weight.dtype);
    }

    /// <summary>Puts the adapter back in the dtype and values given (after the whole model changed dtype).</summary>
    internal void RestoreAdapter(Tensor a, Tensor b)
    {
        lora_A!.to(a.dtype);
        lora_B!.to(b.dtype);
        lora_A!.weight!.copy_(a);
        lora_B!.weight!.copy_(b);
    }
}
#pragma warning restore IDE1006
