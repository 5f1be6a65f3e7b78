"""Host-side bookkeeping for the cached tokens of one run: positions, liveness, and (when needed)
a mirror of the keys and values per layer.

Slot i of layer l mirrors slot i of that layer's KV state. Keys and values come from the extra
graph outputs, one step at a time, never from reading the state; a mechanism that rewrites the
cache writes it from this mirror. Buffers grow by doubling, so appending a step allocates nothing
in the steady state.

With `per_head=True` every KV head of a layer is a lane of its own: compaction may keep a different
set of tokens per KV head (each keeps the same count, so one all-ones attention mask still serves
every layer), and positions and liveness are [layers, kv_heads, L] instead of [layers, L].

Keys may be kept for some layers only (`keep_keys` a [layers] mask): a run without a mirror keeps
them for the policy alone, and layers whose choice does not follow scores (sliding-window layers
under compaction keep their newest tokens) need none. The other layers read as zeros and are
never written or moved: their pages are never touched, and a compaction moves half the bytes
on gpt-oss.

Without a mirror, the keys serve a policy alone, and a policy whose scores do not depend on the
order of the tokens (`order_free`) may read them in any row order: then a compaction in place
moves only the kept keys that sit at or past the new length into the rows freed below it,
O(evicted) rows as the paged pool moves them, instead of shifting every kept key down. `rows`
says where each slot's key sits; `keys` puts them back in slot order for any other reader.

`band_norms=True` keeps beside each key the magnitudes of its RoPE bands, |k_f| = sqrt(k_f^2 +
k_{f+F}^2) for f < F = head_dim/2, which rotation leaves unchanged: taken once when the key
arrives instead of at every prune event (TriAttention's norm term reads them).
"""
from __future__ import annotations

import numpy as np

from .rope import band_norms


def kept_slots(keep: np.ndarray, k: int) -> np.ndarray:
    """[..., k]: the slots of the True entries of each lane of `keep` [..., n], in order. Lane by
    lane: np.nonzero over the whole array builds an index array per axis for every kept slot, 5x
    slower at gpt-oss-20b's 192 per-head lanes of 8,320 tokens (16 ms against 3)."""
    flat = keep.reshape(-1, keep.shape[-1])
    out = np.empty((flat.shape[0], k), np.int64)
    for lane, row in enumerate(flat):
        out[lane] = np.flatnonzero(row)
    return out.reshape(keep.shape[:-1] + (k,))


def take_lanes(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """np.take_along_axis(a, idx, -1), lane by lane (about half its time on many long lanes)."""
    out = np.empty(idx.shape, a.dtype)
    src, dst, at = a.reshape(-1, a.shape[-1]), out.reshape(-1, idx.shape[-1]), idx.reshape(-1, idx.shape[-1])
    for lane in range(src.shape[0]):
        np.take(src[lane], at[lane], out=dst[lane], mode="clip")  # the indices are valid slots
    return out


def _widen(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    pad = list(a.shape)
    pad[axis] = size - a.shape[axis]
    return np.concatenate([a, np.zeros(pad, a.dtype)], axis)


def _as_slice(idx: np.ndarray):
    """Evenly spaced layer indices as a slice (every layer, every other one): numpy writes through a
    slice several times faster than through an index array."""
    step = int(idx[1] - idx[0]) if idx.size > 1 else 1
    if idx.size and step > 0 and (np.diff(idx) == step).all():
        return slice(int(idx[0]), int(idx[-1]) + 1, step)
    return idx


class TokenStore:
    def __init__(self, n_layers: int, kv_heads: int, head_dim: int, keep_keys, keep_values: bool = False,
                 capacity: int = 256, per_head: bool = False, band_norms: bool = False):
        """keep_keys: True (every layer), False, or a [layers] bool mask of the layers whose keys
        are kept (a mirror, keep_values, keeps every layer's). band_norms: not with a mirror (its
        keys are written to the cache as they are)."""
        if band_norms and keep_values:
            raise ValueError("band norms are kept beside keys that serve a policy only, not beside a mirror")
        self.head_dim = head_dim
        self.n = 0
        self.live = 0  # live slots per lane (every lane holds the same number)
        self.per_head = per_head
        lanes = kv_heads if per_head else 1
        self._pos = np.zeros((n_layers, lanes, capacity), np.int64)
        self._alive = np.zeros((n_layers, lanes, capacity), bool)
        shape = (n_layers, kv_heads, capacity, head_dim)
        mask = np.broadcast_to(np.asarray(keep_keys, bool), (n_layers,))
        self.key_layers = np.arange(n_layers) if keep_values else np.flatnonzero(mask)
        self._key_slice = _as_slice(self.key_layers)
        width = head_dim + (head_dim // 2 if band_norms else 0)  # a key row and its band norms
        self._keys = np.zeros(shape[:3] + (width,), np.float32) if self.key_layers.size else None
        self._values = np.zeros(shape, np.float32) if keep_values else None
        self._rows = np.broadcast_to(np.arange(capacity), self._pos.shape).copy()  # row of each slot's key
        self._ordered = True  # rows are the identity

    def _grow(self, need: int):
        cap = self._pos.shape[2]
        if need <= cap:
            return
        new = max(need, 2 * cap)
        self._pos, self._alive = _widen(self._pos, 2, new), _widen(self._alive, 2, new)
        self._rows = np.concatenate([self._rows, np.broadcast_to(np.arange(cap, new), self._rows.shape[:2] + (new - cap,))], 2)
        if self._keys is not None:
            self._keys = self._copy_keys(new)
        if self._values is not None:
            self._values = _widen(self._values, 2, new)

    def append(self, positions: np.ndarray, keys: np.ndarray | None, values: np.ndarray | None = None):
        """positions [T]; keys and values [layers, kv_heads, T, head_dim] (keys post-RoPE)."""
        t = len(positions)
        self._grow(self.n + t)
        self._pos[:, :, self.n:self.n + t] = positions
        self._alive[:, :, self.n:self.n + t] = True
        self._rows[:, :, self.n:self.n + t] = np.arange(self.n, self.n + t)  # rows 0..n-1 are all taken
        if self._keys is not None:
            d, kl, n = self.head_dim, self.key_layers, self.n
            rows = (1 << 18) // d  # key rows at a time: temporaries of ~1 MB stay in cache
            tokens = min(t, max(1, rows // keys.shape[1]))
            group = max(1, rows // (keys.shape[1] * tokens))
            for a in range(0, kl.size, group):
                layers = self._key_slice if group >= kl.size else _as_slice(kl[a:a + group])
                for b in range(0, t, tokens):
                    e = min(t, b + tokens)
                    k = keys[layers, :, b:e]
                    self._keys[layers, :, n + b:n + e, :d] = k
                    if self._keys.shape[3] > d:
                        self._keys[layers, :, n + b:n + e, d:] = band_norms(k)
        if self._values is not None:
            self._values[:, :, self.n:self.n + t] = values
        self.n += t
        self.live += t

    def _lanes(self, a: np.ndarray) -> np.ndarray:
        return a if self.per_head else a[:, 0]

    @property
    def positions(self) -> np.ndarray:
        """[layers, L], or [layers, kv_heads, L] per KV head; slots are in position order."""
        return self._lanes(self._pos[:, :, :self.n])

    @property
    def alive(self) -> np.ndarray:
        return self._lanes(self._alive[:, :, :self.n])

    @property
    def keys(self) -> np.ndarray | None:
        """[layers, kv_heads, L, head_dim], slot i's key at i (put back in slot order if moved)."""
        if self._keys is not None and not self._ordered:
            for layer in self.key_layers:
                for lane, heads in self._lane_heads():
                    self._keys[layer, heads, :self.n] = self._keys[layer, heads][:, self._rows[layer, lane, :self.n]]
            self._rows[:, :, :self.n] = np.arange(self.n)
            self._ordered = True
        return None if self._keys is None else self._keys[:, :, :self.n, :self.head_dim]

    @property
    def band_norms(self) -> np.ndarray | None:
        """[layers, kv_heads, L, head_dim/2] beside `keys` (in slot order), or None if not kept."""
        keys = self.keys
        return None if keys is None or self._keys.shape[3] == self.head_dim else self._keys[:, :, :self.n, self.head_dim:]

    def by_row(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """The keys as they sit [layers, kv_heads, L, head_dim]; the same rows each followed by its
        band norms [..., head_dim * 3/2] (None if not kept); and `rows` shaped like `positions`:
        slot i's key is at row rows[..., i] (None when slot i's key is at i)."""
        if self._keys is None:
            return None, None, None
        rows = None if self._ordered else self._lanes(self._rows[:, :, :self.n])
        full = self._keys[:, :, :self.n]
        return full[..., :self.head_dim], None if full.shape[3] == self.head_dim else full, rows

    def _lane_heads(self):
        """(lane, the KV heads whose rows it orders): one lane for all heads, or one per head."""
        if not self.per_head:
            return [(0, slice(None))]
        return [(h, slice(h, h + 1)) for h in range(self._pos.shape[1])]

    @property
    def values(self) -> np.ndarray | None:
        return None if self._values is None else self._values[:, :, :self.n]

    def compact(self, keep: np.ndarray, copies: bool = True):
        """Drop slots: `keep` shaped like `positions`, the same count per lane, order preserved.

        Returns the kept keys and values as new contiguous arrays [layers, kv_heads, kept, head_dim]
        (None where not mirrored), which nothing else holds: the cache can be written from them
        without another copy. Gathered one layer (or one KV head) at a time: a single fancy index
        over all of them builds a full index array and is several times slower. copies=False: the
        caller rewrites its cache by itself (the paged pool), so the kept slots are moved in place
        through one layer's scratch and nothing is returned: no new array of the whole cache, whose
        first touch alone cost tens of ms at 8,000 tokens of gpt-oss-20b's widths.
        """
        keep = keep.reshape(self._pos.shape[:2] + (self.n,))
        counts = keep.sum(axis=2)
        assert (counts == counts.flat[0]).all(), "every layer and head must keep the same number of tokens"
        k = int(counts.flat[0])
        idx = kept_slots(keep, k)
        self._pos[:, :, :k] = take_lanes(self._pos[:, :, :self.n], idx)
        self._alive[:, :, :k] = True
        self._alive[:, :, k:] = False
        if not copies and self._values is None and self._keys is not None:
            self._fill(keep.reshape(self._pos.shape[:2] + (self.n,)), idx, k)
            kept = [None, None]
        else:
            if not self._ordered:
                self.keys  # noqa: B018 - back in slot order first
            kept = [None if buf is None else self._gather(buf, idx, copies, self.key_layers)
                    for buf in (self._keys, self._values)]
            kept[0] = None if kept[0] is None else kept[0][..., :self.head_dim]
        self.n = self.live = k
        if self._pos.shape[2] > 4 * max(k, 64):  # after a long prompt: give the memory back
            self._shrink(2 * max(k, 64))
        return kept[0], kept[1]

    @staticmethod
    def _gather(buf: np.ndarray, idx: np.ndarray, copies: bool = True, layers=None) -> np.ndarray | None:
        """Kept slots of `buf` [layers, kv_heads, cap, D] by `idx` [layers, lanes, k], into a new
        array that the buffer's head is then set from (copies), or through one layer's scratch in
        place (not copies; returns None). mode="clip": the indices are valid, and the default mode
        buffers the output (twice the time). Only `layers` move (all if None)."""
        k = idx.shape[2]
        layers = range(buf.shape[0]) if layers is None else layers
        out = np.zeros(buf.shape[:2] + (k, buf.shape[3]), buf.dtype) if copies else None
        scratch = None if copies else np.empty(buf.shape[1:2] + (k, buf.shape[3]), buf.dtype)
        for layer in layers:
            dest = out[layer] if copies else scratch
            if idx.shape[1] == 1:
                np.take(buf[layer], idx[layer, 0], axis=1, out=dest, mode="clip")
            else:
                for head in range(buf.shape[1]):
                    np.take(buf[layer, head], idx[layer, head], axis=0, out=dest[head], mode="clip")
            buf[layer, :, :k] = dest
        return out

    def _fill(self, keep: np.ndarray, idx: np.ndarray, k: int):
        """Compact the keys in place by moving the kept ones at rows >= k into the rows below k that
        evicted keys leave: O(evicted) rows move; `rows` follows."""
        rows = np.broadcast_to(np.arange(k), idx.shape).copy()  # layers without keys: any order
        rows[self.key_layers] = take_lanes(self._rows[self.key_layers, :, :self.n], idx[self.key_layers])
        for layer in self.key_layers:  # rows of the kept slots, in slot order
            for lane, heads in self._lane_heads():
                kept = rows[layer, lane]
                high = kept >= k
                if high.any():
                    free = np.ones(k, bool)  # rows below k that no kept key holds (a mask: no sort)
                    free[kept[~high]] = False
                    free = np.flatnonzero(free)
                    buf = self._keys[layer, heads]
                    buf[:, free] = buf[:, kept[high]]
                    kept[high] = free
        self._rows[:, :, :k] = rows
        self._ordered = bool((rows == np.arange(k)).all())

    def _shrink(self, cap: int):
        self._pos, self._alive = self._pos[:, :, :cap].copy(), self._alive[:, :, :cap].copy()
        self._rows = self._rows[:, :, :cap].copy()
        if self._keys is not None:
            self._keys = self._copy_keys(cap)
        if self._values is not None:
            self._values = self._values[:, :, :cap].copy()

    def _copy_keys(self, cap: int) -> np.ndarray:
        """The key buffer at `cap` slots, copied layer by layer where keys are kept (the rest stay
        untouched zeros)."""
        new = np.zeros(self._keys.shape[:2] + (cap,) + self._keys.shape[3:], np.float32)
        n = min(cap, self._keys.shape[2])
        for layer in self.key_layers:
            new[layer, :, :n] = self._keys[layer, :, :n]
        return new

    def mark(self, keep: np.ndarray):
        """Evict without moving slots (mask and zero mechanisms)."""
        self._alive[:, :, :self.n] &= keep.reshape(self._alive.shape[:2] + (self.n,))
        self.live = int(self._alive[:, :, :self.n].sum(axis=2).max())

    def zero(self, slots: np.ndarray):
        """Set the mirrored K and V of `slots` [layers, n] to zero (the model card's soft prune)."""
        where = np.broadcast_to(slots[:, None, :], self.keys.shape[:3])
        self.keys[where] = 0.0
        self.values[where] = 0.0
