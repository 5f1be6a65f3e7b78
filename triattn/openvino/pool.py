"""The KV cache of a paged run as memory we own: per-layer pools of blocks, block tables, and where
each cached token sits. Plain NumPy; paged.py binds the arrays to OpenVINO's PagedAttention form.

Layout (OpenVINO's CPU PagedAttention, f32 or f16): each layer's keys and values are arrays
`[blocks, kv_heads, BLOCK, head_dim]`; a layer's block table lists the blocks holding its context in
order, so table slot s is block `table[s // BLOCK]`, row `s % BLOCK`. Every layer holds the same
number of tokens `n` (one `past_lens` serves all layers) in table slots 0..n-1; which token sits in
which slot may differ per layer and, per KV head, per head (`slots`).

Eviction (`compact`) keeps the slots a run's TokenStore keeps, in the store's order (position order):
- full-attention layers: keys are stored after RoPE, so the slot a token sits in does not matter.
  Kept tokens beyond the new length move into the evicted slots below it: O(evicted) rows move,
  not O(kept), and the blocks past the new length leave the table;
- sliding-window layers: the window is counted in slots, so their newest `window` kept tokens go
  to the last slots in position order (a query sees exactly them); the older ones, which no query
  sees, fill freed slots as above. O(evicted + window) rows move.

Growth: the pool grows in whole blocks as a run needs them, to at least the tokens `reserve`d (a
pruned run reserves budget + interval, so it never grows past that plus one block); a cut gives back
what is above that. Scope: the cache side of issue 27; eviction policies themselves are elsewhere.
"""
from __future__ import annotations

import numpy as np

BLOCK = 32  # tokens per block: the CPU plugin's block size


def blocks_for(tokens: int) -> int:
    return -(-tokens // BLOCK)


class BlockPool:
    def __init__(self, n_layers: int, kv_heads: int, head_dim: int, dtype=np.float32, windows=None,
                 bf16: bool = False):
        self.shape = (kv_heads, BLOCK, head_dim)
        self.dtype = np.dtype(dtype)
        self.bf16 = bf16  # uint16 arrays holding bfloat16 bits
        self.windows = tuple(windows or (0,) * n_layers)
        self.n_layers = n_layers
        self.keys = [np.zeros((0,) + self.shape, self.dtype) for _ in range(n_layers)]
        self.values = [np.zeros((0,) + self.shape, self.dtype) for _ in range(n_layers)]
        self.tables = [np.zeros(0, np.int32) for _ in range(n_layers)]
        self.free = [[] for _ in range(n_layers)]
        self.n = 0
        self.slots = None  # [layers, lanes, n]: table slot of each cached token; None = token i in slot i
        self.reserved = 0  # blocks the pool keeps once grown
        self.peak = 0  # most blocks per layer held since `take_peak_bytes` (or `clear`)
        self.replaced = True  # the arrays were reallocated since last bound
        self.version = 0  # bumped whenever a block table changes (the request's copies are then stale)

    @property
    def capacity(self) -> int:
        """Blocks per layer."""
        return self.keys[0].shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of every block allocated (keys and values, all layers), used or free. (Every layer
        holds as many blocks: read per step, so not summed over the arrays.)"""
        return self.capacity * self.block_bytes

    def take_peak_bytes(self) -> int:
        """The most bytes the pool held since the last call (or `clear`); counting starts afresh."""
        peak = max(self.peak, self.capacity)
        self.peak = self.capacity
        return peak * self.block_bytes

    @property
    def block_bytes(self) -> int:
        """Bytes of one block's keys and values in every layer: what the pool grows and shrinks by."""
        return 2 * self.n_layers * int(np.prod(self.shape)) * self.dtype.itemsize

    def clear(self):
        """Empty the cache (the arrays stay, to be reused)."""
        self.tables = [np.zeros(0, np.int32) for _ in range(self.n_layers)]
        self.version += 1
        self.free = [list(range(self.capacity)) for _ in range(self.n_layers)]
        self.n, self.slots = 0, None
        self.peak = self.capacity

    def reserve(self, tokens: int):
        self.reserved = blocks_for(tokens)

    def ensure(self, tokens: int):
        """Make every block table cover `tokens` slots, growing the pool when it must."""
        need = blocks_for(tokens)
        have = len(self.tables[0])
        if need <= have:
            return
        if len(self.free[0]) < need - have:
            self._resize(max(need, self.reserved, self.capacity + max(need - have, self.capacity // 4)))
        for layer in range(self.n_layers):
            taken, self.free[layer] = self.free[layer][:need - have], self.free[layer][need - have:]
            self.tables[layer] = np.concatenate([self.tables[layer], np.array(taken, np.int32)])
        self.version += 1

    def _resize(self, blocks: int):
        """Reallocate every layer's arrays to `blocks` blocks, moving used blocks below it first."""
        for layer in range(self.n_layers):
            table = self.tables[layer]
            high = np.nonzero(table >= blocks)[0]
            if high.size:
                low = sorted(b for b in self.free[layer] if b < blocks)[:high.size]
                for arr in (self.keys[layer], self.values[layer]):
                    arr[low] = arr[table[high]]
                table[high] = low
            used = set(table.tolist())
            for name in ("keys", "values"):
                old = getattr(self, name)[layer]
                new = np.zeros((blocks,) + self.shape, self.dtype)
                keep = min(blocks, old.shape[0])
                new[:keep] = old[:keep]
                getattr(self, name)[layer] = new
            self.free[layer] = [b for b in range(blocks) if b not in used]
        self.peak = max(self.peak, blocks)
        self.replaced = True
        self.version += 1

    def _where(self, layer: int, slots: np.ndarray):
        return self.tables[layer][slots // BLOCK], slots % BLOCK

    def appended(self, t: int):
        """`t` tokens were written at table slots n..n+t-1 (by the model)."""
        if self.slots is not None:
            new = np.broadcast_to(np.arange(self.n, self.n + t, dtype=np.int32), self.slots.shape[:2] + (t,))
            self.slots = np.concatenate([self.slots, new], axis=2)
        self.n += t

    def read(self, start: int, t: int, values: bool = True):
        """Keys and values (None unless `values`) at table slots start..start+t-1, as f32
        [layers, kv_heads, t, head_dim]."""
        return self._gather(self.keys, start, t), (self._gather(self.values, start, t) if values else None)

    def _gather(self, pool: list, start: int, t: int) -> np.ndarray:
        if t == 1:  # a decode step: one slot, read by plain indexing in every layer (fancy indexing
            # with its index arrays cost ~10 us a layer: 0.6 ms of a 13 ms step on the default model)
            blk, row = divmod(start, BLOCK)
            x = np.stack([pool[layer][self.tables[layer][blk], :, row] for layer in range(self.n_layers)])[:, :, None]
        else:
            slots = np.arange(start, start + t)
            x = np.stack([pool[layer][self.tables[layer][slots // BLOCK], :, slots % BLOCK].transpose(1, 0, 2)
                          for layer in range(self.n_layers)])
        return (x.astype(np.uint32) << 16).view(np.float32) if self.bf16 else x.astype(np.float32, copy=False)

    def _slot_map(self, lanes: int) -> np.ndarray:
        if self.slots is None or self.slots.shape[1] != lanes:
            base = np.arange(self.n, dtype=np.int32) if self.slots is None else self.slots[:, 0]
            self.slots = np.ascontiguousarray(np.broadcast_to(
                base if base.ndim == 1 else base[:, None, :],
                (self.n_layers, lanes, self.n)))
        return self.slots

    def compact(self, keep: np.ndarray):
        """Keep the tokens marked in `keep` [layers, lanes, n] (lanes: 1, or one per KV head), the
        same count in every lane; the rest leave the cache."""
        keep = keep.reshape(self.n_layers, -1, self.n)
        counts = keep.sum(axis=2)
        k = int(counts.flat[0])
        assert (counts == k).all(), "every layer and head must keep the same number of tokens"
        slots = self._slot_map(keep.shape[1])
        new = np.empty(slots.shape[:2] + (k,), np.int32)
        lanes = keep.shape[1]
        for layer in range(self.n_layers):
            moves = []  # (from, to, lane) of every lane, moved at once
            for lane in range(lanes):
                src, dst, new[layer, lane] = self._moves(slots[layer, lane][keep[layer, lane]], k, self.windows[layer])
                moves.append((src, dst, np.full(src.size, lane)))
            self._move(layer, *(np.concatenate(m) for m in zip(*moves)), per_head=lanes > 1)
            self._truncate(layer, blocks_for(k))
        self.n, self.slots = k, new
        if self.capacity > max(self.reserved, blocks_for(k)):
            self._resize(max(self.reserved, blocks_for(k)))

    @staticmethod
    def _moves(kept, k: int, tail: int):
        """Where the kept tokens go (their table slots `kept`, in position order): the last `tail`
        in order to slots k-tail..k-1, the others into the free slots below that, those already
        there staying put. Returns (from, to) of the rows that move, and every token's new slot."""
        w = min(tail, k)
        head = kept[:k - w]
        stay = head < k - w
        dest = np.empty(k, np.int32)
        dest[k - w:] = np.arange(k - w, k, dtype=np.int32)
        dest[:k - w] = head
        free = np.ones(k - w, bool)  # the slots below k - w that no staying token holds (a mask: no sort)
        free[head[stay]] = False
        dest[:k - w][~stay] = np.flatnonzero(free)
        moving = kept != dest
        return kept[moving], dest[moving], dest

    def _move(self, layer: int, src, dst, head, per_head: bool):
        """Copy rows of table slots `src` to `dst` (of KV head `head` each, or of all heads)."""
        if not src.size:
            return
        sb, sr = self._where(layer, src)
        db, dr = self._where(layer, dst)
        for arr in (self.keys[layer], self.values[layer]):
            if per_head:
                arr[db, head, dr] = arr[sb, head, sr]
            else:
                arr[db, :, dr] = arr[sb, :, sr]

    def _truncate(self, layer: int, blocks: int):
        table = self.tables[layer]
        self.free[layer] = self.free[layer] + table[blocks:].tolist()
        self.tables[layer] = table[:blocks].copy()
        self.version += 1

    def zero(self, evicted: np.ndarray):
        """Set keys and values of the `evicted` tokens [layers, lanes, n] to zero (they stay cached)."""
        evicted = evicted.reshape(self.n_layers, -1, self.n)
        slots = self._slot_map(evicted.shape[1])
        for layer in range(self.n_layers):
            for lane in range(evicted.shape[1]):
                blk, row = self._where(layer, slots[layer, lane][evicted[layer, lane]])
                for arr in (self.keys[layer], self.values[layer]):
                    if evicted.shape[1] == 1:
                        arr[blk, :, row] = 0
                    else:
                        arr[blk, lane, row] = 0
