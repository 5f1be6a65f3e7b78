"""The cost of one prune event at gpt-oss-20b shapes, without the model.

A prune event is what the decode loop does between two steps when the cache is full: the policy
scores every cached token, the selection picks the slots to keep (prune.py, as the engine calls
it), and the cache is compacted as the run's cache form does it (`CUTS`, chosen in one place):

- paged (the default form, issue 27): the block pool we own is compacted in place
  (`BlockPool.compact`, as `PagedSession.compact` does: O(evicted) rows move per layer, per KV
  head for a per-head policy, sliding-window layers keep their newest 128 in order) and the
  store's keys follow (store.py, as a paged run keeps them: only the layers that follow scores,
  each key with its band norms, moved O(evicted) too). That is the whole event on the paged form:
  nothing is written back.
- stateful: the host mirror of keys and values is compacted (store.py). Writing the compacted
  arrays into the OpenVINO states is not included: it depends on the device, not on the policy.

The pool is f32 (the bundled model's precision) and filled before each event, untimed, as a
pruned run holds it: budget + interval tokens reserved, every slot in position order (a first
event; later events start from a permuted slot map, moving as many rows).

Shapes are gpt-oss-20b's (24 layers, half of them 128-token sliding windows; 64 query heads,
8 KV heads, head_dim 64; RoPE base 150000 with YaRN factor 32 over 4096 positions, beta_fast 32,
beta_slow 1); keys are synthetic, the query statistics random. The event is timed at a cache of
budget + 128 tokens, cut back to the budget, as TriAttention's schedule does (Mao et al. 2026,
arXiv 2604.04921: budget 2048 for GPT-OSS-20B).
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import spread

GPT_OSS_20B = {
    "model_type": "gpt_oss", "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8,
    "head_dim": 64, "hidden_size": 2880, "max_position_embeddings": 131072, "sliding_window": 128,
    "layer_types": ["sliding_attention", "full_attention"] * 12, "rope_theta": 150000.0,
    "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                     "original_max_position_embeddings": 4096, "truncate": False},
}
INTERVAL = 128
SIZES = (2176, 8320)  # cached tokens at the event: budgets 2,048 and 8,192 plus the interval
# form -> cached tokens -> target for the whole event (seconds). Paged: issue 27's, compaction
# included. Stateful: ~3% of decode time at the model card's 47.8 ms per token and a 128-token
# interval at 2k, and linear growth beyond.
TARGETS = {"paged": {2176: 0.040, 8320: 0.160}, "stateful": {2176: 0.120, 8320: 0.500}}


class _PoolCut:
    """The paged form's compaction without the model: a block pool holding the cache (K = V = the
    synthetic keys), cut as PagedSession.compact cuts it."""
    what = "the paged pool's compaction (BlockPool.compact) and the store's keys"
    mirror = False  # the paged form keeps no host copy of values

    def __init__(self, keys: np.ndarray, cfg: dict):
        from ..openvino.pool import BLOCK, BlockPool, blocks_for
        layers, kv, length, dim = keys.shape
        windows = [cfg["sliding_window"] if t == "sliding_attention" else 0 for t in cfg["layer_types"]]
        self.pool = pool = BlockPool(layers, kv, dim, np.float32, windows)
        pool.clear()
        pool.reserve(length)  # a pruned run reserves budget + interval: the cut gives nothing back
        pool.ensure(length)
        padded = np.zeros((kv, blocks_for(length) * BLOCK, dim), np.float32)
        for layer in range(layers):
            padded[:, :length] = keys[layer]
            blocks = padded.reshape(kv, -1, BLOCK, dim).transpose(1, 0, 2, 3)
            pool.keys[layer][pool.tables[layer]] = blocks
            pool.values[layer][pool.tables[layer]] = blocks
        pool.appended(length)

    def compact(self, store, keep):
        self.pool.compact(keep)
        store.compact(keep, copies=False)
        assert self.pool.n == store.n


class _MirrorCut:
    """The stateful form's compaction: the host mirror of keys and values (store.py)."""
    what = "the host K/V mirror's compaction (writing it into the OpenVINO states not included)"
    mirror = True

    def __init__(self, keys: np.ndarray, cfg: dict):
        pass

    def compact(self, store, keep):
        store.compact(keep)


CUTS = {"paged": _PoolCut, "stateful": _MirrorCut}


def pool_bytes(cfg: dict, tokens: int) -> int:
    """Bytes of the f32 pool holding `tokens` (K and V, whole blocks) at `cfg`'s widths."""
    from ..openvino.pool import BLOCK, blocks_for
    per_block = 2 * cfg["num_key_value_heads"] * BLOCK * cfg["head_dim"] * 4
    return cfg["num_hidden_layers"] * blocks_for(tokens) * per_block


def _synthetic(cfg: dict, length: int, seed: int = 0):
    """Keys [layers, kv, L, D] float32 with a per-head offset (real keys are not centred), and
    random query statistics."""
    from ..core.calibration import Calibration
    rng = np.random.default_rng(seed)
    layers, kv, heads, dim = (cfg[k] for k in ("num_hidden_layers", "num_key_value_heads",
                                               "num_attention_heads", "head_dim"))
    keys = rng.standard_normal((layers, kv, length, dim), np.float32)
    keys += rng.standard_normal((layers, kv, 1, dim), np.float32)
    q_mean = rng.standard_normal((layers, heads, dim // 2)) + 1j * rng.standard_normal((layers, heads, dim // 2))
    return keys, Calibration(q_mean, np.abs(q_mean) + rng.uniform(0.1, 1.0, q_mean.shape))


def _setup(policy_name: str, length: int, cfg: dict):
    from ..core.config import EvictionConfig
    eviction = EvictionConfig(policy=policy_name, evict="hard", budget=length - INTERVAL, prune_interval=INTERVAL,
                              recent_window=INTERVAL, sink_tokens=0)
    keys, cal = _synthetic(cfg, length)
    return eviction, keys, cal


def _attention(layers: int, length: int):
    """An attention log holding one report per layer over `length` tokens, as the paged form gives."""
    from ..core.attention import AttentionLog
    log = AttentionLog(layers)
    log.add(np.random.default_rng(1).dirichlet(np.ones(length), size=layers).astype(np.float32), 32)
    return log


def _one_event(policy, eviction, keys, cal, cfg: dict, form: str = "paged") -> tuple[float, float]:
    """Seconds of score + select and of compaction, on a fresh cache of the form `form` holding
    `keys` (as K and V)."""
    from ..policies import ScoreContext
    from ..core.prune import choose_keep
    from ..core.store import TokenStore
    layers, kv, length, dim = keys.shape
    recency = np.array([t == "sliding_attention" for t in cfg["layer_types"]])
    cut = CUTS[form](keys, cfg)
    store = TokenStore(layers, kv, dim, policy.needs_keys & ~recency, cut.mirror, capacity=length,  # as the engine
                       per_head=policy.per_kv_head, band_norms=policy.reads_band_norms and not cut.mirror)
    store.append(np.arange(length), keys, keys if cut.mirror else None)
    ctx = ScoreContext(length, 0, cfg, cal, attention=_attention(layers, length) if policy.reads_attention else None)
    t0 = time.perf_counter()
    keep = choose_keep(store, policy, eviction, ctx, False, recency)
    t1 = time.perf_counter()
    cut.compact(store, keep)
    if ctx.attention is not None:  # the run's attention log follows the store, as in engine._prune
        ctx.attention.compact(keep)
    t2 = time.perf_counter()
    assert store.n == eviction.budget - 1
    return t1 - t0, t2 - t1


def run(policy_name: str = "triattention", lengths=SIZES, repeats: int = 7, cfg: dict = GPT_OSS_20B,
        form: str = "paged") -> dict:
    """Median times per cache size, the cache of the form `form`. The sizes take turns, one event
    each, so that a shared machine's drift reaches them alike and their ratio (the growth) stays
    meaningful."""
    from ..policies import get_policy
    policy = get_policy(policy_name)
    setups = {n: _setup(policy_name, n, cfg) for n in lengths}
    times = {n: [] for n in lengths}
    for _ in range(repeats):
        for n in lengths:
            times[n].append(_one_event(policy, *setups[n], cfg, form))
    rows = []
    targets = TARGETS[form]
    for n in lengths:
        decide, compact = (np.array(t) for t in zip(*times[n]))
        event = spread.spread(decide + compact)
        rows.append({"tokens": n, "kept": setups[n][0].budget - 1, "decide_s": float(np.median(decide)),
                     "compact_s": float(np.median(compact)), "event_s": event["value"], "event_spread": event,
                     "target_s": targets.get(n), "verdict": spread.verdict(event, targets.get(n)),
                     "repeats": repeats, "decide_runs_s": decide.tolist(), "compact_runs_s": compact.tolist(),
                     **({"pool_bytes": pool_bytes(cfg, n)} if not CUTS[form].mirror else {})})
    return {"policy": policy_name, "form": form, "compaction": CUTS[form].what, "rows": rows,
            "load_average": os.getloadavg()[0]}


def growth(result: dict) -> dict | None:
    """Time of the largest size over the smallest, per round (both sizes ran in it), as a spread."""
    rows = sorted(result["rows"], key=lambda r: r["tokens"])
    if len(rows) < 2:
        return None
    a, b = ([d + c for d, c in zip(r["decide_runs_s"], r["compact_runs_s"])] for r in (rows[0], rows[-1]))
    return spread.spread(spread.paired_ratios(b, a))


def table(result: dict) -> str:
    lines = [f"| cached tokens | kept | score + select (ms) | {result.get('form', 'stateful')} compaction (ms) | "
             "prune event (ms) [interval] runs | target (ms) | verdict |", "|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in result["rows"]:
        target = r["target_s"]
        ms = {k: 1e3 * v for k, v in r["event_spread"].items() if k in ("value", "lo", "hi")}
        lines.append(f"| {r['tokens']} | {r['kept']} | {1e3 * r['decide_s']:.1f} | {1e3 * r['compact_s']:.1f} | "
                     f"{spread.fmt({**r['event_spread'], **ms}, '.1f')} | "
                     f"{'–' if target is None else f'<= {1e3 * target:.0f}'} | {r['verdict'] or '–'} |")
    g = growth(result)
    if g is not None:
        rows = sorted(result["rows"], key=lambda r: r["tokens"])
        size = rows[-1]["tokens"] / rows[0]["tokens"]
        lines.append(f"\ngrowth {rows[0]['tokens']} -> {rows[-1]['tokens']} tokens: x{spread.fmt(g, '.2f')} time for "
                     f"x{size:.2f} tokens (target: no faster than linear: {spread.verdict(g, size)})")
    return "\n".join(lines)
