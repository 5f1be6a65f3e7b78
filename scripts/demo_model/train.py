"""Standalone trainer for the demo model (needs only torch and numpy, so it runs on a bare GPU box).

The network is a compact re-implementation of transformers' GptOss forward pass (RMSNorm, RoPE,
GQA attention with learned sinks, alternating sliding/full layers, top-k MoE with the clamped
SwiGLU) whose parameter names and layouts match `GptOssForCausalLM`, so `export` loads the state
dict as is and checks the logits agree. Training only adds dropout and a load-balancing loss.

Data: `train.bin` / `val.bin` from `prepare`; windows of `--seq` tokens at random offsets (seeded).
The run stops itself after `--time-limit` seconds; `--resume` continues from its `last/` folder
(weights and counters; the Adam moments restart, with a short re-warm-up).

    python3 train.py --data . --out OUT
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        h = x.float()
        return (self.weight.float() * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps))).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, c, window):
        super().__init__()
        self.hq, self.hkv, self.d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        self.window = window
        h, dq, dkv = c["hidden_size"], self.hq * self.d, self.hkv * self.d
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(h, dq), nn.Linear(h, dkv), nn.Linear(h, dkv)
        self.o_proj = nn.Linear(dq, h)
        self.sinks = nn.Parameter(torch.zeros(self.hq))

    def forward(self, x, cos, sin, masks):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.hq, self.d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.hkv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.hkv, self.d).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.hq // self.hkv
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        # Sinks as one extra key: an added head dimension is 1 in every query and sink/scale in the
        # sink key (value 0), so its logit is exactly the learned sink and SDPA kernels still apply.
        scale, pad = self.d ** -0.5, masks["pad"]
        q, k, v = F.pad(q, (0, pad)), F.pad(k, (0, pad)), F.pad(v, (0, pad))
        q[..., self.d] = 1.0
        sink_k = torch.zeros(1, self.hq, 1, self.d + pad, dtype=k.dtype, device=k.device)
        sink_k[..., self.d] = (self.sinks / scale).to(k.dtype).view(1, -1, 1)
        k = torch.cat([sink_k.expand(b, -1, -1, -1), k], 2)
        v = torch.cat([torch.zeros_like(v[:, :, :1]), v], 2)
        mask = masks["sliding" if self.window else "full"]
        extra = mask.shape[-1] - k.shape[2]  # keys padded to a multiple of 16 for the fused kernels
        k, v = F.pad(k, (0, 0, 0, extra)), F.pad(v, (0, 0, 0, extra))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)[..., :self.d]
        return self.o_proj(o.transpose(1, 2).reshape(b, t, self.hq * self.d))


def rope(x, cos, sin):
    x1, x2 = x.chunk(2, -1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def holder(**tensors) -> nn.Module:
    """A bare module of parameters, so that names match transformers' (`router.weight`, ...)."""
    m = nn.Module()
    for name, t in tensors.items():
        m.register_parameter(name, nn.Parameter(t))
    return m


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        e, h, i = c["num_local_experts"], c["hidden_size"], c["intermediate_size"]
        self.k = c["num_experts_per_tok"]
        self.router = holder(weight=torch.zeros(e, h), bias=torch.zeros(e))
        self.experts = holder(gate_up_proj=torch.empty(e, h, 2 * i), gate_up_proj_bias=torch.zeros(e, 2 * i),
                              down_proj=torch.empty(e, i, h), down_proj_bias=torch.zeros(e, h))

    def forward(self, x):
        b, t, h = x.shape
        x = x.reshape(-1, h)
        logits = F.linear(x, self.router.weight, self.router.bias)
        top_v, top_i = logits.topk(self.k, -1)
        weights = torch.zeros_like(logits).scatter(1, top_i, top_v.softmax(-1).to(logits.dtype))  # 0 if unrouted
        ex = self.experts
        # Every expert on every token (4 experts, top-2: twice the FLOPs, no gather/scatter); the
        # zero routing weights make it the same function and gradient as the sparse form.
        gu = torch.einsum("nh,ehf->enf", x, ex.gate_up_proj) + ex.gate_up_proj_bias[:, None]
        gate, up = gu[..., ::2].clamp(max=7.0), gu[..., 1::2].clamp(-7.0, 7.0)
        act = (up + 1) * gate * torch.sigmoid(gate * 1.702)
        out = torch.einsum("enf,efh->enh", act, ex.down_proj) + ex.down_proj_bias[:, None]
        y = torch.einsum("enh,ne->nh", out, weights.to(out.dtype))
        # Switch-style balance term: routed fraction times mean router probability, per expert.
        frac = F.one_hot(top_i, logits.shape[-1]).float().mean((0, 1))
        aux = logits.shape[-1] * (frac * logits.float().softmax(-1).mean(0)).sum()
        return y.view(b, t, h), aux


class Layer(nn.Module):
    def __init__(self, c, window, dropout):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c, window)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MoE(c)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, cos, sin, masks):
        x = x + self.drop(self.self_attn(self.input_layernorm(x), cos, sin, masks))
        y, aux = self.mlp(self.post_attention_layernorm(x))
        return x + self.drop(y), aux


class GptOss(nn.Module):
    """Named like GptOssForCausalLM (`model.*`, `lm_head`); returns logits and the mean balance loss."""

    def __init__(self, c, dropout=0.0):
        super().__init__()
        self.c = c
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.model.layers = nn.ModuleList(
            Layer(c, c["sliding_window"] if lt == "sliding_attention" else 0, dropout) for lt in c["layer_types"])
        self.model.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.drop = nn.Dropout(dropout)
        d = c["head_dim"]
        theta = c["rope_parameters"]["rope_theta"]
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, d, 2).float() / d), persistent=False)

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        std, n = 0.02, len(self.model.layers)
        for name, p in self.named_parameters():
            if p.dim() >= 2:  # residual-branch outputs shrink with depth (GPT-2 style)
                s = std / math.sqrt(2 * n) if name.endswith(("o_proj.weight", "down_proj")) else std
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * s)

    def masks(self, t, device):
        i = torch.arange(t, device=device)
        causal = i[None, :] <= i[:, None]
        sliding = causal & (i[:, None] - i[None, :] < self.c["sliding_window"])
        width = -(-(t + 1) // 16) * 16
        out = {"pad": 8}  # the sink slot, padded by 8 so head_dim stays a multiple of 8 for fused kernels
        for name, m in (("full", causal), ("sliding", sliding)):
            full = torch.zeros(t, width, dtype=torch.bool, device=device)
            full[:, 0], full[:, 1:t + 1] = True, m
            out[name] = full
        return out

    def forward(self, ids):
        t = ids.shape[1]
        freqs = torch.arange(t, device=ids.device).float()[:, None] * self.inv_freq[None]
        cos, sin = freqs.cos(), freqs.sin()
        masks = self.masks(t, ids.device)
        x = self.drop(self.model.embed_tokens(ids))
        aux = 0.0
        for layer in self.model.layers:
            x, a = layer(x, cos.to(x.dtype), sin.to(x.dtype), masks)
            aux = aux + a
        return self.lm_head(self.model.norm(x)), aux / len(self.model.layers)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, steps - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def save_weights(state: dict, out: Path, shard_bytes: int = 14_000_000) -> None:
    """fp16 state dict in `weights-NN.pt` shards, each small enough to copy back from the GPU box."""
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("weights-*.pt"):
        f.unlink()
    shards, cur, size = [], {}, 0
    for k, t in state.items():
        t = t.detach().half().cpu().contiguous()
        if cur and size + t.numel() * 2 > shard_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[k], size = t, size + t.numel() * 2
    shards.append(cur)
    for i, shard in enumerate(shards):
        torch.save(shard, out / f"weights-{i:02d}.pt")


def load_weights(folder: Path) -> dict:
    state = {}
    for f in sorted(Path(folder).glob("weights-*.pt")):
        state.update({k: t.float() for k, t in torch.load(f, map_location="cpu", weights_only=True).items()})
    if not state:
        raise FileNotFoundError(f"no weights-*.pt in {folder}")
    return state


@torch.no_grad()
def evaluate(model, val, seq, batch, device):
    """Mean next-token loss over the whole held-out stream in non-overlapping `seq` windows."""
    model.eval()
    n = (len(val) - 1) // seq
    x = torch.from_numpy(val[:n * seq + 1].astype(np.int64))
    total, count = 0.0, 0
    for s in range(0, n, batch):
        idx = torch.arange(s, min(n, s + batch))[:, None] * seq + torch.arange(seq + 1)[None]
        w = x[idx].to(device)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            logits, _ = model(w[:, :-1])
        total += F.cross_entropy(logits.float().flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
        count += w[:, 1:].numel()
    model.train()
    return total / count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    for flag, kind, default, what in (
            ("--steps", int, 2000, "optimizer steps (length of the cosine schedule)"),
            ("--batch", int, 16, "windows per step"), ("--seq", int, 2048, "tokens per window"),
            ("--lr", float, 1.5e-3, "peak learning rate"), ("--warmup", int, 100, "linear warm-up steps"),
            ("--wd", float, 0.1, "AdamW weight decay on matrices"),
            ("--dropout", float, 0.3, "residual and embedding dropout"),
            ("--aux", float, 0.01, "load-balancing loss weight"), ("--eval-every", int, 100, "steps"),
            ("--time-limit", float, 500.0, "seconds; then save and stop"), ("--seed", int, 0, "")):
        ap.add_argument(flag, type=kind, default=default, help=what)
    ap.add_argument("--resume", type=Path, help="the `last` folder of an earlier run")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    t0 = time.time()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    torch.set_float32_matmul_precision("high")
    cfg = json.loads((args.data / "hf" / "config.json").read_text())
    train = np.fromfile(args.data / "train.bin", np.uint16)
    val = np.fromfile(args.data / "val.bin", np.uint16)
    model = GptOss(cfg, args.dropout)
    model.init_weights(args.seed)
    model.to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2 and p is not model.model.embed_tokens.weight]
    rest = [p for p in model.parameters() if not any(p is q for q in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=device.type == "cuda")
    rng = np.random.default_rng(args.seed)
    step = start = 0
    best, log = float("inf"), []
    if args.resume:  # weights and counters only: optimizer moments are too big to copy around
        model.load_state_dict(load_weights(args.resume))
        st = json.loads((args.resume / "state.json").read_text())
        step, start, best, log = st["step"], st["step"], st["best"], st["log"]
        rng.bit_generator.state = st["rng"]
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params:,}  train tokens {len(train):,}  val tokens {len(val):,}  device {device}"
          f"  torch {torch.__version__}", flush=True)
    train_t = torch.from_numpy(train.astype(np.int64))
    tok_per_step = args.batch * args.seq
    t_train = time.time()
    while step < args.steps and time.time() - t0 < args.time_limit:
        # a resumed run re-warms over 20 steps because its Adam moments start from zero
        lr = lr_at(step, args.steps, args.lr, args.warmup) * (min(1.0, (step - start + 1) / 20) if start else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.from_numpy(rng.integers(0, len(train) - args.seq - 1, args.batch))
        w = train_t[starts[:, None] + torch.arange(args.seq + 1)[None]].to(device, non_blocking=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            logits, aux = model(w[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), w[:, 1:].flatten())
        aux = aux.float()
        opt.zero_grad(set_to_none=True)
        (loss + args.aux * aux).backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0 or step == start + 1:
            rate = tok_per_step * (step - start) / (time.time() - t_train)
            print(f"step {step} loss {loss.item():.4f} aux {aux.item():.3f} gnorm {gnorm.item():.2f} lr {lr:.2e} "
                  f"epoch {step * tok_per_step / len(train):.2f} {rate / 1e3:.0f}k tok/s t {time.time() - t0:.0f}s",
                  flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            v = evaluate(model, val, args.seq, args.batch, device)
            log.append({"step": step, "train_loss": loss.item(), "val_loss": v, "time_s": time.time() - t0})
            print(f"eval step {step} val_loss {v:.4f} ppl {math.exp(v):.2f}", flush=True)
            if v < best:
                best = v
                save_weights(model.state_dict(), args.out / "best")
    save_weights(model.state_dict(), args.out / "last")
    state = {"step": step, "best": best, "log": log, "rng": rng.bit_generator.state, "params": n_params,
             "tokens_per_step": tok_per_step, "train_tokens": len(train),
             "args": {k: str(v) for k, v in vars(args).items()},
             "torch": torch.__version__, "seconds_this_run": time.time() - t0,
             "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    (args.out / "last" / "state.json").write_text(json.dumps(state, indent=1))
    print(f"stopped at step {step}/{args.steps} after {time.time() - t0:.0f}s; best val {best:.4f}", flush=True)


if __name__ == "__main__":
    main()
