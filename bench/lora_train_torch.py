#!/usr/bin/python3
"""PyTorch CPU LoRA training on the SmolLM2-135M shape, the reference for
train.BenchmarkTrainSmolLM2: the same steps on the same shapes.

Each optimizer step: 4 sequences of 128 tokens, the first 32 of each masked
out of the loss (token-level mean cross-entropy), forward, backward into the
LoRA A/B matrices only (frozen base, tied head), one AdamW step. The model
is a plain Llama (RMSNorm, rotate_half RoPE, GQA attention, SwiGLU MLP) with
random float32 weights; LoRA as PEFT builds it (A kaiming-uniform, B zero,
scale alpha/r). Prints one JSON line with tokens/s.

Usage: /usr/bin/python3 bench/lora_train_torch.py [--targets qv|all] [--steps N] [--threads T]
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

HIDDEN, INTER, LAYERS, HEADS, KV, HD, VOCAB = 576, 1536, 30, 9, 3, 64, 49152
THETA, EPS = 100000.0, 1e-5
BATCH, SEQ, PROMPT = 4, 128, 32


class LoRALinear(torch.nn.Module):
    def __init__(self, inp, out, r, alpha, lora):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(out, inp) * 0.02, requires_grad=False)
        self.lora = lora
        if lora:
            self.A = torch.nn.Parameter(torch.empty(r, inp))
            torch.nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
            self.B = torch.nn.Parameter(torch.zeros(out, r))
            self.scale = alpha / r

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora:
            y = y + F.linear(F.linear(x, self.A), self.B) * self.scale
        return y


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self, targets, r, alpha):
        super().__init__()
        mk = lambda name, i, o: LoRALinear(i, o, r, alpha, name in targets)
        self.q = mk("q_proj", HIDDEN, HEADS * HD)
        self.k = mk("k_proj", HIDDEN, KV * HD)
        self.v = mk("v_proj", HIDDEN, KV * HD)
        self.o = mk("o_proj", HEADS * HD, HIDDEN)
        self.gate = mk("gate_proj", HIDDEN, INTER)
        self.up = mk("up_proj", HIDDEN, INTER)
        self.down = mk("down_proj", INTER, HIDDEN)
        self.n1 = torch.nn.Parameter(torch.ones(HIDDEN), requires_grad=False)
        self.n2 = torch.nn.Parameter(torch.ones(HIDDEN), requires_grad=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        h = rms(x, self.n1)
        q = self.q(h).view(b, t, HEADS, HD).transpose(1, 2)
        k = self.k(h).view(b, t, KV, HD).transpose(1, 2)
        v = self.v(h).view(b, t, KV, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(HEADS // KV, dim=1)
        v = v.repeat_interleave(HEADS // KV, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(HD)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        a = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, HEADS * HD))
        h = rms(x, self.n2)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", default="qv", choices=["qv", "all"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    targets = {"q_proj", "v_proj"} if args.targets == "qv" else {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    embed = torch.nn.Parameter(torch.randn(VOCAB, HIDDEN) * 0.02, requires_grad=False)
    norm = torch.nn.Parameter(torch.ones(HIDDEN), requires_grad=False)
    layers = torch.nn.ModuleList([Layer(targets, 8, 16) for _ in range(LAYERS)])
    params = [p for p in layers.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)

    ids = torch.tensor([[(i * 7919 + t * 104729) % VOCAB for t in range(SEQ)] for i in range(BATCH)])
    labels = ids.clone()
    labels[:, :PROMPT] = -100
    inv = 1.0 / THETA ** (torch.arange(0, HD, 2, dtype=torch.float64) / HD)
    ang = torch.arange(SEQ, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat((ang, ang), dim=-1)
    cos, sin = ang.cos().float(), ang.sin().float()

    def step():
        x = embed[ids]
        for l in layers:
            x = l(x, cos, sin)
        # Logits only where a label follows, as the Go trainer does.
        h = rms(x[:, :-1], norm)
        tgt = labels[:, 1:]
        keep = tgt != -100
        logits = F.linear(h[keep], embed)
        loss = F.cross_entropy(logits, tgt[keep])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    el = time.perf_counter() - start
    print(json.dumps({"targets": args.targets, "steps": args.steps, "threads": torch.get_num_threads(),
                      "tokens_per_sec": args.steps * BATCH * SEQ / el, "loss": loss, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
