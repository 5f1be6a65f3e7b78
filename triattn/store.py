"""Host-side bookkeeping for the cached tokens of one run: positions, liveness, and (when needed)
a mirror of the keys and values per layer.

Slot i of layer l mirrors slot i of that layer's KV state. Keys and values come from the extra
graph outputs, one step at a time, never from reading the state; a mechanism that rewrites the
cache writes it from this mirror. Buffers grow by doubling, so appending a step allocates nothing
in the steady state.
"""
from __future__ import annotations

import numpy as np


class TokenStore:
    def __init__(self, n_layers: int, kv_heads: int, head_dim: int, keep_keys: bool, keep_values: bool = False,
                 capacity: int = 256):
        self.n = 0
        self.live = 0  # live slots per layer (every layer holds the same number)
        self._pos = np.zeros((n_layers, capacity), np.int64)
        self._alive = np.zeros((n_layers, capacity), bool)
        shape = (n_layers, kv_heads, capacity, head_dim)
        self._keys = np.zeros(shape, np.float32) if keep_keys or keep_values else None
        self._values = np.zeros(shape, np.float32) if keep_values else None

    def _grow(self, need: int):
        cap = self._pos.shape[1]
        if need <= cap:
            return
        new = max(need, 2 * cap)
        self._pos = np.concatenate([self._pos, np.zeros((self._pos.shape[0], new - cap), np.int64)], 1)
        self._alive = np.concatenate([self._alive, np.zeros((self._alive.shape[0], new - cap), bool)], 1)
        if self._keys is not None:
            pad = np.zeros(self._keys.shape[:2] + (new - cap, self._keys.shape[3]), np.float32)
            self._keys = np.concatenate([self._keys, pad], 2)
            if self._values is not None:
                self._values = np.concatenate([self._values, pad], 2)

    def append(self, positions: np.ndarray, keys: np.ndarray | None, values: np.ndarray | None = None):
        """positions [T]; keys and values [layers, kv_heads, T, head_dim] (keys post-RoPE)."""
        t = len(positions)
        self._grow(self.n + t)
        self._pos[:, self.n:self.n + t] = positions
        self._alive[:, self.n:self.n + t] = True
        if self._keys is not None:
            self._keys[:, :, self.n:self.n + t] = keys
        if self._values is not None:
            self._values[:, :, self.n:self.n + t] = values
        self.n += t
        self.live += t

    @property
    def positions(self) -> np.ndarray:
        return self._pos[:, :self.n]

    @property
    def alive(self) -> np.ndarray:
        return self._alive[:, :self.n]

    @property
    def keys(self) -> np.ndarray | None:
        return None if self._keys is None else self._keys[:, :, :self.n]

    @property
    def values(self) -> np.ndarray | None:
        return None if self._values is None else self._values[:, :, :self.n]


    def compact(self, keep: np.ndarray):
        """Drop slots: `keep` [layers, n] with the same count per layer, order preserved.

        Returns the kept keys and values as new contiguous arrays [layers, kv_heads, kept, head_dim]
        (None where not mirrored), which nothing else holds: the cache can be written from them
        without another copy. Gathered one layer at a time: a single fancy index over all layers
        builds a full index array and is several times slower.
        """
        counts = keep.sum(axis=1)
        assert (counts == counts[0]).all(), "every layer must keep the same number of tokens"
        k = int(counts[0])
        idx = np.nonzero(keep)[1].reshape(keep.shape[0], k)
        self._pos[:, :k] = np.take_along_axis(self.positions, idx, 1)
        self._alive[:, :k] = True
        self._alive[:, k:] = False
        kept = []
        for buf in (self._keys, self._values):
            if buf is None:
                kept.append(None)
                continue
            out = np.empty(buf.shape[:2] + (k, buf.shape[3]), buf.dtype)
            for layer in range(buf.shape[0]):
                np.take(buf[layer], idx[layer], axis=1, out=out[layer])
            buf[:, :, :k] = out
            kept.append(out)
        self.n = self.live = k
        if self._pos.shape[1] > 4 * max(k, 64):  # after a long prompt: give the memory back
            self._shrink(2 * max(k, 64))
        return kept[0], kept[1]

    def _shrink(self, cap: int):
        self._pos, self._alive = self._pos[:, :cap].copy(), self._alive[:, :cap].copy()
        if self._keys is not None:
            self._keys = self._keys[:, :, :cap].copy()
        if self._values is not None:
            self._values = self._values[:, :, :cap].copy()

    def mark(self, keep: np.ndarray):
        """Evict without moving slots (mask and zero mechanisms)."""
        self._alive[:, :self.n] &= keep
        self.live = int(self.alive.sum(axis=1).max())

    def zero(self, slots: np.ndarray):
        """Set the mirrored K and V of `slots` [layers, n] to zero (the model card's soft prune)."""
        where = np.broadcast_to(slots[:, None, :], self.keys.shape[:3])
        self.keys[where] = 0.0
        self.values[where] = 0.0
