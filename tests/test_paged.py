"""The paged form: the block pool against a plain reference on tiny synthetic tensors, and our loop
on OpenVINO's PagedAttention form against the stateful form on the tiny exported models (f32)."""
import threading

import numpy as np
import pytest

from triattn.core.config import EvictionConfig
from triattn.core.engine import generate
from triattn.openvino.model import load_model
from triattn.errors import Cancelled
from triattn.openvino.paged import PagedModel
from triattn.openvino.pool import BLOCK, BlockPool, blocks_for

BASE = EvictionConfig(policy="none")


# --- the pool alone: every cached token's rows, per layer and KV head, against plain lists ---------

def _write(pool, rng, ref, n_new):
    """Act as the model: write new tokens' rows at table slots n..n+t-1; the reference appends them."""
    pool.ensure(pool.n + n_new)
    for layer in range(pool.n_layers):
        for s in range(pool.n, pool.n + n_new):
            blk, row = pool.tables[layer][s // BLOCK], s % BLOCK
            k, v = rng.standard_normal((2,) + pool.shape[:1] + pool.shape[2:]).astype(np.float32)
            pool.keys[layer][blk, :, row], pool.values[layer][blk, :, row] = k, v
            for h in range(pool.shape[0]):
                ref[layer][h].append((k[h].copy(), v[h].copy()))
    pool.appended(n_new)


def _check(pool, ref, lanes):
    for layer in range(pool.n_layers):
        for h in range(pool.shape[0]):
            assert len(ref[layer][h]) == pool.n
            slots = np.arange(pool.n) if pool.slots is None else pool.slots[layer, h if lanes > 1 else 0]
            assert sorted(slots.tolist()) == list(range(pool.n))  # the first n table slots, each once
            for i, s in enumerate(slots):
                blk, row = pool.tables[layer][s // BLOCK], s % BLOCK
                np.testing.assert_array_equal(pool.keys[layer][blk, h, row], ref[layer][h][i][0])
                np.testing.assert_array_equal(pool.values[layer][blk, h, row], ref[layer][h][i][1])
        assert len(pool.tables[layer]) == blocks_for(pool.n)
        assert len(set(pool.tables[layer].tolist()) | set(pool.free[layer])) == pool.capacity


@pytest.mark.parametrize("lanes", [1, 2])
def test_pool_compaction_keeps_each_tokens_rows(lanes):
    rng = np.random.default_rng(lanes)
    windows = (16, 0, 16, 0)
    pool = BlockPool(4, 2, 8, np.float32, windows)
    pool.clear()
    pool.reserve(96)
    ref = [[[] for _ in range(2)] for _ in range(4)]
    for cycle in range(6):
        _write(pool, rng, ref, int(rng.integers(1, 80)))
        k = int(rng.integers(1, pool.n))
        keep = np.zeros((4, lanes, pool.n), bool)
        for layer in range(4):
            for lane in range(lanes):
                keep[layer, lane, rng.choice(pool.n, k, replace=False)] = True
        before = None if pool.slots is None else pool.slots.copy()
        pool.compact(keep)
        for layer in range(4):  # the plain reference: drop what is not kept, order kept
            for h in range(2):
                mask = keep[layer, h if lanes > 1 else 0]
                ref[layer][h] = [t for t, m in zip(ref[layer][h], mask) if m]
        _check(pool, ref, lanes)
        w = min(16, k)
        for layer in (0, 2):  # sliding-window layers: the newest `window` in position order, last
            assert (pool.slots[layer][:, k - w:] == np.arange(k - w, k)).all()
        if before is not None:  # a kept token below the new length (and its window) stays put
            for layer, low in ((1, k), (0, k - w)):
                for lane in range(lanes):
                    old = before[layer, lane][keep[layer, lane]][:low]
                    assert (pool.slots[layer, lane][:low][old < low] == old[old < low]).all()
        assert pool.capacity <= max(blocks_for(96), blocks_for(k))


def test_pool_read_returns_the_rows_just_written_one_slot_or_several():
    """read(start, t) gives what the model wrote at table slots start..start+t-1, [layers, heads, t,
    dim], after compactions have scattered the tables over the blocks; a decode step's single slot
    (read by plain indexing) and a prompt's several (index arrays) agree with the plain reference."""
    rng = np.random.default_rng(3)
    pool = BlockPool(3, 2, 4, np.float32, (0, 8, 0))
    pool.clear()
    pool.reserve(256)
    pool.ensure(256)  # room for every token below, then an empty table again
    pool.clear()
    for free in pool.free:  # each layer takes its free blocks in its own order: the tables differ
        rng.shuffle(free)
    ref = [[[] for _ in range(2)] for _ in range(3)]
    for cycle in range(5):
        for t in (int(rng.integers(2, 40)), 1, 1):
            start = pool.n
            _write(pool, rng, ref, t)
            k, v = pool.read(start, t)
            assert k.shape == v.shape == (3, 2, t, 4)
            for layer in range(3):
                for h in range(2):
                    want = ref[layer][h][start:start + t]
                    np.testing.assert_array_equal(k[layer, h], np.stack([w[0] for w in want]))
                    np.testing.assert_array_equal(v[layer, h], np.stack([w[1] for w in want]))
            k_only, none = pool.read(start, t, values=False)
            assert none is None
            np.testing.assert_array_equal(k_only, k)
        keep = np.zeros((3, 1, pool.n), bool)
        for layer in range(3):
            keep[layer, 0, rng.choice(pool.n, pool.n // 2, replace=False)] = True
        pool.compact(keep)
        ref = [[[x for x, m in zip(ref[layer][h], keep[layer, 0]) if m] for h in range(2)] for layer in range(3)]


def test_pool_zero_clears_only_evicted_rows():
    rng = np.random.default_rng(0)
    pool = BlockPool(2, 2, 4, np.float32)
    pool.clear()
    ref = [[[] for _ in range(2)] for _ in range(2)]
    _write(pool, rng, ref, 40)
    gone = rng.random((2, 1, 40)) < 0.3
    pool.zero(gone)
    for layer in range(2):
        for h in range(2):
            ref[layer][h] = [(np.zeros_like(k), np.zeros_like(v)) if g else (k, v)
                             for (k, v), g in zip(ref[layer][h], gone[layer, 0])]
    _check(pool, ref, 1)


# --- our loop on the two forms --------------------------------------------------------------------

@pytest.fixture(scope="module")
def forms(model_dir):
    return load_model(model_dir, "CPU", "f32", form="paged"), load_model(model_dir, "CPU", "f32", form="stateful")


def _tokens(model, prompt, eviction, n=24):
    s = model.new_session()
    try:
        return [r.token for r in generate(s, prompt, eviction, max_new_tokens=n)]
    finally:
        s.close()


LONG = list(np.random.default_rng(1).integers(3, 400, 200))


def test_paged_baseline_matches_stateful(forms):
    paged, stateful = forms
    assert isinstance(paged, PagedModel)
    for prompt, chunk in ((LONG, 0), (LONG, 48), (LONG[:5], 0)):
        ev = EvictionConfig(policy="none", prefill_chunk=chunk)
        assert _tokens(paged, prompt, ev) == _tokens(stateful, prompt, ev)


def _supported():
    """Every policy of our loop x mechanism that the settings accept."""
    from triattn.core.config import MECHANISMS
    from triattn.policies import get_policy, list_policies
    out = []
    for policy in list_policies():
        for evict in MECHANISMS:
            try:
                ev = EvictionConfig(policy=policy, evict=evict, budget=1024, prune_interval=8)
            except ValueError:
                continue
            if get_policy(policy).runtime == "loop" and ev.evict == evict and ev.prunes:
                out.append(ev)
    return out


@pytest.mark.parametrize("ev", _supported(), ids=lambda e: f"{e.policy}-{e.evict}")
def test_budget_above_length_is_the_baseline(forms, ev):
    paged, _ = forms
    assert _tokens(paged, LONG, ev) == _tokens(paged, LONG, BASE)


@pytest.mark.parametrize("policy", ["knorm", "streaming", "triattention", "triattention-head"])
def test_pruned_paged_matches_pruned_stateful(forms, policy):
    paged, stateful = forms
    for chunk in (0, 64):
        ev = EvictionConfig(policy=policy, evict="hard", budget=64, prune_interval=8, prefill_chunk=chunk)
        assert _tokens(paged, LONG, ev, 40) == _tokens(stateful, LONG, ev, 40)


def _logits(model, eviction, n=30):
    s = model.new_session()
    try:
        return np.array([r.logits for r in generate(s, LONG, eviction, force=list(range(5, 5 + n)), keep_logits=True)])
    finally:
        s.close()


@pytest.mark.parametrize("budget", [64, 24])
def test_pruned_logits_match_stateful(forms, budget):
    """Logits, not only tokens: on gpt-oss, filling a sliding-window layer's freed slots out of
    position order moved them by 0.3-0.4 (its window is counted in slots); kept in order, 2e-7."""
    paged, stateful = forms
    ev = EvictionConfig(policy="knorm", evict="hard", budget=budget, recent_window=16, sink_tokens=4, prune_interval=8)
    np.testing.assert_allclose(_logits(paged, ev), _logits(stateful, ev), atol=1e-4)


def test_zero_matches_stateful_zero(forms):
    paged, stateful = forms
    ev = EvictionConfig(policy="knorm", evict="zero", budget=64, prune_interval=8)
    assert _tokens(paged, LONG, ev, 40) == _tokens(stateful, LONG, ev, 40)


def test_pool_stays_within_budget_and_interval(forms):
    paged, _ = forms
    budget, interval = 64, 16
    bound = blocks_for(budget + interval) + 1  # (budget + interval) tokens plus one block per layer
    for chunk in (0, 64):
        ev = EvictionConfig(policy="triattention", evict="hard", budget=budget, prune_interval=interval,
                            prefill_chunk=chunk)
        s = paged.new_session()
        held = [s.pool.capacity for _ in generate(s, LONG, ev, max_new_tokens=60)]
        assert max(held) <= bound and s.pool.n <= budget + interval
        s.close()


def test_same_eviction_same_logits_on_both_forms(forms):
    """A random eviction per layer, also inside gpt-oss's sliding window, applied to both caches:
    the next token's logits agree, so both forms count the window the same way (in slots)."""
    paged, stateful = forms
    info = paged.info
    rng = np.random.default_rng(0)
    prompt = LONG[:90]
    a, b = paged.new_session(), stateful.new_session()
    a.reset(), b.reset()
    a.forward(prompt, np.arange(90))
    b.forward(prompt, np.arange(90), np.ones(90))
    keep = np.zeros((info.n_layers, 1, 90), bool)
    for layer in range(info.n_layers):
        keep[layer, 0, rng.choice(90, 50, replace=False)] = True
    a.pool.compact(keep)
    keys, values = b.read_kv()
    b.write_kv([k[:, keep[i, 0]] for i, k in enumerate(keys)], [v[:, keep[i, 0]] for i, v in enumerate(values)])
    la, _, _ = a.forward([7], [90])
    lb, _, _ = b.forward([7], [90], np.ones(51))
    np.testing.assert_allclose(la, lb, atol=1e-4)
    a.close(), b.close()


def test_cancel_stops_and_reset_recovers(forms):
    paged, _ = forms
    s = paged.new_session()
    done = threading.Event()
    threading.Thread(target=lambda: (s.cancel(), done.set())).start()
    done.wait()
    with pytest.raises(Cancelled):
        s.forward(LONG, np.arange(len(LONG)))
    assert s.cache_len() == 0
    s.reset()
    got = s.forward(LONG, np.arange(len(LONG)))[0]
    fresh = paged.new_session()
    np.testing.assert_array_equal(got, fresh.forward(LONG, np.arange(len(LONG)))[0])
    s.close(), fresh.close()


def test_profile_splits_paged_and_mask_steps(forms):
    """The step profiler's phases come from a paged session, and from the stateful one a mask run gets."""
    from triattn.bench.profile import PHASES, profile_run
    paged, _ = forms
    for evict in ("hard", "mask"):
        cfg = EvictionConfig(policy="knorm", evict=evict, budget=40, prune_interval=4)
        t = profile_run(paged, LONG[:60], cfg, max_new_tokens=12)
        assert all(len(t[p]) == 11 for p in PHASES + ("step",)) and min(t["infer"]) > 0


def test_a_model_the_paged_form_refuses_runs_stateful_saying_why(llama_dir, tmp_path, monkeypatch):
    import shutil
    from triattn.errors import ModelError
    from triattn.openvino import paged
    from triattn.openvino.model import LoadedModel
    from triattn.openvino.paged import PAGED_REFUSAL

    def refuse(model, info, cache_type, scores):
        raise ModelError(f"{PAGED_REFUSAL}: no PagedAttention for this graph")
    monkeypatch.setattr(paged, "transform", refuse)
    model_dir = tmp_path / "m"
    shutil.copytree(llama_dir, model_dir, ignore=shutil.ignore_patterns("pytorch"))
    model = load_model(model_dir, "CPU", "f32", form="paged")
    assert isinstance(model, LoadedModel) and model.form == "stateful"
    assert model.form_note.startswith(PAGED_REFUSAL) and model.form_note.endswith("running the stateful form instead")
    assert _tokens(model, LONG, BASE) == _tokens(load_model(llama_dir, "CPU", "f32", form="stateful"), LONG, BASE)


def test_a_mask_run_on_the_paged_form_says_it_runs_stateful(forms):
    from triattn.core.runner import runner_for
    paged, stateful = forms
    mask = EvictionConfig(policy="knorm", evict="mask", budget=64, prune_interval=8)
    assert runner_for(paged, mask).describe({}) == "mask runs on the stateful form: the paged form has no attention mask"
    assert runner_for(paged, EvictionConfig(policy="knorm", evict="hard", budget=64)).describe({}) is None
    assert _tokens(paged, LONG, mask, 40) == _tokens(stateful, LONG, mask, 40)


def test_kv_bytes_are_the_pool_on_paged_and_slots_on_stateful(forms):
    """The KV columns: a paged run reports the bytes its pool allocated (whole blocks, the run's
    reserve included), a stateful run its slots x bytes per token, as before; a mask run on the
    paged form runs on the stateful twin and counts as it does."""
    from triattn.core.metrics import pair_figures, summarize
    paged, stateful = forms
    i = paged.info
    block = 2 * i.n_layers * i.kv_heads * BLOCK * i.head_dim * 4  # f32 K and V of one block, every layer
    per_token = 2 * i.n_layers * i.kv_heads * i.head_dim * 4
    budget, interval = 64, 16
    ev = EvictionConfig(policy="knorm", evict="hard", budget=budget, prune_interval=interval, prefill_chunk=0)
    runs = {}
    for name, model, e in (("paged", paged, ev), ("stateful", stateful, ev), ("paged base", paged, BASE),
                           ("mask", paged, EvictionConfig(**{**ev.as_dict(), "evict": "mask"}))):
        s = model.new_session()
        runs[name] = list(generate(s, LONG, e, force=list(range(5, 35))))  # 30 tokens, no early end
        s.close()
    m = summarize(runs["paged"], paged.kv_bytes_per_token, 0, 0)
    # the prompt (200 tokens) read whole: 7 blocks; then cut, and the pool keeps the run's reserve:
    # budget + interval = 80 tokens, 3 blocks, for every decode step
    assert m.kv_bytes_max == 7 * block
    assert [r.kv_bytes for r in runs["paged"]] == [3 * block] * 30
    assert m.kv_bytes_max_decode == 3 * block
    held = max(r.kv_len for r in runs["stateful"])  # the cut cache plus up to interval - 1 new tokens
    assert held == budget + interval - 1
    ms = summarize(runs["stateful"], stateful.kv_bytes_per_token, 0, 0)
    assert (ms.kv_bytes_max, ms.kv_bytes_max_decode) == (len(LONG) * per_token, held * per_token)
    # the baseline reserves its prompt and new tokens: 230 tokens, 8 blocks, from the first forward
    f = pair_figures(runs["paged base"], runs["paged"], (paged.kv_bytes_per_token,) * 2)
    assert f.kv_bytes == (8 * block, 3 * block)
    mask = summarize(runs["mask"], paged.kv_bytes_per_token, 0, 0)  # mask keeps every slot: the twin's count
    assert mask.kv_bytes_max_decode == max(r.kv_len for r in runs["mask"]) * per_token == (len(LONG) + 29) * per_token
