#!/usr/bin/python3
"""Makes the golden Llama-family checkpoints of SelfPlay.Models.Tests (GoldenLogitsTests).

An independent reference: plain PyTorch (no transformers), written from the Hugging Face modelling code's
equations (RMSNorm, rotary embeddings incl. the "llama3" frequency scaling, SwiGLU, grouped-query attention,
optional q/k/v biases, tied or untied lm_head), evaluated in float64. Each case folder holds config.json,
model.safetensors (or shards + model.safetensors.index.json) with Hugging Face tensor names, and golden.safetensors
with "input_ids" [2, T] (int64) and "logits" [2, T, V] (float32).

Run from this folder:  python3 make_llama_golden.py   (Debian: apt-get install python3-torch)
"""
import json
import math
import os
import struct

import torch

DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def inv_frequencies(c):
    d = c["head_dim"]
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    s = c.get("rope_scaling")
    if s is None:
        return inv
    assert s["rope_type"] == "llama3"
    factor, low, high, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    return torch.where(medium, smoothed, scaled)


def rotate_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


def reference_logits(c, w, ids):
    """Logits of a causal decoder over ids [B, T], positions 0..T-1, everything in float64."""
    w = {k: v.double() for k, v in w.items()}
    B, T = ids.shape
    H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps = c["rms_norm_eps"]
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_frequencies(c)[None, :]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    x = w["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name, heads):
            y = h @ w[p + f"self_attn.{name}.weight"].T
            if p + f"self_attn.{name}.bias" in w:
                y = y + w[p + f"self_attn.{name}.bias"]
            return y.view(B, T, heads, D).transpose(1, 2)

        q, k, v = proj("q_proj", H), proj("k_proj", KV), proj("v_proj", KV)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        scores = scores.masked_fill(~causal, float("-inf"))
        att = scores.softmax(-1) @ v
        x = x + att.transpose(1, 2).reshape(B, T, H * D) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def random_weights(c, gen):
    V, Hd, I = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
    H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]

    def rnd(*shape, scale):
        return torch.randn(*shape, generator=gen) * scale

    w = {"model.embed_tokens.weight": rnd(V, Hd, scale=1.0)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + rnd(Hd, scale=0.1)
        w[p + "post_attention_layernorm.weight"] = 1 + rnd(Hd, scale=0.1)
        for name, out in (("q_proj", H * D), ("k_proj", KV * D), ("v_proj", KV * D)):
            w[p + f"self_attn.{name}.weight"] = rnd(out, Hd, scale=Hd ** -0.5)
            if c.get("attention_bias"):
                w[p + f"self_attn.{name}.bias"] = rnd(out, scale=0.5)
        w[p + "self_attn.o_proj.weight"] = rnd(Hd, H * D, scale=(H * D) ** -0.5)
        w[p + "mlp.gate_proj.weight"] = rnd(I, Hd, scale=Hd ** -0.5)
        w[p + "mlp.up_proj.weight"] = rnd(I, Hd, scale=Hd ** -0.5)
        w[p + "mlp.down_proj.weight"] = rnd(Hd, I, scale=I ** -0.5)
    w["model.norm.weight"] = 1 + rnd(Hd, scale=0.1)
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = rnd(V, Hd, scale=Hd ** -0.5)
    return w


def base(arch, model_type, **extra):
    c = {"architectures": [arch], "model_type": model_type, "vocab_size": 96, "hidden_size": 64,
         "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "hidden_act": "silu", "bos_token_id": 1,
         "eos_token_id": 2, "torch_dtype": "float32"}
    c.update(extra)
    return c


CASES = {
    "llama-tied-theta1e4": base("LlamaForCausalLM", "llama", rope_theta=10000.0, tie_word_embeddings=True),
    "llama-untied-theta5e5-sharded": base("LlamaForCausalLM", "llama", rope_theta=500000.0, tie_word_embeddings=False),
    "qwen2-bias-tied": base("Qwen2ForCausalLM", "qwen2", rope_theta=1000000.0, tie_word_embeddings=True,
                            attention_bias=True, rms_norm_eps=1e-6),
    "llama3-rope-scaling": base("LlamaForCausalLM", "llama", rope_theta=500000.0, tie_word_embeddings=False,
                                eos_token_id=[2, 3], head_dim=16,
                                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                              "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "mistral-untied": base("MistralForCausalLM", "mistral", rope_theta=10000.0, tie_word_embeddings=False,
                           sliding_window=None),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for seed, (name, c) in enumerate(CASES.items()):
        folder = os.path.join(here, name)
        os.makedirs(folder, exist_ok=True)
        full = dict(c)
        full.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
        gen = torch.Generator().manual_seed(1000 + seed)
        w = random_weights(full, gen)
        T = 40  # positions 0..39 cross every band of the llama3 case (original context 64, high-frequency wavelength 16)
        ids = torch.randint(0, c["vocab_size"], (2, T), generator=gen, dtype=torch.int64)
        logits = reference_logits(full, w, ids).float()
        config = dict(c)
        if c["architectures"][0] == "Qwen2ForCausalLM":
            config.pop("attention_bias")  # Qwen2 configs do not say it: the architecture implies the biases
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        for old in os.listdir(folder):
            if old.startswith("model") and old != "config.json":
                os.remove(os.path.join(folder, old))
        if name.endswith("sharded"):
            names = list(w)
            half = len(names) // 2
            shards = [names[:half], names[half:]]
            index = {"metadata": {"total_size": sum(t.numel() * 4 for t in w.values())}, "weight_map": {}}
            for i, part in enumerate(shards):
                file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
                write_safetensors(os.path.join(folder, file), {n: w[n] for n in part})
                index["weight_map"].update({n: file for n in part})
            with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
                json.dump(index, f, indent=2)
        else:
            write_safetensors(os.path.join(folder, "model.safetensors"), w)
        write_safetensors(os.path.join(folder, "golden.safetensors"), {"input_ids": ids, "logits": logits})
        print(name, tuple(logits.shape), f"|logits| max {logits.abs().max().item():.3f}")


if __name__ == "__main__":
    main()
