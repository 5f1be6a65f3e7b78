"""TriAttention: score cached keys by the attention that calibrated queries will pay them in future.

Mao et al. 2026, "TriAttention" (arXiv 2604.04921; reference code github.com/WeianMao/triattention).
Pre-RoPE queries of a head concentrate around a fixed centre, so the attention logit a future query
gives a cached key is, per RoPE frequency band, a trigonometric function of their distance.

Split a key into head_dim/2 complex bands k_f = k[f] + i k[f + head_dim/2] with RoPE frequencies
w_f. With the calibrated query statistics E[q_f] and E|q_f| of a query head and the distance
D = t - p from the key's position p to the query position t, the paper scores the pre-RoPE key as

    S(k) = mean over d in {1, 2, 4, ..., offset_max} of
               sum_f |E[q_f]| |k_f| cos(w_f (D + d) + phi_f),   phi_f = arg E[q_f] - arg k_f
           + sum_f (E|q_f| - |E[q_f]|) |k_f|

(trigonometric term averaged over geometric future offsets, plus the norm term). We score the
post-RoPE key the cache holds, k_rot_f = s k_f e^{i w_f p} (s: the YaRN attention scaling), without
un-rotating it: the trigonometric term is Re(sum_f conj(k_rot_f) c_f) with the per-head vector
c_f = E[q_f] M_f e^{i w_f t} / s and M_f = mean_d e^{i w_f d}, a dot product of the key with
[Re c; Im c]; and |k_f| = |k_rot_f| / s. (Like the reference's vLLM kernel, which scores post-RoPE
keys.) The rest follows the reference code: offsets 1, 2, ... 65536 with equal weight; scores
z-scored per query head over the competing tokens (population std, floored at 1e-6; tokens already
evicted or pinned by a kept prompt do not count); the max over the query heads sharing a KV head.

Then the selection axis:
- per layer (`triattention`, the default): the mean over the layer's KV heads; one token set per
  layer, so it works with every mechanism.
- per KV head (`triattention-head`, the reference's per-head pruning, which its paper's numbers
  use): the mean over layers of that max, so each KV head keeps its own token set, the same in
  every layer (compaction only). Layers whose choice does not follow scores (gpt-oss's
  sliding-window layers, which keep their newest tokens) are neither scored nor counted.
  On the two models measured here it did not do better than per layer (docs/policies.md), so it is not
  the default.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

import numpy as np

from ..core.rope import band_norms, layer_ropes
from .base import Policy, register_variant

PAPER_OFFSET_MAX = 65536
BLOCK = 512  # tokens scored at a time
_TABLES: dict = {}
_BLAS: list = []  # the threadpoolctl controller, once made


def offsets(offset_max: int) -> np.ndarray:
    """Geometric future offsets 1, 2, 4, ... <= offset_max."""
    return 2.0 ** np.arange(int(np.log2(offset_max)) + 1)


@dataclass(frozen=True)
class RopeTables:
    """Per layer: band frequencies w_f, M_f = mean_d e^{i w_f d}, and 1 / attention scaling."""
    inv_freq: np.ndarray   # [layers, F] float64
    m: np.ndarray          # [layers, F] complex128
    inv_scale: np.ndarray  # [layers]

    @classmethod
    def of(cls, ropes, offset_max: int) -> "RopeTables":
        w = np.stack([r.inv_freq.astype(np.float64) for r in ropes])
        m = np.exp(1j * offsets(offset_max)[:, None, None] * w).mean(axis=0)
        return cls(w, m, np.array([1.0 / r.attention_scaling for r in ropes]))


def rope_tables(cfg: dict, n_layers: int, offset_max: int) -> RopeTables:
    """Built once per model config, layer count and offset range: not on every prune event."""
    key = (json.dumps(cfg, sort_keys=True, default=str), n_layers, offset_max)
    if key not in _TABLES:
        _TABLES[key] = RopeTables.of(layer_ropes(cfg, n_layers), offset_max)
    return _TABLES[key]


def one_blas_thread():
    """The GEMMs here are small ([L x head_dim] by [head_dim x group] per KV head): on a busy 2-core
    machine OpenBLAS's own threads made them 50-200x slower than one thread (58 ms against 0.27 ms
    per layer at 2,176 tokens). Limited while scoring when threadpoolctl is there, through one
    controller made at the first event (finding the loaded libraries anew took ~1 ms per event)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - listed in requirements.txt
        return contextlib.nullcontext()
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def _weights(calibration, tables: RopeTables, query_position, kv_heads: int, dim: int) -> np.ndarray:
    """Per layer and KV head, the GEMM operand [layers, kv, head_dim + F, group] (one column per
    query head) that a key row followed by its band norms is multiplied by: the trigonometric
    weights [Re c; Im c], then the norm weights (E|q_f| - |E[q_f]|) / s."""
    q_mean, q_abs = calibration.q_mean, calibration.q_abs_mean
    n_layers, heads, half = q_mean.shape
    group = heads // kv_heads  # query head h reads KV head h // group
    # c_f = E[q_f] M_f e^{i w_f t} / s in float64 (t w_f reaches 1e5 rad), then float32 weights
    turn = tables.m * np.exp(1j * tables.inv_freq * float(query_position)) * tables.inv_scale[:, None]
    c = q_mean * turn[:, None, :]
    norm = (q_abs - np.abs(q_mean)) * tables.inv_scale[:, None, None]
    w = np.concatenate([c.real, c.imag, norm], axis=-1).reshape(n_layers, kv_heads, group, dim + half)
    return np.ascontiguousarray(w.transpose(0, 1, 3, 2), np.float32)


def _layer_raw(keys, w, out, rows=None):
    """One layer's raw scores into `out` [kv, group, L] from its keys [kv, L, head_dim], a block of
    tokens at a time (the temporaries stay in cache): each key followed by its band norms, times
    `w` [kv, head_dim + F, group]. `rows` [kv, L, head_dim + F]: those rows as the store keeps them
    (else they are made here, a block at a time).

    Why this shape: rows [B, head_dim + F] times weights [head_dim + F, group] is several times
    faster than the transposed product (a GEMM with 8 rows), and one GEMM of whole rows twice as
    fast as one per strided half."""
    kv, length, dim = keys.shape
    block = min(length, BLOCK)
    s = np.empty((kv, block, w.shape[-1]), np.float32)
    made = np.empty((kv, block, w.shape[1]), np.float32) if rows is None else None
    for a in range(0, length, block):
        b = min(block, length - a)
        if rows is None:
            x = made[:, :b]
            x[..., :dim] = keys[:, a:a + b]
            x[..., dim:] = band_norms(keys[:, a:a + b])
        else:
            x = rows[:, a:a + b]
        np.matmul(x, w, out=s[:, :b])
        out[:, :, a:a + b] = s[:, :b].transpose(0, 2, 1)


def head_scores(keys, query_position, calibration, tables: RopeTables, layers=None, key_rows=None) -> np.ndarray:
    """Raw per-query-head scores S, float32 [len(layers), q_heads, L], for the layers listed (all if
    None). keys [layers, kv_heads, L, head_dim] post-RoPE, as cached; key_rows (optional) the keys
    each followed by its |k_f| [layers, kv_heads, L, head_dim + head_dim/2]."""
    n_layers, kv_heads, length, dim = keys.shape
    _check(calibration, keys.shape)
    layers = np.arange(n_layers) if layers is None else np.asarray(layers)
    w = _weights(calibration, tables, query_position, kv_heads, dim)
    out = np.empty((len(layers), kv_heads, w.shape[-1], length), np.float32)
    for j, i in enumerate(layers):
        _layer_raw(keys[i], w[i], out[j], None if key_rows is None else key_rows[i])
    return out.reshape(len(layers), -1, length)


def _check(calibration, shape):
    n_layers, kv_heads, _, dim = shape
    q = calibration.q_mean.shape
    if q[0] != n_layers or q[2] != dim // 2 or q[1] % kv_heads:
        raise ValueError(f"calibration for {q[0]} layers x {q[1]} query heads x {q[2]} bands does not fit "
                         f"keys of shape {tuple(shape)}")


def group_max_z(raw: np.ndarray, scored: np.ndarray | None) -> np.ndarray:
    """raw [kv, group, L] of one layer, z-scored in place per query head over the `scored` slots
    ([L] or [kv, L] bool, or None: all), then the max over each KV head's group: [kv, L].

    The sums are matrix-vector products with the 0/1 mask (dead or pinned slots would drag the
    statistics: they count for nothing); the mean is taken twice, the second time of the centred
    scores, so that float32 sums over thousands of tokens lose nothing to a large common offset."""
    kv, group, length = raw.shape
    weights = np.ones((1, length, 1), np.float32) if scored is None else \
        scored.reshape(-1, length, 1).astype(np.float32)
    n = np.maximum(weights.sum(axis=1, keepdims=True), 1)                      # [kv or 1, 1, 1]
    for _ in range(2):
        raw -= (raw @ weights) / n
    sd = np.sqrt((np.square(raw) @ weights) / n)
    raw *= 1 / np.maximum(sd, 1e-6)
    return raw.max(axis=1)


@dataclass(frozen=True)
class TriAttention(Policy):
    name: str = "triattention"
    description: str = ("TriAttention (Mao et al. 2026): future attention predicted from calibrated query "
                        "centres and RoPE distance; one token set per layer")
    per_kv_head: bool = False
    per_layer_variant: str | None = None  # per KV head: the policy that selects per layer instead
    offset_max: int = PAPER_OFFSET_MAX
    options = ("offset_max",)  # a run's --policy-option offset_max=N
    order_free = True  # per-token scores, z-scored over the set
    reads_band_norms = True

    def __post_init__(self):
        if isinstance(self.offset_max, bool) or not isinstance(self.offset_max, int) or self.offset_max < 1:
            raise ValueError(f"offset_max must be a whole number >= 1, got {self.offset_max!r}")

    def prepare(self, model_dir):
        from ..core.calibration import load_or_make
        return load_or_make(model_dir)

    def score(self, keys, positions, ctx):
        if ctx.calibration is None:
            raise ValueError("the triattention policy needs calibration (policy.prepare(model_dir))")
        n_layers, kv_heads, length, dim = keys.shape
        _check(ctx.calibration, keys.shape)
        layers = np.arange(n_layers) if ctx.layers is None else np.flatnonzero(ctx.layers)
        tables = rope_tables(ctx.model_config, n_layers, self.offset_max)
        w = _weights(ctx.calibration, tables, ctx.query_position, kv_heads, dim)
        raw = np.empty((kv_heads, w.shape[-1], length), np.float32)  # one layer's, reused
        z = np.empty((len(layers), kv_heads, length), np.float32)
        with one_blas_thread():
            for j, i in enumerate(layers):  # a layer at a time: its raw scores stay in cache
                rows = None if ctx.key_rows is None else ctx.key_rows[i]
                _layer_raw(keys[i], w[i], raw, rows)
                z[j] = group_max_z(raw, None if ctx.scored is None else ctx.scored[i])
        if self.per_kv_head:
            return self._per_kv_head(z, positions, layers, n_layers)
        out = np.zeros((n_layers, length), np.float32)
        out[layers] = z.mean(axis=1)
        return out

    @staticmethod
    def _per_kv_head(z, positions, layers, n_layers):
        """[scored layers, kv, L] -> [layers, kv, L]: each KV head's mean over the scored layers."""
        if positions.ndim != 3:
            raise ValueError("per-KV-head scoring needs positions [layers, kv_heads, L]")
        if not len(layers):  # no layer follows scores: nothing to choose
            return np.zeros(positions.shape, np.float32)
        if not (positions[layers] == positions[layers[0]]).all():
            raise ValueError("per-KV-head scoring needs the scored layers to hold the same tokens per KV head")
        return np.broadcast_to(z.mean(axis=0), (n_layers,) + z.shape[1:])


register_variant(TriAttention())
register_variant(TriAttention(
    name="triattention-head", per_kv_head=True, per_layer_variant="triattention",
    description="TriAttention as the reference prunes: each KV head keeps its own tokens, the same in every "
                "layer (hard eviction only)"))
