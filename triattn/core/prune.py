"""One prune decision, written once for the decode loop and the prune-event benchmark: the policy
scores the cached tokens, the selection (selection.py) picks the slots to keep.

What the policy is told besides keys and positions: which slots compete (live ones, less a prompt
that `keep_prompt` pins, so z-scores are taken over the tokens that can actually go) and which
layers follow scores at all (under compaction, sliding-window layers keep their newest tokens).
A policy whose scores do not depend on the tokens' order reads the store's keys where they sit
(store.py) with the positions and the mask in the same order; its scores come back in slot order.
"""
from __future__ import annotations

import numpy as np

from .selection import select_keep


def choose_keep(store, policy, eviction, ctx, shared: bool, recency: np.ndarray | None) -> np.ndarray:
    """Boolean, shaped like `store.positions`: the slots to keep, `budget - 1` per lane."""
    positions, alive = store.positions, store.alive
    pinned = ctx.prompt_len if eviction.keep_prompt else 0
    ctx.scored = alive & (positions >= pinned) if pinned else alive
    ctx.layers = None if recency is None else ~recency
    scores = _score(store, policy, positions, ctx)
    return select_keep(scores, positions, alive, eviction.budget - 1, max(eviction.sink_tokens, pinned),
                       eviction.recent_window, shared, recency)


def _score(store, policy, positions, ctx) -> np.ndarray:
    keys, ctx.key_rows, rows = store.by_row() if policy.order_free else (store.keys, None, None)
    if rows is None:
        return policy.score(keys, positions, ctx)
    slot_of_row = np.empty_like(rows)
    np.put_along_axis(slot_of_row, rows, np.broadcast_to(np.arange(rows.shape[-1]), rows.shape), -1)
    scored = ctx.scored
    try:
        ctx.scored = None if scored is None else np.take_along_axis(scored, slot_of_row, -1)
        by_row = policy.score(keys, np.take_along_axis(positions, slot_of_row, -1), ctx)
    finally:
        ctx.scored = scored
    return np.take_along_axis(by_row, rows, -1)
