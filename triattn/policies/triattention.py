"""TriAttention: score cached keys by the attention that calibrated queries will pay them in future.

Mao et al. 2026, "TriAttention" (arXiv 2604.04921; reference code github.com/WeianMao/triattention).
Pre-RoPE queries of a head concentrate around a fixed centre, so the attention logit a future query
gives a cached key is, per RoPE frequency band, a trigonometric function of their distance.

Each key k (post-RoPE, from the cache) is un-rotated to its pre-RoPE vector and split into
head_dim/2 complex bands k_f = k[f] + i k[f + head_dim/2] with RoPE frequencies w_f. With the
calibrated query statistics E[q_f] and E|q_f| of a query head and the distance
D = query_position - key_position, the head's score of the key is

    S(k) = mean over d in {1, 2, 4, ..., offset_max} of
               sum_f |E[q_f]| |k_f| cos(w_f (D + d) + phi_f),   phi_f = arg E[q_f] - arg k_f
           + sum_f (E|q_f| - |E[q_f]|) |k_f|

(trigonometric term averaged over geometric future offsets, plus the norm term). As in the reference
code: offsets 1, 2, 4, ... up to 65536 averaged with equal weight ("mean" aggregation); keys and
queries are un-rotated with the attention scaling divided out (YaRN); scores are z-scored per query
head over the cached tokens (population std, floored at 1e-6), then the max over the query heads
that share a KV head is taken. The reference multiplies both terms by the squared attention
scaling, a constant that z-scoring cancels. Our selection keeps one token set per layer, so the
per-KV-head scores are averaged over the layer's KV heads (the reference likewise averages the
axis it cannot select on: layers, in its per-KV-head mode).

The offset mean is taken in closed form: mean_d cos(a + w d) = Re(e^{ia} M), M = mean_d e^{iwd}.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rope import layer_ropes
from .base import Policy, register

PAPER_OFFSET_MAX = 65536


def offsets(offset_max: int) -> np.ndarray:
    """Geometric future offsets 1, 2, 4, ... <= offset_max."""
    return 2.0 ** np.arange(int(np.log2(offset_max)) + 1)


@dataclass(frozen=True)
class TriAttentionSettings:
    offset_max: int = PAPER_OFFSET_MAX

    def __post_init__(self):
        if isinstance(self.offset_max, bool) or not isinstance(self.offset_max, int) or self.offset_max < 1:
            raise ValueError(f"offset_max must be a whole number >= 1, got {self.offset_max!r}")


def head_scores(keys, positions, query_position, calibration, ropes, offset_max=PAPER_OFFSET_MAX) -> np.ndarray:
    """Raw per-query-head scores S [layers, q_heads, L] (formula in the module docstring).

    keys [layers, kv_heads, L, head_dim] post-RoPE; positions [layers, L]; ropes: one per layer.
    """
    layers, kv_heads, length, dim = keys.shape
    q_mean, q_abs = calibration.q_mean, calibration.q_abs_mean
    if q_mean.shape[0] != layers or q_mean.shape[2] != dim // 2 or q_mean.shape[1] % kv_heads:
        raise ValueError(f"calibration for {q_mean.shape[0]} layers x {q_mean.shape[1]} query heads x "
                         f"{q_mean.shape[2]} bands does not fit keys of shape {keys.shape}")
    group = q_mean.shape[1] // kv_heads  # query head h reads KV head h // group
    d = offsets(offset_max)
    out = np.empty((layers, q_mean.shape[1], length))
    for i in range(layers):
        w = ropes[i].inv_freq.astype(np.float64)                             # [F]
        pre = ropes[i].unrotate(keys[i], positions[i][None, :])              # [kv, L, D]
        k = pre[..., :dim // 2] + 1j * pre[..., dim // 2:]                   # [kv, L, F]
        distance = (query_position - positions[i]).astype(np.float64)        # [L]
        z = np.conj(k) * np.exp(1j * distance[:, None] * w)                 # conj(k_f) e^{i w_f D}
        m = np.exp(1j * np.outer(d, w)).mean(axis=0)                         # M_f
        c = (q_mean[i] * m).reshape(kv_heads, group, -1)                     # E[q_f] M_f
        trig = np.real(c @ z.transpose(0, 2, 1))                             # [kv, group, L]
        extra = (q_abs[i] - np.abs(q_mean[i])).reshape(kv_heads, group, -1)
        norm = extra @ np.abs(k).transpose(0, 2, 1)
        out[i] = (trig + norm).reshape(-1, length)
    return out


def combine(scores: np.ndarray, kv_heads: int) -> np.ndarray:
    """[layers, q_heads, L] -> [layers, L]: z-score per head, max over each KV group, mean over KV heads."""
    mu = scores.mean(axis=-1, keepdims=True)
    sd = np.maximum(scores.std(axis=-1, keepdims=True), 1e-6)
    z = (scores - mu) / sd
    layers, heads, length = z.shape
    return z.reshape(layers, kv_heads, heads // kv_heads, length).max(axis=2).mean(axis=1)


@register
class TriAttention(Policy):
    name = "triattention"
    description = ("TriAttention (Mao et al. 2026): future attention predicted from calibrated query "
                   "centres and RoPE distance")

    def __init__(self, settings: TriAttentionSettings = TriAttentionSettings()):
        self.settings = settings

    def prepare(self, model_dir):
        from ..calibration import load_or_make
        return load_or_make(model_dir)

    def score(self, keys, positions, ctx):
        if ctx.calibration is None:
            raise ValueError("the triattention policy needs calibration (policy.prepare(model_dir))")
        ropes = layer_ropes(ctx.model_config, keys.shape[0])
        raw = head_scores(keys, positions, ctx.query_position, ctx.calibration, ropes, self.settings.offset_max)
        return combine(raw, keys.shape[1])
