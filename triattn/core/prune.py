"""One prune decision, written once for the decode loop and the prune-event benchmark: the policy
scores the cached tokens, the selection (selection.py) picks the slots to keep.

What the policy is told besides keys and positions: which slots compete (live ones, less a prompt
that `keep_prompt` pins, so z-scores are taken over the tokens that can actually go) and which
layers follow scores at all (under compaction, sliding-window layers keep their newest tokens).
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
    scores = policy.score(store.keys, positions, ctx)
    return select_keep(scores, positions, alive, eviction.budget - 1, max(eviction.sink_tokens, pinned),
                       eviction.recent_window, shared, recency)
