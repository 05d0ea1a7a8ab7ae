#!/usr/bin/env python3
"""PyTorch half of `selfplay bench models`: forward+backward tokens/s of the same Llama-family architecture and batch.

Usage: llama_train_bench.py CONFIG_JSON BATCH SEQ STEPS THREADS   -> prints one JSON line.
The model mirrors SelfPlay's LlamaForCausalLM (RMSNorm, rotary, SwiGLU, GQA, tied or untied head); the loss is the
mean next-token cross-entropy, as in SelfPlay's SFT step. Attention uses scaled_dot_product_attention when this
torch has it (2.0+), else the explicit softmax(QK^T)V.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, self.H, self.KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.D = c.get("head_dim", h // self.H)
        bias = c.get("attention_bias", False)
        self.q = nn.Linear(h, self.H * self.D, bias=bias)
        self.k = nn.Linear(h, self.KV * self.D, bias=bias)
        self.v = nn.Linear(h, self.KV * self.D, bias=bias)
        self.o = nn.Linear(self.H * self.D, h, bias=False)
        i = c["intermediate_size"]
        self.gate, self.up, self.down = nn.Linear(h, i, bias=False), nn.Linear(h, i, bias=False), nn.Linear(i, h, bias=False)
        self.n1, self.n2 = RMSNorm(h, c["rms_norm_eps"]), RMSNorm(h, c["rms_norm_eps"])

    def forward(self, x, cos, sin, causal):
        B, T, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k(h).view(B, T, self.KV, self.D).transpose(1, 2)
        v = self.v(h).view(B, T, self.KV, self.D).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if self.KV != self.H:
            k, v = k.repeat_interleave(self.H // self.KV, 1), v.repeat_interleave(self.H // self.KV, 1)
        if hasattr(F, "scaled_dot_product_attention"):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(self.D)
            a = s.masked_fill(~causal, float("-inf")).softmax(-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, self.H * self.D))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.head = None if c["tie_word_embeddings"] else nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        d = c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
        self.inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2).float() / d))

    def forward(self, ids):
        T = ids.shape[1]
        f = torch.arange(T).float()[:, None] * self.inv[None, :]
        emb = torch.cat([f, f], -1)
        cos, sin = emb.cos(), emb.sin()
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, causal)
        x = self.norm(x)
        return F.linear(x, self.embed.weight) if self.head is None else self.head(x)


def main():
    config = json.loads(open(sys.argv[1]).read())
    batch, seq, steps, threads = (int(a) for a in sys.argv[2:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Model(config)
    ids = torch.randint(0, config["vocab_size"], (batch, seq))

    def step():
        model.zero_grad(set_to_none=True)
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"torch": torch.__version__, "tokensPerSecond": batch * seq * steps / seconds, "seconds": seconds}))


if __name__ == "__main__":
    main()
