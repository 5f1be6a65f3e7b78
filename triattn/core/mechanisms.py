"""How an eviction decision reaches the model: compaction, masking, or the model card's zeroing.

The how is the session's (`compact`, `zero`): a stateful or a paged cache.

- hard: new, shorter KV states holding only the kept slots; attention_mask is all ones. Per-layer
  choices are allowed; sliding-window layers keep their newest tokens so their window stays exact.
  On the stateful form the states are written from the run's host mirror of K and V (the
  cache is never read); on the paged form the kept tokens move inside the pool (pool.py).
- mask: the cache is untouched; evicted slots get a 0 in attention_mask. Exact, saves nothing, and
  one mask serves all layers, so every layer evicts the same tokens.
- zero: the model card's "soft prune": K and V of evicted slots are set to 0 and the mask stays all
  ones. Not an eviction: a zero key scores 0, not -inf, and still takes exp(0) of the softmax mass.
"""
from __future__ import annotations

import numpy as np

from .config import MECHANISMS


class Hard:
    shared, recency_for_sliding, writes_cache = False, True, True
    needs_attention_mask = False

    def apply(self, session, store, keep):
        session.compact(store, keep)

    def attention_mask(self, store, ones, new: int):
        return ones[:store.n + new]


class Mask:
    shared, recency_for_sliding, writes_cache = True, False, False
    needs_attention_mask = True  # the paged form has no attention_mask input: runs stateful

    def apply(self, session, store, keep):
        store.mark(keep)

    def attention_mask(self, store, ones, new: int):
        return np.concatenate([store.alive[0].astype(np.int64), ones[:new]])


class Zero:
    shared, recency_for_sliding, writes_cache = False, False, True
    needs_attention_mask = False

    def apply(self, session, store, keep):
        session.zero(store, keep)

    def attention_mask(self, store, ones, new: int):
        return ones[:store.n + new]


_MECHANISMS = {"hard": Hard(), "mask": Mask(), "zero": Zero()}
assert set(_MECHANISMS) == set(MECHANISMS)


def get_mechanism(name: str):
    return _MECHANISMS[name]
