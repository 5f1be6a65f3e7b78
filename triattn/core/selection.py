"""Which cached tokens to keep, given policy scores. Written once; policies only score.

Rules, in order: dead slots are never kept; the first `sink_tokens` positions and the newest
`recent_window` live slots are always kept; the rest are ranked by score (ties go to the newer
token) and the top `keep` per lane survive. A lane is one layer, or one KV head of one layer
when the cache keeps a token set per KV head: arrays are [layers, L] or [layers, kv_heads, L].
Every lane keeps the same number of tokens, since one attention_mask serves all layers.

Example, one layer, keep=4, sink_tokens=1, recent_window=1 (S = sink, R = recent):

    positions  0    1    2    3    4    5
    scores     0.1  0.9  0.2  0.8  0.3  0.0
    forced     S                        R
    kept       x    x         x         x      -> positions 0, 1, 3, 5
"""
from __future__ import annotations

import numpy as np


def protected(positions: np.ndarray, alive: np.ndarray, sink_tokens: int, recent_window: int) -> np.ndarray:
    """Live slots that must be kept: sinks by absolute position, recent by live-slot rank from the end."""
    sinks = positions < sink_tokens
    if alive.all():  # a compacted cache: the newest live slots are the last ones
        recent = np.arange(alive.shape[-1]) >= alive.shape[-1] - recent_window
    else:
        rank_from_end = np.cumsum(alive[..., ::-1], axis=-1)[..., ::-1]  # 1 for the newest live slot
        recent = rank_from_end <= recent_window
    return alive & (sinks | recent)


def shared_scores(scores: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """One score per token for all layers: the mean over layers of per-layer standardised scores."""
    s = np.where(alive, scores, np.nan).astype(np.float64)
    mu = np.nanmean(s, axis=1, keepdims=True)
    sd = np.nanstd(s, axis=1, keepdims=True)
    z = np.nan_to_num((s - mu) / np.where(sd > 0, sd, 1.0))
    return np.broadcast_to(z.mean(axis=0, keepdims=True), scores.shape)


def top_k(s: np.ndarray, k: int) -> np.ndarray:
    """Boolean [rows, n]: the k highest of each row; ties at the cut go to the later slots.

    A partition finds each row's k-th highest value in linear time (a full sort of 192 lanes x 8k
    slots took ~90 ms); slots are in position order, so "later" is "newer".
    """
    n = s.shape[-1]
    if k >= n:
        return np.ones(s.shape, bool)
    if k <= 0:
        return np.zeros(s.shape, bool)
    cut = np.partition(s, n - k, axis=-1)[:, n - k:n - k + 1]
    above, at = s > cut, s == cut
    need = k - above.sum(axis=-1, keepdims=True)
    if (at.sum(axis=-1, keepdims=True) == need).all():  # no row has more ties at its cut than it keeps
        return above | at
    at_from_end = np.cumsum(at[:, ::-1], axis=-1)[:, ::-1]
    return above | (at & (at_from_end <= need))


def select_keep(scores: np.ndarray, positions: np.ndarray, alive: np.ndarray, keep: int,
                sink_tokens: int = 0, recent_window: int = 0, shared: bool = False,
                recency_layers: np.ndarray | None = None) -> np.ndarray:
    """Boolean, shaped like `scores`: the slots to keep, `min(keep, live)` per lane.

    scores, positions, alive: [layers, L] or [layers, kv_heads, L]. `shared` picks the same tokens
    in every layer (needed by masking; [layers, L] only). `recency_layers` [layers] marks layers
    that keep their newest tokens whatever the scores say (sliding-window layers under compaction
    stay exact only that way).
    """
    # ranked in the scores' own float type (float32 scores are not widened: positions, used as scores
    # below, stay exact in float32 up to 2**24)
    if shared:
        s = shared_scores(scores, alive)
    else:
        s = scores if scores.dtype in (np.float32, np.float64) else scores.astype(np.float64)
    if recency_layers is not None and recency_layers.any():
        rows = recency_layers.reshape((-1,) + (1,) * (s.ndim - 1))
        s = np.where(rows, positions.astype(s.dtype), s)
    s = np.where(alive, s, -np.inf)
    s = np.where(protected(positions, alive, sink_tokens, recent_window), np.inf, s)
    flat, live = s.reshape(-1, s.shape[-1]), alive.reshape(-1, s.shape[-1]).sum(axis=1)
    kept = np.zeros(flat.shape, bool)
    for n_live in np.unique(live):  # every lane holds the same number: one pass
        rows = live == n_live
        kept[rows] = top_k(flat[rows], min(keep, int(n_live)))
    return kept.reshape(s.shape) & alive
