"""How well a policy's scores at a prune event predict the attention the next queries pay.

TriAttention's claim (Mao et al. 2026, arXiv 2604.04921) is that it predicts, from keys alone,
which cached tokens future queries will attend to. At a prune event the policy ranks the tokens that compete for the
budget (neither sinks nor the recent window) and keeps its top k; the attention the next N decode
queries actually paid those same tokens (summed, observed on a cache that kept them all) ranks them
too. Two numbers per event, averaged over the lanes (layers, or KV heads of a layer):

- `overlap`: the share of the policy's top k that the observed attention's top k also holds
  (1: the same set; k / n: what a random choice of k of the n tokens gets on average);
- `rank_corr`: Spearman's rank correlation of the two rankings over all n competing tokens
  (ties share their mean rank; 0 where either side is constant).

Example, one lane, k = 2 of four tokens:

    policy   [.9 .1 .5 .2]   top 2: {0, 2}
    observed [.4 .1 .3 .6]   top 2: {3, 0}    overlap 1/2, rank_corr 0.4

Pure NumPy; `observe.py` gathers the scores and the attention on the paged form.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .selection import top_k


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks (0-based) along the last axis, ties given their mean rank."""
    order = np.argsort(x, axis=-1, kind="stable")
    sorted_x = np.take_along_axis(x, order, -1)
    out = np.empty(x.shape, np.float64)
    for row in np.ndindex(x.shape[:-1]):
        s, o = sorted_x[row], order[row]
        r = np.empty(s.size, np.float64)
        start = 0
        for end in range(1, s.size + 1):  # runs of equal values share their mean rank
            if end == s.size or s[end] != s[start]:
                r[start:end] = (start + end - 1) / 2
                start = end
        out[row][o] = r
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation along the last axis (0 where either side is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean(axis=-1, keepdims=True)
    rb -= rb.mean(axis=-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1), 0.0)


def overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """The share of a's top k (per lane, last axis) that b's top k holds too."""
    flat_a, flat_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    both = (top_k(flat_a, k) & top_k(flat_b, k)).sum(-1) / k
    return both.reshape(a.shape[:-1])


@dataclass(frozen=True)
class EventAgreement:
    overlap: float    # mean over lanes
    rank_corr: float  # mean over lanes
    k: int            # tokens the policy keeps of the competing ones
    n: int            # competing tokens


def event_agreement(scores: np.ndarray, observed: np.ndarray, k: int) -> EventAgreement:
    """scores [lanes..., n]: the policy's, over the competing tokens; observed [..., n]: the attention
    they then received (per layer: broadcast over a layer's KV heads when the policy scores per head)."""
    observed = np.broadcast_to(observed, scores.shape)
    n = scores.shape[-1]
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and the {n} competing tokens minus one, got {k}")
    return EventAgreement(float(overlap(scores, observed, k).mean()), float(spearman(scores, observed).mean()), k, n)
