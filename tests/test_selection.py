"""Selection on small hand-drawn cases (one row per layer)."""
import numpy as np

from triattn.core.selection import protected, select_keep, top_k


def _one(scores, keep, sinks=0, recent=0, alive=None):
    s = np.array([scores], float)
    pos = np.arange(s.shape[1])[None]
    alive = np.ones_like(s, bool) if alive is None else np.array([alive])
    return np.flatnonzero(select_keep(s, pos, alive, keep, sinks, recent)[0]).tolist()


def test_docstring_example():
    """positions 0..5, scores .1 .9 .2 .8 .3 .0, keep 4, one sink, one recent -> 0, 1, 3, 5."""
    assert _one([0.1, 0.9, 0.2, 0.8, 0.3, 0.0], keep=4, sinks=1, recent=1) == [0, 1, 3, 5]


def test_pure_top_k_and_ties_go_to_newer():
    """scores 5 1 5 1 5, keep 2: the two newest of the three 5s -> positions 2, 4."""
    assert _one([5, 1, 5, 1, 5], keep=2) == [2, 4]


def test_dead_slots_never_kept_and_recent_counts_live_slots():
    """slot 4 is dead; recent=2 protects the two newest LIVE slots (3 and 5).

    pos    0  1  2  3  4  5
    alive  1  1  1  1  0  1
    score  9  8  7  0  9  0   keep 3 -> 0, 3, 5
    """
    assert _one([9, 8, 7, 0, 9, 0], keep=3, recent=2, alive=[1, 1, 1, 1, 0, 1]) == [0, 3, 5]


def test_keep_more_than_live_keeps_all_live():
    assert _one([1, 2, 3], keep=10, alive=[1, 0, 1]) == [0, 2]


def test_protected_sinks_by_position_recent_by_rank():
    pos = np.array([[0, 1, 5, 6, 7]])
    alive = np.array([[1, 1, 1, 0, 1]], bool)
    assert protected(pos, alive, sink_tokens=1, recent_window=2).astype(int).tolist() == [[1, 0, 1, 0, 1]]


def test_per_layer_and_shared_choices():
    """Two layers that disagree. Per layer each keeps its own best; shared keeps the best on average.

    layer 0: 1 0 0 0 3
    layer 1: 0 0 2 1 0      keep 1, per layer -> {4} and {2}; shared z-scores favour 4
    """
    s = np.array([[1, 0, 0, 0, 3], [0, 0, 2, 1, 0]], float)
    pos = np.tile(np.arange(5), (2, 1))
    alive = np.ones_like(s, bool)
    per = select_keep(s, pos, alive, 1)
    assert [np.flatnonzero(r).tolist() for r in per] == [[4], [2]]
    shared = select_keep(s, pos, alive, 1, shared=True)
    assert [np.flatnonzero(r).tolist() for r in shared] == [[4], [4]]


def test_recency_layers_keep_newest_whatever_the_scores():
    s = np.array([[9, 9, 0, 0], [9, 9, 0, 0]], float)
    pos = np.tile(np.arange(4), (2, 1))
    kept = select_keep(s, pos, np.ones_like(s, bool), 2, recency_layers=np.array([True, False]))
    assert [np.flatnonzero(r).tolist() for r in kept] == [[2, 3], [0, 1]]


def test_per_kv_head_lanes_choose_on_their_own():
    """[layers=1, kv_heads=2, L=4]: each head keeps its own top 2; a recency layer overrides both."""
    s = np.array([[[9, 0, 9, 0], [0, 9, 0, 9]]], float)
    pos = np.broadcast_to(np.arange(4), s.shape)
    kept = select_keep(s, pos, np.ones_like(s, bool), 2)
    assert [np.flatnonzero(r).tolist() for r in kept[0]] == [[0, 2], [1, 3]]
    kept = select_keep(s, pos, np.ones_like(s, bool), 2, recency_layers=np.array([True]))
    assert [np.flatnonzero(r).tolist() for r in kept[0]] == [[2, 3], [2, 3]]


def test_top_k_matches_a_sort_with_ties_to_the_newest():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(50, 30)).astype(float)  # many ties
    for k in (0, 1, 7, 29, 30):
        got = top_k(s, k)
        for row, kept in zip(s, got):
            order = sorted(range(30), key=lambda i: (row[i], i))  # ascending score, then slot
            assert np.flatnonzero(kept).tolist() == sorted(order[30 - k:])


def _plain_keep(scores, alive, keep, sinks, recent):
    """One lane by hand: protect sinks (by position) and the `recent` newest live slots, then the
    highest scores, ties to the newer slot, `min(keep, live)` in all."""
    live = [i for i in range(len(scores)) if alive[i]]
    forced = {i for i in live if i < sinks} | set(live[::-1][:recent])
    rest = sorted((i for i in live if i not in forced), key=lambda i: (scores[i], i), reverse=True)
    return sorted(forced | set(rest[:max(0, min(keep, len(live)) - len(forced))]))


def test_select_keep_matches_a_plain_loop_on_whole_and_holey_caches_with_and_without_ties():
    rng = np.random.default_rng(7)
    for trial in range(60):
        lanes, n = int(rng.integers(1, 5)), int(rng.integers(4, 40))
        ties = trial % 2 == 0
        s = (rng.integers(0, 3, (lanes, n)) if ties else rng.standard_normal((lanes, n))).astype(np.float32)
        alive = np.ones((lanes, n), bool) if trial % 3 else np.tile(rng.random(n) < 0.8, (lanes, 1))
        keep, sinks, recent = int(rng.integers(1, n)), int(rng.integers(0, 3)), int(rng.integers(0, 5))
        if min(keep, int(alive[0].sum())) < min(int(alive[0].sum()), sinks + recent):
            continue  # the protected slots alone exceed the budget: not a state the engine makes
        got = select_keep(s, np.tile(np.arange(n), (lanes, 1)), alive, keep, sinks, recent)
        for lane in range(lanes):
            assert np.flatnonzero(got[lane]).tolist() == _plain_keep(s[lane].tolist(), alive[lane], keep, sinks, recent)
