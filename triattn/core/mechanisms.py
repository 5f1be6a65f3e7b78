"""How an eviction decision reaches the model: compaction, masking, or the model card's zeroing.

- hard: new, shorter KV states holding only the kept slots; attention_mask is all ones. Per-layer
  choices are allowed; sliding-window layers keep their newest tokens so their window stays exact.
  The states are written from the run's host mirror of K and V: the cache is never read.
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

    def apply(self, session, store, keep):
        keys, values = store.compact(keep)
        session.write_kv(keys, values, owned=True)

    def attention_mask(self, store, ones, new: int):
        return ones[:store.n + new]


class Mask:
    shared, recency_for_sliding, writes_cache = True, False, False

    def apply(self, session, store, keep):
        store.mark(keep)

    def attention_mask(self, store, ones, new: int):
        return np.concatenate([store.alive[0].astype(np.int64), ones[:new]])


class Zero:
    shared, recency_for_sliding, writes_cache = False, False, True

    def apply(self, session, store, keep):
        store.zero(store.alive & ~keep)
        store.mark(keep)
        session.write_kv(store.keys, store.values)

    def attention_mask(self, store, ones, new: int):
        return ones[:store.n + new]


_MECHANISMS = {"hard": Hard(), "mask": Mask(), "zero": Zero()}
assert set(_MECHANISMS) == set(MECHANISMS)


def get_mechanism(name: str):
    return _MECHANISMS[name]
