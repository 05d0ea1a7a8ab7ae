using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfPlay.Models.Llama;

// Field names are Hugging Face tensor names (model.layers.0.self_attn.q_proj.weight, ...): TorchSharp builds
// state_dict keys from them, so a checkpoint folder round-trips with the HF layout unchanged.
#pragma warning disable IDE1006 // snake_case on purpose

/// <summary>Keys and values of every layer for the tokens seen so far; grows by concatenation.</summary>
public sealed class KvCache(int layers)
{
    public Tensor?[] Keys { get; } = new Tensor?[layers];
    public Tensor?[] Values { get; } = new Tensor?[layers];
    public int Length => Keys[0] is { } k ? (int)k.shape[2] : 0;
}

public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly double _eps;

    public RmsNorm(int dim, double eps) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(dim));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        // In at least float32 whatever the weights' dtype, as Hugging Face does (float64 stays float64: gradient checks).
        using var scope = NewDisposeScope();
        var x32 = x.to(LlamaForCausalLM.AtLeastFloat32(x.dtype));
        var normed = (x32 * rsqrt(x32.pow(2).mean([-1], keepdim: true) + _eps)).to(x.dtype);
        return (normed * weight).MoveToOuterDisposeScope();
    }
}

public sealed class LlamaAttention : nn.Module
{
    readonly LoraLinear q_proj, k_proj, v_proj, o_proj;
    readonly int _heads, _kvHeads, _headDim;

    public LlamaAttention(LlamaConfig c) : base(nameof(LlamaAttention))
    {
        _heads = c.NumAttentionHeads; _kvHeads = c.NumKeyValueHeads; _headDim = c.HeadDim;
        q_proj = new LoraLinear(c.HiddenSize, _heads * _headDim, hasBias: c.AttentionBias);
        k_proj = new LoraLinear(c.HiddenSize, _kvHeads * _headDim, hasBias: c.AttentionBias);
        v_proj = new LoraLinear(c.HiddenSize, _kvHeads * _headDim, hasBias: c.AttentionBias);
        o_proj = new LoraLinear(_heads * _headDim, c.HiddenSize, hasBias: false);
        RegisterComponents();
    }

    static Tensor RotateHalf(Tensor x)
    {
        var halves = x.chunk(2, -1);
        return cat([-halves[1], halves[0]], -1);
    }

    /// <param name="mask">additive mask [B,1,T,S]; null means plain causal attention over T tokens with an empty cache.</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        var (b, t) = (x.shape[0], x.shape[1]);
        var q = q_proj.call(x).view(b, t, _heads, _headDim).transpose(1, 2);
        var k = k_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        var v = v_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = q * cos + RotateHalf(q) * sin;
        k = k * cos + RotateHalf(k) * sin;
        if (cache is not null)
        {
            if (cache.Keys[layer] is { } pastK)
            {
                k = cat([pastK, k], 2);
                v = cat([cache.Values[layer]!, v], 2);
            }
            cache.Keys[layer] = k;
            cache.Values[layer] = v;
        }
        if (_kvHeads != _heads)
        {
            k = k.repeat_interleave(_heads / _kvHeads, dim: 1);
            v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
        }
        var attended = F.scaled_dot_product_attention(q, k, v, attn_mask: mask, is_casual: mask is null && t > 1);
        return o_proj.call(attended.transpose(1, 2).reshape(b, t, _heads * _headDim));
    }
}

public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear gate_proj, up_proj, down_proj;

    public LlamaMlp(LlamaConfig c) : base(nameof(LlamaMlp))
    {
        gate_proj = new LoraLinear(c.HiddenSize, c.IntermediateSize, hasBias: false);
        up_proj = new LoraLinear(c.HiddenSize, c.IntermediateSize, hasBias: false);
        down_proj = new LoraLinear(c.IntermediateSize, c.HiddenSize, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.call(F.silu(gate_proj.call(x)) * up_proj.call(x));
}

public sealed class LlamaDecoderLayer : nn.Module
{
    readonly LlamaAttention self_attn;
    readonly LlamaMlp mlp;
    readonly RmsNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(LlamaConfig c) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = new LlamaAttention(c);
        mlp = new LlamaMlp(c);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    /// <summary>Dropout on the attention's and the MLP's outputs before each residual add, in training mode only.</summary>
    internal double Dropout { get; set; }
    /// <summary>Where the masks come from (null: torch's global generator, which other threads share).</summary>
    internal Generator? DropoutMasks { get; set; }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        var h = x + Drop(self_attn.Forward(input_layernorm.call(x), cos, sin, mask, cache, layer));
        return h + Drop(mlp.call(post_attention_layernorm.call(h)));
    }

    Tensor Drop(Tensor t) => training && Dropout > 0
        ? t * (rand(t.shape, dtype: t.dtype, device: t.device, generator: DropoutMasks) >= Dropout).to(t.dtype) / (1 - Dropout)
        : t;
}

public sealed class LlamaModel : nn.Module
{
    internal readonly Embedding embed_tokens;
    readonly ModuleList<LlamaDecoderLayer> layers;
    readonly RmsNorm norm;

    public LlamaModel(LlamaConfig c) : base(nameof(LlamaModel))
    {
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(c)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    internal void SetDropout(double p, Generator? masks)
    {
        foreach (var layer in layers) (layer.Dropout, layer.DropoutMasks) = (p, masks);
    }

    public Tensor Forward(Tensor inputIds, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache)
    {
        var h = embed_tokens.call(inputIds);
        for (var i = 0; i < layers.Count; i++) h = layers[i].Forward(h, cos, sin, mask, cache, i);
        return norm.call(h);
    }
}

/// <summary>Llama-family decoder (RMSNorm, rotary embeddings, SwiGLU, grouped-query attention, optional q/k/v biases).</summary>
public sealed class LlamaForCausalLM : nn.Module
{
    readonly LlamaModel model;
    readonly Linear? lm_head;
    readonly Tensor _invFreq;

    public LlamaConfig Config { get; }

    /// <summary>Residual dropout while training (learner.dropout; 0 = none): a training setting, not part of the
    /// architecture or of config.json, and without effect in eval mode (generation, scoring).</summary>
    public double Dropout
    {
        get => _dropout;
        set
        {
            if (value is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(value), value, "dropout must be in [0, 1)");
            model.SetDropout(_dropout = value, _dropoutMasks);
        }
    }
    double _dropout;
    Generator? _dropoutMasks;

    /// <summary>The next forward passes draw their dropout masks from a generator of this seed of their own, so the
    /// masks depend on the seed alone, whatever else uses torch's global generator meanwhile (generation, other models).</summary>
    public void SeedDropout(long seed)
    {
        var previous = _dropoutMasks;
        _dropoutMasks = new Generator(unchecked((ulong)seed), Device);
        model.SetDropout(_dropout, _dropoutMasks);
        previous?.Dispose();
    }

    public LlamaForCausalLM(LlamaConfig config, long? initSeed = null) : base(nameof(LlamaForCausalLM))
    {
        config.Validate();
        Config = config;
        model = new LlamaModel(config);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
        // Same formula as Hugging Face's rotary embedding (incl. rope_scaling), so logits match a PyTorch reference.
        _invFreq = tensor(config.InverseFrequencies()).DetachFromDisposeScope();
        InitWeights(initSeed);
    }

    void InitWeights(long? seed)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var generator = seed is { } s ? new Generator((ulong)s) : null;
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(1);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else p.normal_(0, 0.02, generator);
        }
    }

    /// <summary>cos/sin tables [B,1,T,headDim] for the given positions [B,T].</summary>
    (Tensor Cos, Tensor Sin) Rotary(Tensor positionIds)
    {
        var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * _invFreq.to(positionIds.device);
        var emb = cat([freqs, freqs], -1).unsqueeze(1);
        var dtype = model.embed_tokens.weight!.dtype;
        return (emb.cos().to(dtype), emb.sin().to(dtype));
    }

    /// <summary>Logits [B,T,V]. Without a mask the tokens are attended causally from position 0 with an empty cache.</summary>
    public Tensor Forward(Tensor inputIds, Tensor? positionIds = null, Tensor? mask = null, KvCache? cache = null) =>
        Logits(HiddenStates(inputIds, positionIds, mask, cache));

    /// <summary>Final normed hidden states [B,T,H]: the trunk that scalar heads (value, PRM, reward) share.</summary>
    public Tensor HiddenStates(Tensor inputIds, Tensor? positionIds = null, Tensor? mask = null, KvCache? cache = null)
    {
        positionIds ??= arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0).expand(inputIds.shape[0], -1);
        var (cos, sin) = Rotary(positionIds);
        return model.Forward(inputIds, cos, sin, mask, cache);
    }

    /// <summary>Logits [.., V] of hidden states; computed in float32 whatever the weights' dtype.</summary>
    public Tensor Logits(Tensor hidden) =>
        (lm_head is null ? F.linear(hidden, model.embed_tokens.weight!) : lm_head.call(hidden)).to(AtLeastFloat32(hidden.dtype));

    internal static ScalarType AtLeastFloat32(ScalarType type) => type == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    public KvCache NewCache() => new(Config.NumHiddenLayers);

    /// <summary>The weights' dtype (float32, or bfloat16 when configured).</summary>
    public ScalarType DType => model.embed_tokens.weight!.dtype;

    /// <summary>The device the weights live on.</summary>
    public Device Device => model.embed_tokens.weight!.device;

    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>The LoRA adapter's settings, or null when the model has none (full fine-tuning).</summary>
    public LoraSettings? Lora { get; private set; }

    /// <summary>Every decoder projection with its state_dict prefix (model.layers.N.self_attn.q_proj, ...).</summary>
    public IEnumerable<(string Name, LoraLinear Layer)> Projections() =>
        named_modules().Where(m => m.module is LoraLinear).Select(m => (m.name, (LoraLinear)m.module));

    /// <summary>
    /// Attaches a fresh LoRA adapter (seeded) to the target projections and freezes every other weight: from then on
    /// only the adapter trains. The base weights stay untouched, so the base is also the reference policy.
    /// </summary>
    public void AttachLora(LoraSettings settings, long seed)
    {
        if (Lora is not null) throw new InvalidOperationException("the model already has a LoRA adapter");
        if (settings.Rank <= 0) throw new ArgumentException($"LoRA rank must be positive, got {settings.Rank}");
        var generator = new Generator((ulong)seed, Device);
        foreach (var p in parameters()) p.requires_grad = false;
        foreach (var (name, layer) in Projections())
            if (settings.Targets(name)) layer.Attach(settings, generator);
        Lora = settings;
    }

    /// <summary>
    /// Converts every frozen weight to <paramref name="dtype"/> (bfloat16: half the memory of the base), keeping the
    /// adapter's trained weights in float32. Only for a model with an adapter.
    /// </summary>
    public void BaseTo(ScalarType dtype)
    {
        if (Lora is null) throw new InvalidOperationException("only the base of a model with an adapter changes dtype alone");
        var adapted = Projections().Select(p => p.Layer).Where(l => l.HasAdapter).ToList();
        var kept = adapted.Select(l => (l.LoraA!.weight!.detach().clone(), l.LoraB!.weight!.detach().clone())).ToList();
        this.to(dtype);
        using var _ = no_grad();
        for (var i = 0; i < adapted.Count; i++) adapted[i].RestoreAdapter(kept[i].Item1, kept[i].Item2);
        foreach (var p in parameters()) p.requires_grad = false;
        foreach (var l in adapted) { l.LoraA!.weight!.requires_grad = true; l.LoraB!.weight!.requires_grad = true; }
    }

    /// <summary>The weights the optimizer updates: all of them, or only the adapter's.</summary>
    public IEnumerable<Parameter> TrainableParameters() => parameters().Where(p => p.requires_grad);

    /// <summary>Until disposed, the model computes without its adapter: the base policy.</summary>
    public IDisposable WithoutAdapter()
    {
        var layers = Projections().Select(p => p.Layer).Where(l => l.HasAdapter).ToList();
        foreach (var l in layers) l.AdapterEnabled = false;
        return new Restore(() => { foreach (var l in layers) l.AdapterEnabled = true; });
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
#pragma warning restore IDE1006
