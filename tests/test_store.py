"""TokenStore: the host mirror of the cache. Tiny synthetic tensors whose values name their slot."""
import numpy as np
import pytest

from triattn.core.store import TokenStore


def filled(n_layers=2, heads=2, n=5, dim=3, capacity=8):
    """Key [layer, head, slot, :] = 100*layer + 10*head + slot; value = the key's negative."""
    s = TokenStore(n_layers, heads, dim, keep_keys=True, keep_values=True, capacity=capacity)
    k = (100 * np.arange(n_layers)[:, None, None, None] + 10 * np.arange(heads)[None, :, None, None]
         + np.arange(n)[None, None, :, None] + np.zeros(dim)).astype(np.float32)
    s.append(np.arange(n) + 20, k, -k)
    return s


def test_compact_keeps_per_layer_slots_in_order_and_returns_fresh_copies():
    """keep, 2 layers x 5 slots (x = kept):

        slot     0  1  2  3  4
        layer 0  x     x     x   -> positions 20 22 24
        layer 1     x  x  x      -> positions 21 22 23
    """
    s = filled()
    keep = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 1, 0]], bool)
    keys, values = s.compact(keep)
    assert s.n == s.live == 3
    assert s.positions.tolist() == [[20, 22, 24], [21, 22, 23]]
    assert s.alive.all()
    assert keys[0, 1, :, 0].tolist() == [10, 12, 14] and keys[1, 0, :, 0].tolist() == [101, 102, 103]
    np.testing.assert_array_equal(values, -keys)
    np.testing.assert_array_equal(s.keys, keys)
    assert keys.flags.c_contiguous and not np.shares_memory(keys, s.keys)  # safe to hand to OpenVINO
    s.append(np.array([25]), np.full((2, 2, 1, 3), 7, np.float32), np.zeros((2, 2, 1, 3), np.float32))
    assert keys.shape[2] == 3 and s.keys.shape[2] == 4  # appending never touches the returned copy


def test_compact_in_place_leaves_what_a_copying_compaction_leaves():
    """copies=False (the paged pool rewrites itself) returns nothing and leaves the same slots as
    the drawing above: per layer, and per KV head."""
    s = filled()
    assert s.compact(np.array([[1, 0, 1, 0, 1], [0, 1, 1, 1, 0]], bool), copies=False) == (None, None)
    assert s.keys[0, 1, :, 0].tolist() == [10, 12, 14] and s.keys[1, 0, :, 0].tolist() == [101, 102, 103]
    np.testing.assert_array_equal(s.values, -s.keys)
    h = TokenStore(1, 2, 3, keep_keys=True, capacity=8, per_head=True)
    h.append(np.arange(5), (10 * np.arange(2)[None, :, None, None] + np.arange(5)[None, None, :, None]
                            + np.zeros(3)).astype(np.float32))
    h.compact(np.array([[[1, 0, 0, 1, 0], [0, 1, 1, 0, 0]]], bool), copies=False)
    assert h.keys[0, 0, :, 0].tolist() == [0, 3] and h.keys[0, 1, :, 0].tolist() == [11, 12]


def test_compact_without_a_mirror_returns_none():
    s = TokenStore(1, 1, 2, keep_keys=False, capacity=4)
    s.append(np.arange(4), None)
    assert s.compact(np.array([[0, 1, 0, 1]], bool)) == (None, None)
    assert s.positions.tolist() == [[1, 3]]


def test_mark_and_zero_leave_slots_in_place():
    s = filled(n_layers=1, heads=1, n=4, dim=2)
    evict = np.array([[0, 1, 0, 0]], bool)
    s.zero(evict)
    s.mark(~evict)
    assert s.n == 4 and s.live == 3
    assert s.keys[0, 0, :, 0].tolist() == [0, 0, 2, 3] and s.values[0, 0, 1].tolist() == [0, 0]


def test_per_head_compaction_keeps_a_set_per_kv_head():
    """keep, 1 layer x 2 KV heads x 5 slots: each head its own slots, the same count.

        slot     0  1  2  3  4
        head 0   x        x      -> positions 20 23
        head 1      x  x         -> positions 21 22
    """
    s = TokenStore(1, 2, 3, keep_keys=True, keep_values=True, capacity=8, per_head=True)
    k = (10 * np.arange(2)[None, :, None, None] + np.arange(5)[None, None, :, None] + np.zeros(3)).astype(np.float32)
    s.append(np.arange(5) + 20, k, -k)
    assert s.positions.shape == (1, 2, 5)
    keys, values = s.compact(np.array([[[1, 0, 0, 1, 0], [0, 1, 1, 0, 0]]], bool))
    assert s.positions.tolist() == [[[20, 23], [21, 22]]] and s.n == s.live == 2
    assert keys[0, 0, :, 0].tolist() == [0, 3] and keys[0, 1, :, 0].tolist() == [11, 12]
    np.testing.assert_array_equal(values, -keys)
    s.append(np.array([25]), np.zeros((1, 2, 1, 3), np.float32), np.zeros((1, 2, 1, 3), np.float32))
    assert s.positions.tolist() == [[[20, 23, 25], [21, 22, 25]]]


def test_keys_of_some_layers_only():
    """keep_keys a layer mask: layer 1's keys follow appends, growth, compaction (in place, and
    copying) and the shrink after it exactly as a store keeping every layer's; layer 0 reads zeros."""
    full = TokenStore(2, 2, 3, keep_keys=True, capacity=2)
    part = TokenStore(2, 2, 3, keep_keys=np.array([False, True]), capacity=2)
    keys = np.random.default_rng(0).normal(size=(2, 2, 300, 3)).astype(np.float32)
    for s in (full, part):
        s.append(np.arange(300), keys)  # grows from 2
    keep = np.zeros((2, 300), bool)
    keep[:, ::7] = True
    for s in (full, part):
        s.compact(keep, copies=False)  # 43 of 300: the buffer shrinks
    assert part.n == full.n == 43 and part.keys.shape == full.keys.shape
    np.testing.assert_array_equal(part.keys[1], full.keys[1])
    assert not part.keys[0].any()
    keys, _ = part.compact(np.ones((2, 43), bool) & (np.arange(43) % 2 == 0))
    assert not keys[0].any() and not part.keys[0].any()
    np.testing.assert_array_equal(keys[1], full.keys[1, :, ::2])
    assert TokenStore(2, 1, 1, keep_keys=np.array([False, True]), keep_values=True).key_layers.tolist() == [0, 1]


def test_in_place_compaction_without_a_mirror_moves_only_keys_past_the_new_length():
    """Keys are 1000*layer + 100*head + position; after rounds of appends and cuts (per layer and
    per KV head; layer 2 keyless, so the kept layers 0, 1, 3 are no slice), each slot's key, read where it sits (by_row) or in slot
    order (keys), is its own position's, and every cut moved at most as many rows as it evicted."""
    rng = np.random.default_rng(1)
    for per_head in (False, True):
        L = 4
        s = TokenStore(L, 2, 4, keep_keys=np.array([True, True, False, True]), capacity=4, per_head=per_head)
        lanes, n, nxt = (2 if per_head else 1), 0, 0
        for _ in range(12):
            t = int(rng.integers(5, 40))
            pos = np.arange(nxt, nxt + t)
            s.append(pos, (1000 * np.arange(L)[:, None, None, None] + 100 * np.arange(2)[None, :, None, None]
                           + pos[None, None, :, None] + np.zeros(4)).astype(np.float32))
            n, nxt = n + t, nxt + t
            k = int(rng.integers(1, n))
            keep = np.zeros((L, lanes, n), bool)
            for lane in np.ndindex(L, lanes):
                keep[lane][rng.choice(n, k, replace=False)] = True
            before, _, _ = s.by_row()
            before = before.copy()
            s.compact(keep.reshape(s.positions.shape), copies=False)
            keys, _, rows = s.by_row()
            assert ((keys != before[:, :, :k]).any(axis=-1).sum(axis=-1) <= n - k).all()  # rows written
            pos = s.positions.reshape(L, lanes, k)
            rows = np.broadcast_to(np.arange(k), pos.shape) if rows is None else rows.reshape(L, lanes, k)
            for layer, head in np.ndindex(L, 2):
                lane = head if per_head else 0
                want = (1000 * layer + 100 * head + pos[layer, lane]) * (layer != 2)
                np.testing.assert_array_equal(keys[layer, head, rows[layer, lane], 0], want)
            if s.n < 12:  # once in a while: back in slot order, where any reader finds them
                for layer, head in np.ndindex(L, 2):
                    want = (1000 * layer + 100 * head + pos[layer, head if per_head else 0]) * (layer != 2)
                    np.testing.assert_array_equal(s.keys[layer, head, :, 0], want)
            n = k


def test_band_norms_follow_their_keys():
    """band_norms=True: beside each key, |k_f| = sqrt(k_f^2 + k_{f+2}^2) of its 2 bands (head_dim 4),
    written out here, through appends, growth and in-place cuts (rows moved), by row and in slot order."""
    rng = np.random.default_rng(2)
    s = TokenStore(2, 2, 4, keep_keys=True, capacity=4, band_norms=True)  # a slice of layers, 0:2
    n = 0
    for _ in range(5):
        keys = rng.normal(size=(2, 2, 30, 4)).astype(np.float32)
        s.append(np.arange(n, n + 30), keys)
        n += 30
        keep = np.zeros((2, n), bool)
        for layer in range(2):
            keep[layer, rng.choice(n, n // 2, replace=False)] = True
        s.compact(keep, copies=False)
        n //= 2
        k, rows, _ = s.by_row()
        np.testing.assert_array_equal(rows[..., :4], k)
        norms = rows[..., 4:]
        plain = np.sqrt(k[..., 0:2].astype(np.float64) ** 2 + k[..., 2:4] ** 2)
        np.testing.assert_allclose(norms, plain, rtol=1e-6)
    assert s.keys.shape == (2, 2, n, 4)
    np.testing.assert_allclose(s.band_norms, np.hypot(s.keys[..., :2], s.keys[..., 2:]), rtol=1e-6)
    with pytest.raises(ValueError, match="mirror"):
        TokenStore(1, 1, 4, keep_keys=True, keep_values=True, band_norms=True)


def test_a_long_piece_is_written_whole():
    """A piece longer than the store writes at a time (head_dim 64: 2,048 tokens of 2 heads), its
    length no multiple of that: every key and its band norms land, in kept layers 1 and 3 of 4."""
    keys = np.random.default_rng(4).normal(size=(4, 2, 5000, 64)).astype(np.float32)
    s = TokenStore(4, 2, 64, keep_keys=np.array([False, True, False, True]), capacity=16, band_norms=True)
    s.append(np.arange(3), keys[:, :, :3])
    s.append(np.arange(3, 5000), keys[:, :, 3:])
    np.testing.assert_array_equal(s.keys[1::2], keys[1::2])
    assert not s.keys[0::2].any()
    np.testing.assert_allclose(s.band_norms[1::2], np.hypot(keys[1::2, ..., :32], keys[1::2, ..., 32:]), rtol=1e-6)


def test_kept_slots_and_take_lanes_match_numpys_whole_array_forms():
    """Lane by lane, the same as np.nonzero(keep)[-1] and np.take_along_axis:

        keep  1 0 1 1      slots 0 2 3      take from 10 11 12 13 -> 10 12 13
              0 1 1 1            1 2 3                20 21 22 23 -> 21 22 23
    """
    from triattn.core.store import kept_slots, take_lanes
    keep = np.array([[[1, 0, 1, 1], [0, 1, 1, 1]]], bool)
    idx = kept_slots(keep, 3)
    assert idx.tolist() == [[[0, 2, 3], [1, 2, 3]]]
    a = np.array([[[10, 11, 12, 13], [20, 21, 22, 23]]])
    assert take_lanes(a, idx).tolist() == [[[10, 12, 13], [21, 22, 23]]]
    rng = np.random.default_rng(0)
    keep = np.zeros((3, 4, 50), bool)
    for lane in keep.reshape(-1, 50):
        lane[rng.choice(50, 20, replace=False)] = True
    idx = kept_slots(keep, 20)
    np.testing.assert_array_equal(idx, np.nonzero(keep)[2].reshape(3, 4, 20))
    a = rng.standard_normal((3, 4, 50)).astype(np.float32)
    np.testing.assert_array_equal(take_lanes(a, idx), np.take_along_axis(a, idx, 2))
